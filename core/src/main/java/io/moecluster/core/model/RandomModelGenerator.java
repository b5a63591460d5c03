package io.moecluster.core.model;

import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.core.safetensors.DType;
import io.moecluster.core.safetensors.SafetensorsWriter;
import io.moecluster.core.tokenizer.ByteLevelBpeTokenizerWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.regex.Pattern;

/**
 * Writes a complete Hugging Face model directory with random weights: {@code config.json},
 * {@code generation_config.json}, {@code tokenizer.json}, {@code tokenizer_config.json} and
 * {@code model.safetensors} (or shards plus index). Used for tests and benchmarks where the
 * numbers do not matter but the layout, sizes and numerics (no overflow, activations of order 1)
 * must be those of a real checkpoint.
 *
 * <p>Deterministic: each tensor is filled from a {@link SplittableRandom} seeded by the seed and
 * the tensor's name, so the same seed gives byte-identical files, whatever the sharding.
 *
 * <p>Initialisation: linear weights uniform in ±sqrt(3 / fan_in) (unit variance in, unit variance
 * out), embeddings uniform with standard deviation 1, RMSNorm weights 1 ± 0.05, biases ± 0.02.
 */
public final class RandomModelGenerator {
    /** The files this generator owns in a model directory (shards match {@link #SHARD_FILE}). */
    static final List<String> OUTPUT_FILES = List.of("config.json", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json", Checkpoint.SINGLE_FILE, Checkpoint.INDEX_FILE);
    static final Pattern SHARD_FILE = Pattern.compile("model-\\d{5}-of-\\d{5}\\.safetensors");

    private static final float NORM_NOISE = 0.05f;
    private static final float BIAS_RANGE = 0.02f;
    private static final float SQRT3 = (float) Math.sqrt(3.0);

    private RandomModelGenerator() {}

    /** Generates into an empty (or absent) {@code outDir}, as one {@code model.safetensors}. */
    public static ModelConfig generate(Architecture arch, Preset preset, DType dtype, long seed, Path outDir)
            throws IOException {
        return generate(arch, preset, dtype, seed, outDir, false, 0);
    }

    /** As {@link #generate(Architecture, Preset, DType, long, Path)}, replacing earlier model files if {@code overwrite}. */
    public static ModelConfig generate(Architecture arch, Preset preset, DType dtype, long seed, Path outDir,
                                       boolean overwrite) throws IOException {
        return generate(arch, preset, dtype, seed, outDir, overwrite, 0);
    }

    /**
     * Generates a model of {@code preset}'s size for {@code arch}.
     *
     * @param maxShardBytes 0 for a single {@code model.safetensors}; otherwise the most tensor
     *     bytes per shard, as transformers' {@code max_shard_size}
     * @param overwrite whether a non-empty {@code outDir} may be written into; its earlier model
     *     files (the names this generator writes) are then deleted first, other files are kept
     * @return the configuration written to {@code config.json}
     */
    public static ModelConfig generate(Architecture arch, Preset preset, DType dtype, long seed, Path outDir,
                                       boolean overwrite, long maxShardBytes) throws IOException {
        ModelConfig config = preset.config(arch);
        generate(config, dtype, seed, outDir, overwrite, maxShardBytes);
        return config;
    }

    /** Generates a model of any configuration this engine can serve. */
    public static void generate(ModelConfig config, DType dtype, long seed, Path outDir,
                                boolean overwrite, long maxShardBytes) throws IOException {
        prepareOutDir(outDir, overwrite);
        writeWeights(config, dtype, seed, outDir, maxShardBytes);
        ByteLevelBpeTokenizerWriter.write(outDir.resolve("tokenizer.json"), config.vocabSize());
        writeString(outDir.resolve("tokenizer_config.json"), HfConfigFiles.tokenizerConfig(config));
        writeString(outDir.resolve("generation_config.json"), HfConfigFiles.generationConfig(config));
        // Last: a directory without config.json is recognisably incomplete if generation failed.
        writeString(outDir.resolve("config.json"), HfConfigFiles.config(config, dtype));
    }

    /**
     * Every tensor of a Hugging Face checkpoint of {@code config}, with its shape ([out, in] for
     * linear layers), in the order the generator writes them.
     */
    public static Map<String, long[]> tensorShapes(ModelConfig c) {
        Map<String, long[]> t = new LinkedHashMap<>();
        long h = c.hiddenSize();
        long q = c.queryDim();
        long kv = c.kvDim();
        t.put("model.embed_tokens.weight", new long[] {c.vocabSize(), h});
        for (int layer = 0; layer < c.numLayers(); layer++) {
            String p = "model.layers." + layer + ".";
            t.put(p + "input_layernorm.weight", new long[] {h});
            t.put(p + "self_attn.q_proj.weight", new long[] {q, h});
            t.put(p + "self_attn.k_proj.weight", new long[] {kv, h});
            t.put(p + "self_attn.v_proj.weight", new long[] {kv, h});
            if (c.qkvBias()) {
                t.put(p + "self_attn.q_proj.bias", new long[] {q});
                t.put(p + "self_attn.k_proj.bias", new long[] {kv});
                t.put(p + "self_attn.v_proj.bias", new long[] {kv});
            }
            t.put(p + "self_attn.o_proj.weight", new long[] {h, q});
            t.put(p + "post_attention_layernorm.weight", new long[] {h});
            long e = c.expertIntermediateSize();
            switch (c.architecture()) {
                case MIXTRAL -> {
                    t.put(p + "block_sparse_moe.gate.weight", new long[] {c.numExperts(), h});
                    for (int x = 0; x < c.numExperts(); x++) {
                        String ex = p + "block_sparse_moe.experts." + x + ".";
                        t.put(ex + "w1.weight", new long[] {e, h});
                        t.put(ex + "w2.weight", new long[] {h, e});
                        t.put(ex + "w3.weight", new long[] {e, h});
                    }
                }
                case QWEN2_MOE -> {
                    if (c.isMoeLayer(layer)) {
                        t.put(p + "mlp.gate.weight", new long[] {c.numExperts(), h});
                        for (int x = 0; x < c.numExperts(); x++) {
                            putMlp(t, p + "mlp.experts." + x + ".", h, e);
                        }
                        if (c.hasSharedExpert()) {
                            putMlp(t, p + "mlp.shared_expert.", h, c.sharedExpertIntermediateSize());
                            t.put(p + "mlp.shared_expert_gate.weight", new long[] {1, h});
                        }
                    } else {
                        putMlp(t, p + "mlp.", h, c.intermediateSize());
                    }
                }
            }
        }
        t.put("model.norm.weight", new long[] {h});
        if (!c.tieWordEmbeddings()) {
            t.put("lm_head.weight", new long[] {c.vocabSize(), h});
        }
        return t;
    }

    /** Total number of weights of a checkpoint of {@code config}. */
    public static long parameterCount(ModelConfig config) {
        long n = 0;
        for (long[] shape : tensorShapes(config).values()) {
            long size = 1;
            for (long d : shape) {
                size *= d;
            }
            n += size;
        }
        return n;
    }

    private static void putMlp(Map<String, long[]> t, String prefix, long hidden, long ffn) {
        t.put(prefix + "gate_proj.weight", new long[] {ffn, hidden});
        t.put(prefix + "up_proj.weight", new long[] {ffn, hidden});
        t.put(prefix + "down_proj.weight", new long[] {hidden, ffn});
    }

    private static void writeWeights(ModelConfig config, DType dtype, long seed, Path outDir, long maxShardBytes)
            throws IOException {
        Map<String, long[]> shapes = tensorShapes(config);
        try (SafetensorsWriter writer = SafetensorsWriter.toCheckpoint(outDir, maxShardBytes)) {
            shapes.forEach((name, shape) -> writer.declare(name, dtype, shape));
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                writer.write(e.getKey(), fillerFor(e.getKey(), e.getValue(), seed));
            }
            writer.finish();
        }
    }

