package io.moecluster.core.attention;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moecluster.core.model.Architecture;
import io.moecluster.core.model.HfConfigFilesAccess;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.Preset;
import io.moecluster.core.model.RopeScaling;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * RoPE tables: plain RoPE as before, and YaRN against a float64 implementation written here from
 * the formulas of transformers' {@code _compute_yarn_parameters} and DeepSeek-V3's attention
 * ({@code yarn_get_mscale}). Tolerance: each table entry is a double rounded to f32, so it is within
 * one f32 rounding (6e-8 relative, 1e-7 absolute for |v| <= 1.2) of the reference.
 */
class RotaryEmbeddingTest {
    private static final double TABLE_TOLERANCE = 2e-7;

    /** The reference: transformers' YaRN in double, independent of {@link RopeScaling}. */
    record Yarn(double[] invFreq, double attentionFactor) {
        static double getMscale(double scale, double mscale) {
            if (scale <= 1) {
                return 1.0;
            }
            return 0.1 * mscale * Math.log(scale) + 1.0;
        }

        static Yarn of(int dim, double base, int maxPos, double factor, Integer originalMaxPos, Double betaFast,
                       Double betaSlow, Double mscale, Double mscaleAllDim, Double attentionFactor, boolean truncate) {
            int original = maxPos;
            if (originalMaxPos != null) {
                original = originalMaxPos;
                factor = (double) maxPos / originalMaxPos;
            }
            double attn;
            if (attentionFactor != null) {
                attn = attentionFactor;
            } else if (mscale != null && mscale != 0 && mscaleAllDim != null && mscaleAllDim != 0) {
                attn = getMscale(factor, mscale) / getMscale(factor, mscaleAllDim);
            } else {
                attn = getMscale(factor, 1);
            }
            double fast = betaFast == null ? 32 : betaFast;
            double slow = betaSlow == null ? 1 : betaSlow;
            double low = dim * Math.log(original / (fast * 2 * Math.PI)) / (2 * Math.log(base));
            double high = dim * Math.log(original / (slow * 2 * Math.PI)) / (2 * Math.log(base));
            if (truncate) {
                low = Math.floor(low);
                high = Math.ceil(high);
            }
            low = Math.max(low, 0);
            high = Math.min(high, dim - 1);
            if (low == high) {
                high += 0.001;
            }
            double[] inv = new double[dim / 2];
            for (int i = 0; i < dim / 2; i++) {
                double posFreq = Math.pow(base, (double) (2 * i) / dim);
                double extrapolation = 1.0 / posFreq;
                double interpolation = 1.0 / (factor * posFreq);
                double ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
                double extrapolationFactor = 1 - ramp;
                inv[i] = interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor;
            }
            return new Yarn(inv, attn);
        }
    }

    private static void assertTables(RotaryEmbedding rope, Yarn ref, int maxPositions) {
        for (int p : new int[] {0, 1, 7, 100, 1000, maxPositions - 1}) {
            for (int i = 0; i < ref.invFreq().length; i++) {
                double angle = p * ref.invFreq()[i];
                assertThat((double) rope.cos(p, i)).as("cos pos %d pair %d", p, i)
                        .isCloseTo(Math.cos(angle) * ref.attentionFactor(), within(TABLE_TOLERANCE));
                assertThat((double) rope.sin(p, i)).as("sin pos %d pair %d", p, i)
                        .isCloseTo(Math.sin(angle) * ref.attentionFactor(), within(TABLE_TOLERANCE));
            }
        }
    }

    /** DeepSeek-V3's own rope_scaling: factor 40 over 4096 original positions, mscale 1 and 1. */
    @Test
    void deepseekV3YarnTablesAndSoftmaxScale() throws Exception {
        String json = """
                {"model_type": "deepseek_v3", "vocab_size": 1000, "hidden_size": 256, "intermediate_size": 512,
                 "moe_intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "n_shared_experts": 1, "n_routed_experts": 16, "routed_scaling_factor": 2.5, "kv_lora_rank": 32,
                 "q_lora_rank": null, "qk_rope_head_dim": 64, "v_head_dim": 32, "qk_nope_head_dim": 32,
                 "n_group": 4, "topk_group": 2, "num_experts_per_tok": 4, "first_k_dense_replace": 1,
                 "max_position_embeddings": 163840, "rope_theta": 10000,
                 "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0,
                   "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096, "type": "yarn"}}""";
        ModelConfig c = ModelConfig.parse(new ObjectMapper().readTree(json), "v3");
        Yarn ref = Yarn.of(64, 10000, 163840, 40, 4096, 32.0, 1.0, 1.0, 1.0, null, true);
        assertThat(ref.attentionFactor()).isEqualTo(1.0);
        double[] inv = c.ropeScaling().inverseFrequencies(64, 10000, 163840);
        for (int i = 0; i < inv.length; i++) {
            assertThat(inv[i]).as("inv_freq %d", i).isCloseTo(ref.invFreq()[i], within(1e-15 * ref.invFreq()[i] + 1e-300));
        }
        // The ramp: the fastest dimensions keep their frequency, the slowest are divided by 40.
        assertThat(inv[0]).isEqualTo(1.0);
        assertThat(inv[31]).isCloseTo(1 / (40 * Math.pow(10000, 62.0 / 64)), within(1e-18));
        int maxPositions = 4096;
        try (Arena arena = Arena.ofConfined()) {
            assertTables(RotaryEmbedding.of(c, maxPositions, arena), ref, maxPositions);
        }
        // The softmax scale: mscale(40, 1)^2 = (0.1 ln 40 + 1)^2.
        double m = 0.1 * Math.log(40) + 1;
        assertThat(c.ropeScaling().softmaxScaleFactor()).isCloseTo(m * m, within(1e-15));
    }

