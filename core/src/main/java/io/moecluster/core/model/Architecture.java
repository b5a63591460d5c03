package io.moecluster.core.model;

import java.util.Arrays;
import java.util.stream.Collectors;

/** The Hugging Face {@code model_type}s this engine serves. */
public enum Architecture {
    /** Mixtral (RakutenAI-2.0-8x7B): routed experts only, top-k weights always renormalised. */
    MIXTRAL("mixtral"),
    /** Qwen2-MoE: optional renormalisation, a shared expert behind a sigmoid gate, q/k/v bias. */
    QWEN2_MOE("qwen2_moe"),
    /**
     * DeepSeek-V3 (Rakuten AI 3.0): multi-head latent attention, sigmoid group-limited routing with
     * a correction bias and a scaling factor, ungated shared experts, the first layers dense.
     */
    DEEPSEEK_V3("deepseek_v3");

    private final String modelType;

    Architecture(String modelType) {
        this.modelType = modelType;
    }

    public String modelType() {
        return modelType;
    }

    public static Architecture fromModelType(String modelType, String source) {
        for (Architecture a : values()) {
            if (a.modelType.equals(modelType)) {
                return a;
            }
        }
        throw new ModelFormatException(source + ": unsupported model_type '" + modelType
                + "'; supported: " + Arrays.stream(values()).map(Architecture::modelType)
                        .collect(Collectors.joining(", ")));
    }
}