    /** The initialisation of one tensor, chosen by its role (from the name) and fan-in. */
    private static UniformFiller fillerFor(String name, long[] shape, long seed) {
        SplittableRandom rng = new SplittableRandom(seed ^ fnv1a64(name));
        if (name.endsWith("norm.weight")) {
            return new UniformFiller(rng, 1.0f, NORM_NOISE);
        }
        if (name.endsWith(".bias")) {
            return new UniformFiller(rng, 0.0f, BIAS_RANGE);
        }
        if (name.equals("model.embed_tokens.weight")) {
            return new UniformFiller(rng, 0.0f, SQRT3); // standard deviation 1
        }
        long fanIn = shape[shape.length - 1];
        return new UniformFiller(rng, 0.0f, SQRT3 / (float) Math.sqrt(fanIn));
    }

    /** Values uniform in [center - halfWidth, center + halfWidth), one 24-bit draw each. */
    private record UniformFiller(SplittableRandom rng, float center, float halfWidth)
            implements SafetensorsWriter.Filler {
        @Override
        public void fill(long firstElement, float[] values, int count) {
            float scale = halfWidth * 0x1p-23f;
            for (int i = 0; i < count; i++) {
                // The top 24 bits as a signed integer in [-2^23, 2^23): exact in a float.
                values[i] = center + (rng.nextLong() >> 40) * scale;
            }
        }
    }

