package io.moecluster.core.model;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** Model sizes {@link RandomModelGenerator} can produce, each for both architectures. */
public enum Preset {
    /**
     * The golden-test size: vocabulary 259 (3 special tokens + 256 bytes), hidden 64, 2 layers,
     * 4 heads over 2 KV heads, 8 experts top-2 with FFN 128 (Qwen2-MoE: shared expert FFN 96,
     * dense FFN 256). Generates in milliseconds; for unit tests.
     */
    TINY,
    /**
     * A Mixtral-shaped model scaled down for benchmarks: vocabulary 32000, hidden 1024, 8 layers,
     * 16 heads over 4 KV heads (head_dim 64), 8 experts top-2 with FFN 2048: about 0.49 B
     * parameters, 1 GB in BF16. The Qwen2-MoE variant has expert FFN 1024, a shared expert of
     * FFN 2048 and dense FFN 4096 (about 0.34 B parameters).
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
            };
            case BENCH -> switch (arch) {
                case MIXTRAL -> mixtral(32000, 1024, 8, 16, 4, 8, 2, 2048, 1e-5, 1e6, 32768);
                case QWEN2_MOE -> qwen2Moe(32000, 1024, 8, 16, 4, 8, 2, 1024, 4096, 2048, 1e-6, 1e6, 32768);
            };
        };
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
