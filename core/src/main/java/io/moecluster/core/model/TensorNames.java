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

    /** Gate (w1), up (w3) and down (w2) projections of routed expert {@code expert}. */
    public String[] expert(int layer, int expert) {
        String p = moe(layer) + "experts." + expert + ".";
        return arch == Architecture.MIXTRAL
                ? new String[] {p + "w1.weight", p + "w3.weight", p + "w2.weight"}
                : new String[] {p + "gate_proj.weight", p + "up_proj.weight", p + "down_proj.weight"};
    }

    public String[] sharedExpert(int layer) {
        String p = moe(layer) + "shared_expert.";
        return new String[] {p + "gate_proj.weight", p + "up_proj.weight", p + "down_proj.weight"};
    }

    public String sharedExpertGate(int layer) {
        return moe(layer) + "shared_expert_gate.weight";
    }

    /** The dense MLP of a non-MoE layer (Qwen2-MoE {@code mlp_only_layers}). */
    public String[] denseMlp(int layer) {
        String p = layer(layer) + "mlp.";
        return new String[] {p + "gate_proj.weight", p + "up_proj.weight", p + "down_proj.weight"};
    }
}
