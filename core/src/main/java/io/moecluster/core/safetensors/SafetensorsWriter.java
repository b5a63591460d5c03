package io.moecluster.core.safetensors;

import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moecluster.core.kernels.Fp8E4m3;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Writes safetensors files without ever holding a whole tensor, let alone a whole model, in
 * memory: tensors are declared first (so every header can be written up front), then each
 * tensor's values are pulled from a {@link Filler} in small float chunks, encoded to F32, F16,
 * BF16 or F8_E4M3, and streamed to disk through one reused off-heap staging buffer.
 *
 * <p>Usage: {@link #declare} every tensor, then {@link #write} each one in declared order, then
 * {@link #finish()}. With a maximum shard size the tensors are split, in declared order, over
 * {@code model-00001-of-0000N.safetensors} files plus {@code model.safetensors.index.json}, as
 * transformers does; a tensor larger than the limit gets a shard of its own, and a model that fits
 * in one shard is written as a plain {@code model.safetensors}.
 *
 * <p>Not thread-safe. Files written before a failure are left in place (they are incomplete and
 * the index is only written by {@link #finish()}).
 */
public final class SafetensorsWriter implements AutoCloseable {
    /** Produces the next {@code count} values of a tensor, in row-major order, into {@code values[0..count)}. */
    @FunctionalInterface
    public interface Filler {
        /**
         * @param firstElement index (row-major, within the tensor) of {@code values[0]}
         * @param values scratch array, reused between calls; only the first {@code count} slots matter
         */
        void fill(long firstElement, float[] values, int count);
    }

    /** Values are produced in chunks of this many floats: small enough to stay in cache. */
    static final int CHUNK_FLOATS = 1 << 16;
    /** Encoded bytes are collected up to this size before each write call. */
    static final int STAGING_BYTES = 8 << 20;

    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ObjectMapper JSON = new ObjectMapper();

    private record Declared(String name, DType dtype, long[] shape, long elements, long bytes) {}

    /** One output file: its tensors (a contiguous run of the declared list) and data offsets. */
    private record Shard(Path path, int firstTensor, int endTensor, long[] begins, long dataBytes) {}

    /** Where to write: exactly one named file, or a checkpoint directory (maybe sharded). */
    private final Path singleFile;
    private final Path dir;
    private final long maxShardBytes;

    private final List<Declared> declared = new ArrayList<>();
    private final Set<String> names = new HashSet<>();
    private List<Shard> shards;
    private int nextTensor;
    private int currentShard = -1;
    private FileChannel channel;
    private long shardDataWritten;
    private boolean finished;

    private final Arena arena = Arena.ofConfined();
    private final MemorySegment staging = arena.allocate(STAGING_BYTES, 64);
    private final ByteBuffer stagingView = staging.asByteBuffer();
    private final float[] chunk = new float[CHUNK_FLOATS];
    private int staged;

    private SafetensorsWriter(Path singleFile, Path dir, long maxShardBytes) {
        this.singleFile = singleFile;
        this.dir = dir;
        this.maxShardBytes = maxShardBytes;
    }

    /** Writes all tensors into exactly {@code file}, whatever its name. */
    public static SafetensorsWriter toFile(Path file) {
        return new SafetensorsWriter(file, null, 0);
    }

    /**
     * Writes a Hugging Face checkpoint into {@code dir}: {@code model.safetensors}, or, when
     * {@code maxShardBytes > 0} and the tensors do not fit in one shard of that many data bytes,
     * numbered shards and an index.
     */
    public static SafetensorsWriter toCheckpoint(Path dir, long maxShardBytes) {
        if (maxShardBytes < 0) {
            throw new IllegalArgumentException("maxShardBytes must be >= 0 (0 = no sharding), got " + maxShardBytes);
        }
        return new SafetensorsWriter(null, dir, maxShardBytes);
    }

    /** Declares the next tensor. All tensors must be declared before the first {@link #write}. */
    public SafetensorsWriter declare(String name, DType dtype, long... shape) {
        if (shards != null) {
            throw new IllegalStateException("tensor '" + name + "' declared after writing started");
        }
        if (name == null || name.isEmpty() || name.equals("__metadata__")) {
            throw new IllegalArgumentException("bad tensor name '" + name + "'");
        }
        if (!names.add(name)) {
            throw new IllegalArgumentException("tensor '" + name + "' declared twice");
        }
        long elements = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("tensor '" + name + "' has negative dimension in " + Arrays.toString(shape));
            }
            elements = Math.multiplyExact(elements, d);
        }
        declared.add(new Declared(name, dtype, shape.clone(), elements, Math.multiplyExact(elements, dtype.bytes())));
        return this;
    }

    /** Writes the values of {@code name}, which must be the next declared tensor. */
    public void write(String name, Filler filler) throws IOException {
        if (finished) {
            throw new IllegalStateException("tensor '" + name + "' written after finish()");
        }
        plan();
        if (nextTensor >= declared.size()) {
            throw new IllegalStateException("tensor '" + name + "' was never declared (all declared tensors are written)");
        }
        Declared t = declared.get(nextTensor);
        if (!t.name.equals(name)) {
            throw new IllegalStateException("tensor '" + name + "' written out of order: the next declared tensor is '"
                    + t.name + "'");
        }
        enterShardOf(nextTensor);
        for (long done = 0; done < t.elements; ) {
            int n = (int) Math.min(CHUNK_FLOATS, t.elements - done);
            filler.fill(done, chunk, n);
            stage(t.dtype, n);
            done += n;
        }
        shardDataWritten += t.bytes;
        nextTensor++;
    }

    /** Writes a tensor whose values are already in memory (small tensors, tests). */
    public void write(String name, float[] values) throws IOException {
        Declared t = nextTensor < declared.size() ? declared.get(nextTensor) : null;
        if (t != null && t.name.equals(name) && t.elements != values.length) {
            throw new IllegalArgumentException("tensor '" + name + "' has " + t.elements + " elements but "
                    + values.length + " values were given");
        }
        write(name, (first, out, count) -> System.arraycopy(values, (int) first, out, 0, count));
    }

    /**
     * Checks that every declared tensor was written, completes the last file and, when sharded,
     * writes the index. Returns the files written, shards first.
     */
    public List<Path> finish() throws IOException {
        plan();
        if (nextTensor < declared.size()) {
            throw new IllegalStateException("finish() before tensor '" + declared.get(nextTensor).name
                    + "' (and " + (declared.size() - nextTensor - 1) + " more) was written");
        }
        // A checkpoint with no tensors still gets its (empty) file.
        if (shards.size() == 1 && currentShard < 0) {
            enterShard(0);
        }
        closeShard();
        finished = true;
        List<Path> written = new ArrayList<>();
        for (Shard s : shards) {
            written.add(s.path);
        }
        if (shards.size() > 1) {
            Path index = dir.resolve(Checkpoint.INDEX_FILE);
            Files.writeString(index, indexJson());
            written.add(index);
        }
        return written;
    }

    @Override
    public void close() throws IOException {
        try {
            if (channel != null) {
                channel.close();
                channel = null;
            }
        } finally {
            if (arena.scope().isAlive()) {
                arena.close();
            }
        }
    }

    /** BF16 bits of {@code f}: the upper half of the f32 bits, rounded to nearest, ties to even. */
    public static short bf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7fffffff) > 0x7f800000) {
            return (short) ((bits >>> 16) | 0x0040); // NaN: keep sign and payload top, force quiet
        }
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
    }

    /** Freezes the layout: assigns tensors to shards and their byte ranges. */
    private void plan() {
        if (shards != null) {
            return;
        }
        List<int[]> runs = new ArrayList<>(); // [first, end) tensor index per shard
        int first = 0;
        long size = 0;
        for (int i = 0; i < declared.size(); i++) {
            long b = declared.get(i).bytes;
            if (maxShardBytes > 0 && i > first && size + b > maxShardBytes) {
                runs.add(new int[] {first, i});
                first = i;
                size = 0;
            }
            size += b;
        }
        runs.add(new int[] {first, declared.size()});

        List<Shard> planned = new ArrayList<>();
        for (int s = 0; s < runs.size(); s++) {
            int from = runs.get(s)[0];
            int to = runs.get(s)[1];
            long[] begins = new long[to - from];
            long offset = 0;
            for (int i = from; i < to; i++) {
                begins[i - from] = offset;
                offset += declared.get(i).bytes;
            }
            Path path = singleFile != null ? singleFile
                    : runs.size() == 1 ? dir.resolve(Checkpoint.SINGLE_FILE)
                    : dir.resolve(shardName(s + 1, runs.size()));
            planned.add(new Shard(path, from, to, begins, offset));
        }
        shards = planned;
    }

    /** The transformers shard file name, e.g. {@code model-00002-of-00003.safetensors}. */
    public static String shardName(int number, int count) {
        return String.format("model-%05d-of-%05d.safetensors", number, count);
    }

    private void enterShardOf(int tensor) throws IOException {
        int s = currentShard < 0 ? 0 : currentShard;
        while (tensor >= shards.get(s).endTensor) {
            s++;
        }
        if (s != currentShard) {
            closeShard();
            enterShard(s);
        }
    }

    private void enterShard(int s) throws IOException {
        Shard shard = shards.get(s);
        channel = FileChannel.open(shard.path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
        currentShard = s;
        shardDataWritten = 0;
        byte[] header = headerBytes(shard);
        ByteBuffer buf = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(header.length).put(header).flip();
        while (buf.hasRemaining()) {
            channel.write(buf);
        }
    }

    /** Flushes and closes the current shard, checking that it got exactly the bytes its header promises. */
    private void closeShard() throws IOException {
        if (channel == null) {
            return;
        }
        flushStaging();
        Shard shard = shards.get(currentShard);
        long expected = 8 + headerBytes(shard).length + shard.dataBytes;
        long actual = channel.size();
        channel.close();
        channel = null;
        if (shardDataWritten != shard.dataBytes || actual != expected) {
            throw new IOException(shard.path + ": wrote " + actual + " bytes but the header describes " + expected);
        }
    }

    /**
     * The JSON header, space-padded so that the data section starts on an 8-byte boundary (the
     * safetensors convention, which lets readers map F32 data aligned).
     */
    private byte[] headerBytes(Shard shard) throws IOException {
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("__metadata__", Map.of("format", "pt"));
        for (int i = shard.firstTensor; i < shard.endTensor; i++) {
            Declared t = declared.get(i);
            long begin = shard.begins[i - shard.firstTensor];
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("dtype", t.dtype.safetensorsName());
            entry.put("shape", t.shape);
            entry.put("data_offsets", new long[] {begin, begin + t.bytes});
            header.put(t.name, entry);
        }
        byte[] json = JSON.writeValueAsBytes(header);
        int padded = (json.length + 7) & ~7;
        byte[] out = Arrays.copyOf(json, padded);
        Arrays.fill(out, json.length, padded, (byte) ' ');
        return out;
    }

    private String indexJson() throws IOException {
        long total = 0;
        Map<String, String> weightMap = new TreeMap<>(); // transformers sorts the map by name
        for (Shard s : shards) {
            for (int i = s.firstTensor; i < s.endTensor; i++) {
                total += declared.get(i).bytes;
                weightMap.put(declared.get(i).name, s.path.getFileName().toString());
            }
        }
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("metadata", Map.of("total_size", total));
        root.put("weight_map", weightMap);
        // Formatted like transformers' json.dumps(indent=2): "key": value, two-space indent.
        DefaultPrettyPrinter pretty = new DefaultPrettyPrinter(Separators.createDefaultInstance()
                .withObjectFieldValueSpacing(Separators.Spacing.AFTER))
                .withObjectIndenter(new DefaultIndenter("  ", "\n"));
        return JSON.writer(pretty).writeValueAsString(root) + "\n";
    }

    /** Encodes chunk[0..n) into the staging buffer, writing the buffer out first if it is too full. */
    private void stage(DType dtype, int n) throws IOException {
        long need = (long) n * dtype.bytes();
        if (staged + need > STAGING_BYTES) {
            flushStaging();
        }
        long off = staged;
        switch (dtype) {
            case F32 -> {
                for (int i = 0; i < n; i++, off += 4) {
                    staging.set(F32_LE, off, chunk[i]);
                }
            }
            case F16 -> {
                for (int i = 0; i < n; i++, off += 2) {
                    staging.set(I16_LE, off, Float.floatToFloat16(chunk[i]));
                }
            }
            case BF16 -> {
                for (int i = 0; i < n; i++, off += 2) {
                    staging.set(I16_LE, off, bf16(chunk[i]));
                }
            }
            case F8_E4M3 -> {
                // The nearest E4M3 value: a quantizer hands over values already divided by their block scale.
                for (int i = 0; i < n; i++, off += 1) {
                    staging.set(ValueLayout.JAVA_BYTE, off, Fp8E4m3.fromFloat(chunk[i]));
                }
            }
            case I8 -> {
                // A quantizer hands over the integers themselves (as floats): they must fit a byte.
                for (int i = 0; i < n; i++, off += 1) {
                    float v = chunk[i];
                    if (v != Math.rint(v) || v < -128 || v > 127) {
                        throw new IllegalArgumentException("I8 value " + v + " is not an integer in [-128, 127]");
                    }
                    staging.set(ValueLayout.JAVA_BYTE, off, (byte) v);
                }
            }
        }
        staged = (int) off;
    }

    private void flushStaging() throws IOException {
        stagingView.clear().limit(staged);
        while (stagingView.hasRemaining()) {
            channel.write(stagingView);
        }
        staged = 0;
    }
}
