package io.moecluster.core.model;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** Model sizes {@link RandomModelGenerator} can produce, each for every architecture. */
public enum Preset {
    /**
     * The golden-test size: vocabulary 259 (3 special tokens + 256 bytes), hidden 64, 2 layers,
     * 4 heads over 2 KV heads, 8 experts top-2 with FFN 128 (Qwen2-MoE: shared expert FFN 96,
     * dense FFN 256). Generates in milliseconds; for unit tests. The DeepSeek-V3 variant has the
     * shapes of the golden model {@code deepseek-v3-tiny}: hidden 64, 3 layers (the first dense,
     * FFN 128), 4 heads of MLA (q LoRA 32, KV latent 24, nope 16 + rope 8, v 16), 16 experts top-4
     * of FFN 32 in 4 groups keeping 2, one shared expert, routed scaling 2.5; FP8 blocks of 16x16.
     */
    TINY,
    /**
     * A Mixtral-shaped model scaled down for benchmarks: vocabulary 32000, hidden 1024, 8 layers,
     * 16 heads over 4 KV heads (head_dim 64), 8 experts top-2 with FFN 2048: about 0.49 B
     * parameters, 1 GB in BF16. The Qwen2-MoE variant has expert FFN 1024, a shared expert of
     * FFN 2048 and dense FFN 4096 (about 0.34 B parameters). The DeepSeek-V3 variant is V3 scaled
     * down: hidden 1024, 8 layers (the first dense, FFN 2816), 16 heads of MLA (q LoRA 384, KV
     * latent 256, nope 64 + rope 32, v 64: 288 cached floats per token and layer against 2048
     * uncompressed), 64 experts top-6 of FFN 256 in 8 groups keeping 4, two shared experts (FFN
     * 512), routed scaling 2.5, YaRN as V3 has it (factor 40 over an original 4096 positions,
     * mscale 1), about 0.45 B parameters; FP8 blocks of 128x128 as V3's.
     */
    BENCH;

    /** The lower-case name used on command lines, e.g. {@code tiny}. */
    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static Preset fromId(String id) {
        for (Preset p : values()) {
            if (p.id().equalsIgnoreCase(id)) {
                return p;
            }
        }
        throw new IllegalArgumentException("unknown preset '" + id + "'; known: "
                + Arrays.stream(values()).map(Preset::id).collect(Collectors.joining(", ")));
    }

    /** The full configuration of this preset for {@code arch}. */
    public ModelConfig config(Architecture arch) {
        return switch (this) {
            case TINY -> switch (arch) {
                case MIXTRAL -> mixtral(259, 64, 2, 4, 2, 8, 2, 128, 1e-5, 10000.0, 4096);
                case QWEN2_MOE -> qwen2Moe(259, 64, 2, 4, 2, 8, 2, 128, 256, 96, 1e-5, 10000.0, 4096);
                case DEEPSEEK_V3 -> deepseekV3(259, 64, 3, 4, new MlaConfig(32, 24, 16, 8, 16, true), 16, 4, 32, 128,
                        1, 1, new GroupLimitedRouting(4, 2, 2.5), 4096, null);
            };
            case BENCH -> switch (arch) {
                case MIXTRAL -> mixtral(32000, 1024, 8, 16, 4, 8, 2, 2048, 1e-5, 1e6, 32768);
                case QWEN2_MOE -> qwen2Moe(32000, 1024, 8, 16, 4, 8, 2, 1024, 4096, 2048, 1e-6, 1e6, 32768);
                case DEEPSEEK_V3 -> deepseekV3(32000, 1024, 8, 16, new MlaConfig(384, 256, 64, 32, 64, true), 64, 6,
                        256, 2816, 2, 1, new GroupLimitedRouting(8, 4, 2.5), 163840,
                        new RopeScaling(40, 4096, 32, 1, 1.0, 1.0, Double.NaN, true));
            };
        };
    }

    /** The FP8 block size a checkpoint of this preset is written with: DeepSeek-V3's 128x128, or 16x16 for tiny shapes. */
    public BlockQuantization fp8Blocks() {
        return this == TINY ? new BlockQuantization(16, 16) : new BlockQuantization(128, 128);
    }

    private static ModelConfig deepseekV3(int vocab, int hidden, int layers, int heads, MlaConfig mla, int experts,
                                          int topK, int expertFfn, int denseFfn, int sharedExperts, int firstDense,
                                          GroupLimitedRouting routing, int maxPos, RopeScaling rope) {
        int[] dense = new int[firstDense];
        for (int l = 0; l < firstDense; l++) {
            dense[l] = l;
        }
        return new ModelConfig(Architecture.DEEPSEEK_V3, vocab, hidden, layers, heads, heads, mla.qkHeadDim(),
                experts, topK, expertFfn, denseFfn, sharedExperts * expertFfn, true, false, 1e-6, 10000.0, maxPos, 0,
                false, 1, new int[] {2}, 1, dense, rope, mla, routing, null);
    }

    private static ModelConfig mixtral(int vocab, int hidden, int layers, int heads, int kvHeads,
                                       int experts, int topK, int expertFfn,
                                       double eps, double ropeTheta, int maxPos) {
        return new ModelConfig(Architecture.MIXTRAL, vocab, hidden, layers, heads, kvHeads, hidden / heads,
                experts, topK, expertFfn, expertFfn, 0, true, false, eps, ropeTheta, maxPos, 0, false,
                1, new int[] {2}, 1, new int[0]);
    }

    private static ModelConfig qwen2Moe(int vocab, int hidden, int layers, int heads, int kvHeads,
                                        int experts, int topK, int expertFfn, int denseFfn, int sharedFfn,
                                        double eps, double ropeTheta, int maxPos) {
        return new ModelConfig(Architecture.QWEN2_MOE, vocab, hidden, layers, heads, kvHeads, hidden / heads,
                experts, topK, expertFfn, denseFfn, sharedFfn, false, true, eps, ropeTheta, maxPos, 0, false,
                1, new int[] {2}, 1, new int[0]);
    }
}
