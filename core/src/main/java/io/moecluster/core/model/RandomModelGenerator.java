package io.moecluster.core.model;

import io.moecluster.core.kernels.Fp8E4m3;
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
 * out), embeddings uniform with standard deviation 1, RMSNorm weights 1 ± 0.05, biases (and
 * DeepSeek-V3's routing correction bias) ± 0.02.
 *
 * <p>{@link DType#F8_E4M3} writes a checkpoint as DeepSeek-V3 ships one: every linear layer's
 * weight (attention, dense MLPs, experts; not the embeddings, the LM head or the router) as
 * F8_E4M3 with an F32 {@code <name>_scale_inv} right after it, one multiplier per block of the
 * config's {@code quantization_config.weight_block_size} (the scale is the block's largest
 * magnitude / 448, the bytes the nearest E4M3 values of weight / scale); the correction bias F32;
 * everything else BF16.
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
        return generate(arch, preset, dtype, seed, outDir, overwrite, maxShardBytes, 0, 0, 0);
    }

    /**
     * As {@link #generate(Architecture, Preset, DType, long, Path, boolean, long)} with the preset
     * resized by {@link ModelConfig#withSizes} (0 keeps a size).
     */
    public static ModelConfig generate(Architecture arch, Preset preset, DType dtype, long seed, Path outDir,
                                       boolean overwrite, long maxShardBytes, int hiddenSize, int expertFfn,
                                       int layers) throws IOException {
        ModelConfig config = preset.config(arch).withSizes(hiddenSize, expertFfn, layers);
        if (dtype == DType.F8_E4M3) {
            config = config.withQuantization(preset.fp8Blocks());
        }
        generate(config, dtype, seed, outDir, overwrite, maxShardBytes);
        return config;
    }

    /**
     * Generates a model of any configuration this engine can serve. For {@link DType#F8_E4M3} the
     * config's {@code quantization_config} gives the block size; it must have one.
     */
    public static void generate(ModelConfig config, DType dtype, long seed, Path outDir,
                                boolean overwrite, long maxShardBytes) throws IOException {
        if (dtype == DType.I8) {
            throw new IllegalArgumentException("random int8 checkpoints are not generated: write one in another dtype"
                    + " and convert it with moe model quantize --format int8");
        }
        if (dtype == DType.F8_E4M3 && config.quantization() == null) {
            throw new IllegalArgumentException("an F8_E4M3 checkpoint needs quantization_config.weight_block_size;"
                    + " none in " + config);
        }
        if (dtype != DType.F8_E4M3 && config.quantization() != null) {
            throw new IllegalArgumentException("quantization_config describes F8_E4M3 weights, not " + dtype);
        }
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
            if (c.architecture() == Architecture.DEEPSEEK_V3) {
                putDeepseekV3Layer(t, c, layer, p);
                continue;
            }
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

    private static void putDeepseekV3Layer(Map<String, long[]> t, ModelConfig c, int layer, String p) {
        long h = c.hiddenSize();
        MlaConfig m = c.mla();
        long heads = c.numHeads();
        t.put(p + "input_layernorm.weight", new long[] {h});
        if (m.qLoraRank() > 0) {
            t.put(p + "self_attn.q_a_proj.weight", new long[] {m.qLoraRank(), h});
            t.put(p + "self_attn.q_a_layernorm.weight", new long[] {m.qLoraRank()});
            t.put(p + "self_attn.q_b_proj.weight", new long[] {heads * m.qkHeadDim(), m.qLoraRank()});
        } else {
            t.put(p + "self_attn.q_proj.weight", new long[] {heads * m.qkHeadDim(), h});
        }
        t.put(p + "self_attn.kv_a_proj_with_mqa.weight", new long[] {m.kvLoraRank() + m.qkRopeHeadDim(), h});
        t.put(p + "self_attn.kv_a_layernorm.weight", new long[] {m.kvLoraRank()});
        t.put(p + "self_attn.kv_b_proj.weight", new long[] {heads * (m.qkNopeHeadDim() + m.vHeadDim()), m.kvLoraRank()});
        t.put(p + "self_attn.o_proj.weight", new long[] {h, heads * m.vHeadDim()});
        t.put(p + "post_attention_layernorm.weight", new long[] {h});
        if (c.isMoeLayer(layer)) {
            t.put(p + "mlp.gate.weight", new long[] {c.numExperts(), h});
            t.put(p + "mlp.gate.e_score_correction_bias", new long[] {c.numExperts()});
            for (int x = 0; x < c.numExperts(); x++) {
                putMlp(t, p + "mlp.experts." + x + ".", h, c.expertIntermediateSize());
            }
            if (c.hasSharedExpert()) {
                putMlp(t, p + "mlp.shared_experts.", h, c.sharedExpertIntermediateSize());
            }
        } else {
            putMlp(t, p + "mlp.", h, c.intermediateSize());
        }
    }

    /** Whether an F8_E4M3 checkpoint stores {@code name} as FP8 blocks: the linear layers, not embeddings, LM head or router. */
    static boolean quantized(String name, long[] shape) {
        return shape.length == 2 && name.endsWith(".weight") && !name.equals("model.embed_tokens.weight")
                && !name.equals("lm_head.weight") && !name.endsWith("mlp.gate.weight")
                && !name.endsWith("block_sparse_moe.gate.weight") && !name.endsWith("shared_expert_gate.weight");
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
            if (dtype != DType.F8_E4M3) {
                shapes.forEach((name, shape) -> writer.declare(name, dtype, shape));
                for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                    writer.write(e.getKey(), fillerFor(e.getKey(), e.getValue(), seed));
                }
            } else {
                BlockQuantization q = config.quantization();
                shapes.forEach((name, shape) -> {
                    if (quantized(name, shape)) {
                        writer.declare(name, DType.F8_E4M3, shape);
                        writer.declare(TensorNames.scaleInv(name), DType.F32,
                                (shape[0] + q.blockRows() - 1) / q.blockRows(), (shape[1] + q.blockCols() - 1) / q.blockCols());
                    } else {
                        writer.declare(name, name.endsWith("e_score_correction_bias") ? DType.F32 : DType.BF16, shape);
                    }
                });
                for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                    String name = e.getKey();
                    long[] shape = e.getValue();
                    if (quantized(name, shape)) {
                        Fp8Blocks blocks = Fp8Blocks.quantize(fillerFor(name, shape, seed), (int) shape[0], (int) shape[1],
                                q.blockRows(), q.blockCols());
                        writer.write(name, blocks.scaled());
                        writer.write(TensorNames.scaleInv(name), blocks.scales());
                    } else {
                        writer.write(name, fillerFor(name, shape, seed));
                    }
                }
            }
            writer.finish();
        }
    }

    /**
     * One weight quantized as DeepSeek-V3 does it: per block, scale = largest magnitude / 448, the
     * stored values weight / scale (the writer rounds them to the nearest E4M3).
     */
    private record Fp8Blocks(float[] scaled, float[] scales) {
        static Fp8Blocks quantize(SafetensorsWriter.Filler filler, int rows, int cols, int bh, int bw) {
            float[] w = new float[Math.multiplyExact(rows, cols)];
            filler.fill(0, w, w.length);
            int sr = (rows + bh - 1) / bh;
            int sc = (cols + bw - 1) / bw;
            float[] scales = new float[sr * sc];
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    int b = (r / bh) * sc + c / bw;
                    scales[b] = Math.max(scales[b], Math.abs(w[r * cols + c]));
                }
            }
            for (int b = 0; b < scales.length; b++) {
                scales[b] = Math.max(scales[b], 1e-12f) / Fp8E4m3.MAX;
            }
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    w[r * cols + c] /= scales[(r / bh) * sc + c / bw];
                }
            }
            return new Fp8Blocks(w, scales);
        }
    }

    /** The initialisation of one tensor, chosen by its role (from the name) and fan-in. */
    private static UniformFiller fillerFor(String name, long[] shape, long seed) {
        SplittableRandom rng = new SplittableRandom(seed ^ fnv1a64(name));
        if (name.endsWith("norm.weight")) {
            return new UniformFiller(rng, 1.0f, NORM_NOISE);
        }
        if (name.endsWith(".bias") || name.endsWith("e_score_correction_bias")) {
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

    static void prepareOutDir(Path outDir, boolean overwrite) throws IOException {
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
            System.err.println("usage: RandomModelGenerator mixtral|qwen2_moe|deepseek_v3 tiny|bench f32|f16|bf16|f8_e4m3 SEED OUT_DIR"
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
