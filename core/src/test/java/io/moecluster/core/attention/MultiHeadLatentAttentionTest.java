package io.moecluster.core.attention;

import static org.assertj.core.api.Assertions.assertThat;

import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.testing.GoldenModels;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Multi-head latent attention's two forms, each held to the float64 reference on its own, and to
 * each other: the absorbed form (kv_b_proj folded into query and output, what decode runs) and the
 * expanded form (per-head keys and values from the cached latents, what prefill runs). They sum
 * the same products in different orders, so they agree to f32 rounding; the bound between them is
 * 1e-5 per row (relative L2, as the golden tests measure), measured far below it.
 */
class MultiHeadLatentAttentionTest {
    private static final double GOLDEN_TOLERANCE = 1e-4;
    private static final double FORMS_TOLERANCE = 1e-5;

    @ParameterizedTest
    @ValueSource(strings = {GoldenModels.DEEPSEEK_V3, GoldenModels.DEEPSEEK_V3_FP8})
    void absorbedAndExpandedFormsBothMatchTheReferenceAndEachOther(String model) throws Exception {
        try (Engine engine = Engine.open(GoldenModels.dir(model), EngineOptions.defaults().withThreads(2))) {
            MultiHeadLatentAttention mla = (MultiHeadLatentAttention) engine.transformer().attention();
            for (GoldenModels.Case c : GoldenModels.cases(model)) {
                mla.form(MultiHeadLatentAttention.Form.ABSORBED);
                float[][] absorbed = engine.prefillLogits(c.tokens());
                mla.form(MultiHeadLatentAttention.Form.EXPANDED);
                float[][] expanded = engine.prefillLogits(c.tokens());
                mla.form(MultiHeadLatentAttention.Form.PER_TOKEN);
                for (int t = 0; t < absorbed.length; t++) {
                    assertThat(GoldenModels.relativeError(absorbed[t], c.logits()[t]))
                            .as("%s %s row %d absorbed", model, c.name(), t).isLessThan(GOLDEN_TOLERANCE);
                    assertThat(GoldenModels.relativeError(expanded[t], c.logits()[t]))
                            .as("%s %s row %d expanded", model, c.name(), t).isLessThan(GOLDEN_TOLERANCE);
                    assertThat(GoldenModels.relativeError(absorbed[t], expanded[t]))
                            .as("%s %s row %d absorbed vs expanded", model, c.name(), t).isLessThan(FORMS_TOLERANCE);
                }
            }
        }
    }

    /** The cache holds the latent and the shared rope key: 24 + 8 floats per token and layer, not 4 heads x (24 + 16). */
    @ParameterizedTest
    @ValueSource(strings = {GoldenModels.DEEPSEEK_V3, GoldenModels.MIXTRAL})
    void theCacheIsSizedByWhatTheKindStores(String model) {
        try (Engine engine = Engine.open(GoldenModels.dir(model), EngineOptions.defaults().withThreads(1))) {
            Transformer tr = engine.transformer();
            int layers = engine.config().numLayers();
            try (KvCache cache = tr.newKvCache(10)) {
                if (model.equals(GoldenModels.DEEPSEEK_V3)) {
                    assertThat(tr.attention()).isInstanceOf(MultiHeadLatentAttention.class);
                    assertThat(cache.floatsPerToken()).isEqualTo(24 + 8);
                    assertThat(tr.uncompressedKvBytesPerToken()).isEqualTo(4L * layers * 4 * (24 + 16));
                } else {
                    assertThat(tr.attention()).isInstanceOf(GroupedQueryAttention.class);
                    assertThat(cache.floatsPerToken()).isEqualTo(2 * 2 * 16);
                    assertThat(tr.uncompressedKvBytesPerToken()).isEqualTo(tr.kvBytesPerToken());
                }
                assertThat(cache.byteSize()).isEqualTo(10 * tr.kvBytesPerToken());
                assertThat(tr.kvBytesPerToken()).isEqualTo(4L * layers * cache.floatsPerToken());
                // A shared prompt's prefix copies plane by plane, whatever the kind's layout.
                for (int p = 0; p < 2; p++) {
                    for (long i = 0; i < cache.plane(p).byteSize() / 4; i++) {
                        cache.plane(p).setAtIndex(ValueLayout.JAVA_FLOAT, i, p * 1e6f + i);
                    }
                }
                try (KvCache copy = tr.newKvCache(10)) {
                    cache.copyPrefixTo(copy, 6);
                    for (int p = 0; p < 2; p++) {
                        for (int l = 0; l < layers; l++) {
                            for (int pos = 0; pos < 10; pos++) {
                                for (int i = 0; i < cache.width(p); i++) {
                                    float got = copy.plane(p).getAtIndex(ValueLayout.JAVA_FLOAT,
                                            copy.index(p, l, pos) + i);
                                    float expected = pos < 6 ? cache.plane(p).getAtIndex(
                                            ValueLayout.JAVA_FLOAT, cache.index(p, l, pos) + i) : 0f;
                                    assertThat(got).as("plane %d layer %d position %d", p, l, pos).isEqualTo(expected);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