    /** Mixtral and Qwen2-MoE with YaRN: the cos/sin factor 0.1 ln(f) + 1, and the variants of the keys. */
    @ParameterizedTest(name = "{0}")
    @CsvSource(nullValues = "-", value = {
        // name, factor, original, beta_fast, beta_slow, attention_factor, truncate, max_pos
        "qwen factor 4 over 32768, 4.0, 32768, -, -, -, true, 131072",
        "mixtral factor 8 without original, 8.0, -, -, -, -, true, 4096",
        "betas 16 and 2 untruncated, 2.0, -, 16, 2, -, false, 32768",
        "attention_factor given, 4.0, -, -, -, 1.5, true, 4096"})
    void yarnTablesMatchTheReference(String name, double factor, Integer original, Double betaFast, Double betaSlow,
                                     Double attentionFactor, boolean truncate, int maxPos) throws Exception {
        for (Architecture arch : new Architecture[] {Architecture.MIXTRAL, Architecture.QWEN2_MOE}) {
            var n = (ObjectNode) new ObjectMapper()
                    .readTree(HfConfigFilesAccess.config(Preset.TINY.config(arch)));
            n.put("max_position_embeddings", maxPos);
            var r = n.putObject("rope_scaling");
            r.put("rope_type", "yarn").put("factor", factor);
            if (original != null) {
                r.put("original_max_position_embeddings", original);
            }
            if (betaFast != null) {
                r.put("beta_fast", betaFast).put("beta_slow", betaSlow);
            }
            if (attentionFactor != null) {
                r.put("attention_factor", attentionFactor);
            }
            if (!truncate) {
                r.put("truncate", false);
            }
            ModelConfig c = ModelConfig.parse(n, name);
            Yarn ref = Yarn.of(16, 10000, maxPos, factor, original, betaFast, betaSlow, null, null, attentionFactor,
                    truncate);
            if (attentionFactor == null) {
                assertThat(ref.attentionFactor()).isGreaterThan(1.0);
            }
            assertThat(c.ropeScaling().softmaxScaleFactor()).as("only DeepSeek's mscale_all_dim scales the softmax")
                    .isEqualTo(1.0);
            try (Arena arena = Arena.ofConfined()) {
                assertTables(RotaryEmbedding.of(c, 2048, arena), ref, 2048);
            }
        }
    }

    /** Plain RoPE is the table it always was, bit for bit. */
    @Test
    void plainRopeIsUnchanged() {
        try (Arena arena = Arena.ofConfined()) {
            ModelConfig c = Preset.TINY.config(Architecture.MIXTRAL);
            RotaryEmbedding rope = RotaryEmbedding.of(c, 64, arena);
            for (int p = 0; p < 64; p++) {
                for (int i = 0; i < 8; i++) {
                    double angle = p * (1.0 / Math.pow(10000.0, (2.0 * i) / 16));
                    assertThat(rope.cos(p, i)).isEqualTo((float) Math.cos(angle));
                    assertThat(rope.sin(p, i)).isEqualTo((float) Math.sin(angle));
                }
            }
        }
    }

    /** Interleaved pairs (0,1), (2,3), ... only on the rope part of each head (DeepSeek-V3); halves otherwise. */
    @Test
    void interleavedRopeTurnsAdjacentPairsOfTheRopePart() {
        try (Arena arena = Arena.ofConfined()) {
            double[] inv = {0.5, 0.25};
            RotaryEmbedding inter = new RotaryEmbedding(4, inv, 1.0, true, 8, arena);
            RotaryEmbedding halves = new RotaryEmbedding(4, inv, 1.0, false, 8, arena);
            // Two heads of stride 6: 2 nope dims (untouched) then 4 rope dims.
            MemorySegment x = arena.allocate(12 * 4);
            MemorySegment y = arena.allocate(12 * 4);
            for (int i = 0; i < 12; i++) {
                x.setAtIndex(ValueLayout.JAVA_FLOAT, i, i + 1);
                y.setAtIndex(ValueLayout.JAVA_FLOAT, i, i + 1);
            }
            int pos = 3;
            inter.apply(x, 2, 2, 6, pos);
            halves.apply(y, 2, 2, 6, pos);
            for (int h = 0; h < 2; h++) {
                int b = h * 6;
                assertThat(x.getAtIndex(ValueLayout.JAVA_FLOAT, b)).isEqualTo(b + 1f);
                assertThat(x.getAtIndex(ValueLayout.JAVA_FLOAT, b + 1)).isEqualTo(b + 2f);
                for (int i = 0; i < 2; i++) {
                    double c = Math.cos(pos * inv[i]);
                    double s = Math.sin(pos * inv[i]);
                    // Interleaved: dims 2i and 2i+1 of the rope part.
                    double a = b + 3 + 2 * i;
                    double bb = b + 4 + 2 * i;
                    assertThat((double) x.getAtIndex(ValueLayout.JAVA_FLOAT, b + 2 + 2 * i)).isCloseTo(a * c - bb * s, within(1e-5));
                    assertThat((double) x.getAtIndex(ValueLayout.JAVA_FLOAT, b + 3 + 2 * i)).isCloseTo(bb * c + a * s, within(1e-5));
                    // Halves: dims i and i+2.
                    double ha = b + 3 + i;
                    double hb = b + 5 + i;
                    assertThat((double) y.getAtIndex(ValueLayout.JAVA_FLOAT, b + 2 + i)).isCloseTo(ha * c - hb * s, within(1e-5));
                    assertThat((double) y.getAtIndex(ValueLayout.JAVA_FLOAT, b + 4 + i)).isCloseTo(hb * c + ha * s, within(1e-5));
                }
            }
        }
    }
}
