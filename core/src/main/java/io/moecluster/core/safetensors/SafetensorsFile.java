package io.moecluster.core.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moecluster.core.model.ModelFormatException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One {@code .safetensors} file: the header is read and validated on open; tensor bytes are
 * memory-mapped only when asked for, each tensor on its own, so a process that hosts two experts
 * maps two experts' pages and no more. Mappings live until {@link #close()}.
 *
 * <p>Layout: 8-byte little-endian header length N, N bytes of JSON header, then the data section;
 * every tensor's {@code data_offsets} are relative to the data section.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** A header larger than this is refused rather than read into the heap (the format's own cap). */
    static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path path;
    private final FileChannel channel;
    private final Arena arena;
    private final long dataStart;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, FileChannel channel, long dataStart,
                            Map<String, TensorInfo> tensors, Map<String, String> metadata) {
        this.path = path;
        this.channel = channel;
        this.arena = Arena.ofShared();
        this.dataStart = dataStart;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    public static SafetensorsFile open(Path path) {
        FileChannel channel;
        try {
            channel = FileChannel.open(path, StandardOpenOption.READ);
        } catch (IOException e) {
            throw new ModelFormatException(path + ": cannot open: " + e, e);
        }
        try {
            long fileSize = channel.size();
            if (fileSize < 8) {
                throw new ModelFormatException(path + ": " + fileSize + " bytes is too short for a safetensors file");
            }
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(channel, lenBuf, 0, path);
            long headerLen = lenBuf.getLong(0);
            if (headerLen <= 0 || headerLen > MAX_HEADER_BYTES || headerLen > fileSize - 8) {
                throw new ModelFormatException(path + ": bad header length " + headerLen
                        + " (file is " + fileSize + " bytes)");
            }
            ByteBuffer header = ByteBuffer.allocate((int) headerLen);
            readFully(channel, header, 8, path);
            long dataStart = 8 + headerLen;
            long dataSize = fileSize - dataStart;
            JsonNode root;
            try {
                root = JSON.readTree(new String(header.array(), StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new ModelFormatException(path + ": header is not valid JSON: " + e.getMessage(), e);
            }
            if (root == null || !root.isObject()) {
                throw new ModelFormatException(path + ": header is not a JSON object");
            }
            Map<String, TensorInfo> tensors = new LinkedHashMap<>();
            Map<String, String> metadata = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (e.getKey().equals("__metadata__")) {
                    e.getValue().fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                    continue;
                }
                tensors.put(e.getKey(), parseTensor(path, e.getKey(), e.getValue(), dataSize));
            }
            return new SafetensorsFile(path, channel, dataStart,
                    Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(metadata));
        } catch (RuntimeException | IOException e) {
            try {
                channel.close();
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            if (e instanceof ModelFormatException mfe) {
                throw mfe;
            }
            throw new ModelFormatException(path + ": cannot read: " + e, e);
        }
    }

    private static TensorInfo parseTensor(Path path, String name, JsonNode node, long dataSize) {
        String where = path + ": tensor '" + name + "'";
        if (!node.isObject()) {
            throw new ModelFormatException(where + ": header entry is not an object");
        }
        JsonNode dtypeNode = node.get("dtype");
        JsonNode shapeNode = node.get("shape");
        JsonNode offsetsNode = node.get("data_offsets");
        if (dtypeNode == null || shapeNode == null || offsetsNode == null
                || !shapeNode.isArray() || !offsetsNode.isArray() || offsetsNode.size() != 2) {
            throw new ModelFormatException(where + ": header entry needs dtype, shape and data_offsets [begin, end]");
        }
        DType dtype = DType.fromSafetensorsName(dtypeNode.asText());
        if (dtype == null) {
            throw new ModelFormatException(where + ": dtype " + dtypeNode.asText() + " is not supported (F32, F16, BF16, F8_E4M3)");
        }
        long[] shape = new long[shapeNode.size()];
        long elements = 1;
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = shapeNode.get(i);
            if (!d.isIntegralNumber() || d.asLong() < 0) {
                throw new ModelFormatException(where + ": bad shape " + shapeNode);
            }
            shape[i] = d.asLong();
            try {
                elements = Math.multiplyExact(elements, shape[i]);
            } catch (ArithmeticException overflow) {
                throw new ModelFormatException(where + ": shape " + shapeNode + " overflows");
            }
        }
        JsonNode b = offsetsNode.get(0);
        JsonNode en = offsetsNode.get(1);
        if (!b.isIntegralNumber() || !en.isIntegralNumber()) {
            throw new ModelFormatException(where + ": data_offsets must be integers, got " + offsetsNode);
        }
        long begin = b.asLong();
        long end = en.asLong();
        if (begin < 0 || end < begin || end > dataSize) {
            throw new ModelFormatException(where + ": data_offsets [" + begin + ", " + end
                    + "] out of range (data section is " + dataSize + " bytes)");
        }
        if (elements > Long.MAX_VALUE / dtype.bytes() || end - begin != elements * dtype.bytes()) {
            throw new ModelFormatException(where + ": data_offsets span " + (end - begin) + " bytes but "
                    + dtype + " " + shapeNode + " needs " + elements * dtype.bytes());
        }
        return new TensorInfo(name, path, dtype, shape, begin, end);
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long position, Path path) throws IOException {
        long pos = position;
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos);
            if (n < 0) {
                throw new ModelFormatException(path + ": unexpected end of file at byte " + pos);
            }
            pos += n;
        }
    }

    public Path path() {
        return path;
    }

    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    public TensorInfo info(String name) {
        return tensors.get(name);
    }

    /** Maps one tensor's bytes read-only. Pages are faulted in on first touch, not here. */
    public MemorySegment map(TensorInfo info) {
        if (!info.file().equals(path) || tensors.get(info.name()) != info) {
            throw new IllegalArgumentException(info.name() + " is not a tensor of " + path);
        }
        if (info.byteSize() == 0) {
            return MemorySegment.NULL.reinterpret(0);
        }
        try {
            return channel.map(FileChannel.MapMode.READ_ONLY, dataStart + info.begin(), info.byteSize(), arena);
        } catch (IOException e) {
            throw new ModelFormatException(path + ": tensor '" + info.name() + "': cannot map: " + e, e);
        }
    }

    @Override
    public void close() {
        arena.close();
        try {
            channel.close();
        } catch (IOException ignored) {
            // Read-only channel: nothing to flush, and the mappings are already released.
        }
    }
}