    /** A stable 64-bit hash of a tensor name (String.hashCode has too few bits to seed from). */
    private static long fnv1a64(String s) {
        long h = 0xcbf29ce484222325L;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            h ^= b & 0xff;
            h *= 0x100000001b3L;
        }
        return h;
    }

    private static void prepareOutDir(Path outDir, boolean overwrite) throws IOException {
        if (Files.exists(outDir) && !Files.isDirectory(outDir)) {
            throw new FileAlreadyExistsException(outDir.toString(), null, "exists and is not a directory");
        }
        Files.createDirectories(outDir);
        List<Path> existing = new ArrayList<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(outDir)) {
            entries.forEach(existing::add);
        }
        if (existing.isEmpty()) {
            return;
        }
        if (!overwrite) {
            throw new FileAlreadyExistsException(outDir.toString(), null,
                    "output directory is not empty (" + existing.size() + " entries); choose an empty directory"
                            + " or pass overwrite=true to replace the model files in it");
        }
        // Remove every file of an earlier model, so that e.g. a stale shard index cannot shadow a
        // new single-file checkpoint; anything else in the directory is left alone.
        for (Path p : existing) {
            String name = p.getFileName().toString();
            if (Files.isRegularFile(p) && (OUTPUT_FILES.contains(name) || SHARD_FILE.matcher(name).matches())) {
                Files.delete(p);
            }
        }
    }

    private static void writeString(Path file, String content) throws IOException {
        Files.writeString(file, content, StandardCharsets.UTF_8);
    }

    /**
     * {@code RandomModelGenerator ARCH PRESET DTYPE SEED OUT_DIR [--overwrite] [--max-shard-bytes N]},
     * e.g. {@code mixtral bench bf16 42 /tmp/bench-mixtral}.
     */
    public static void main(String[] args) throws IOException {
        if (args.length < 5) {
            System.err.println("usage: RandomModelGenerator mixtral|qwen2_moe tiny|bench f32|f16|bf16 SEED OUT_DIR"
                    + " [--overwrite] [--max-shard-bytes N]");
            System.exit(2);
        }
        Architecture arch = Architecture.fromModelType(args[0], "command line");
        Preset preset = Preset.fromId(args[1]);
        DType dtype = DType.parse(args[2]);
        long seed = Long.parseLong(args[3]);
        Path out = Path.of(args[4]);
        boolean overwrite = false;
        long maxShard = 0;
        for (int i = 5; i < args.length; i++) {
            switch (args[i]) {
                case "--overwrite" -> overwrite = true;
                case "--max-shard-bytes" -> maxShard = Long.parseLong(args[++i]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        long start = System.nanoTime();
        ModelConfig config = generate(arch, preset, dtype, seed, out, overwrite, maxShard);
        System.out.printf("wrote %s (%,d parameters, %s) to %s in %.1f s%n", config.architecture().modelType(),
                parameterCount(config), dtype, out, (System.nanoTime() - start) / 1e9);
    }
}
