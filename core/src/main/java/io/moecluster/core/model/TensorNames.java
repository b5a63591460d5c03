package io.moecluster.core.model;

/** Hugging Face tensor names of each architecture, in one place. */
public final class TensorNames {
    private final Architecture arch;

    public TensorNames(Architecture arch) {
        this.arch = arch;
    }

    public static final String EMBED = "model.embed_tokens.weight";
    public static final String FINAL_NORM = "model.norm.weight";
    public static final String LM_HEAD = "lm_head.weight";

    private static String layer(int layer) {
        return "model.layers." + layer + ".";
    }

    public String inputNorm(int layer) {
        return layer(layer) + "input_layernorm.weight";
    }

    public String postAttentionNorm(int layer) {
        return layer(layer) + "post_attention_layernorm.weight";
    }

    /** {@code proj} is one of q, k, v, o. */
    public String attention(int layer, char proj, String kind) {
        return layer(layer) + "self_attn." + proj + "_proj." + kind;
    }

    private String moe(int layer) {
        return layer(layer) + (arch == Architecture.MIXTRAL ? "block_sparse_moe." : "mlp.");
    }

    public String router(int layer) {
        return moe(layer) + "gate.weight";
    }

    /** DeepSeek-V3's per-expert bias, added to the sigmoid scores for choosing experts only (F32). */
    public String routerBias(int layer) {
        return moe(layer) + "gate.e_score_correction_bias";
    }

    /** Gate (w1), up (w3) and down (w2) projections of routed expert {@code expert}. */
    public String[] expert(int layer, int expert) {
        String p = moe(layer) + "experts." + expert + ".";
        return arch == Architecture.MIXTRAL
                ? new String[] {p + "w1.weight", p + "w3.weight", p + "w2.weight"}
                : new String[] {p + "gate_proj.weight", p + "up_proj.weight", p + "down_proj.weight"};
    }

    /** The shared expert: Qwen2-MoE's {@code shared_expert}, DeepSeek-V3's {@code shared_experts} (one MLP of them all). */
    public String[] sharedExpert(int layer) {
        String p = moe(layer) + (arch == Architecture.DEEPSEEK_V3 ? "shared_experts." : "shared_expert.");
        return new String[] {p + "gate_proj.weight", p + "up_proj.weight", p + "down_proj.weight"};
    }

    public String sharedExpertGate(int layer) {
        return moe(layer) + "shared_expert_gate.weight";
    }

    /**
     * A tensor of multi-head latent attention: {@code part} is {@code q_a_proj}, {@code q_a_layernorm},
     * {@code q_b_proj}, {@code q_proj} (without q LoRA), {@code kv_a_proj_with_mqa}, {@code kv_a_layernorm},
     * {@code kv_b_proj} or {@code o_proj}.
     */
    public String mla(int layer, String part) {
        return layer(layer) + "self_attn." + part + ".weight";
    }

    /** The companion of an FP8 weight {@code weight}: its block scales. */
    public static String scaleInv(String weight) {
        return weight + "_scale_inv";
    }

    /** The layer a tensor name belongs to ({@code model.layers.N.}), or -1. */
    public static int layerOf(String tensor) {
        if (!tensor.startsWith("model.layers.")) {
            return -1;
        }
        int end = tensor.indexOf('.', "model.layers.".length());
        try {
            return Integer.parseInt(tensor.substring("model.layers.".length(), end < 0 ? tensor.length() : end));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** The dense MLP of a non-MoE layer (Qwen2-MoE {@code mlp_only_layers}, DeepSeek-V3's first layers). */
    public String[] denseMlp(int layer) {
        String p = layer(layer) + "mlp.";
        return new String[] {p + "gate_proj.weight", p + "up_proj.weight", p + "down_proj.weight"};
    }
}
