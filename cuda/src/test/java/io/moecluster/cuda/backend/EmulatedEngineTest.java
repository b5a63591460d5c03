package io.moecluster.cuda.backend;

import static org.assertj.core.api.Assertions.assertThat;

import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.testing.GoldenModels;
import io.moecluster.cuda.check.GreedyComparison;
import java.util.Locale;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Whole engines with their experts on the emulated GPU path ({@code --device cuda-emulated}): what
 * {@code moe logits --device cuda} and {@code moe generate --device cuda} should give on a GPU, up
 * to the order of cuBLAS's f32 sums. This is where the GPU check's logits tolerance comes from.
 */
class EmulatedEngineTest {
    /**
     * The GPU check's bound on a row of logits against the float64 reference (the CPU engine's is
     * 1e-4): BF16 keeps 8 significant bits, so each value entering or leaving an expert GEMM moves by
     * up to 2^-9 of itself; with hidden size 64 little of that averages out, and the emulation
     * measures up to 2.3e-2 on mixtral-tiny's 36-token case (2.3e-3 on qwen2moe-tiny). 5e-2 leaves
     * room for cuBLAS's different summation order and the GPU's expf, and still catches a wrong
     * expert, layout or scale, which gives errors of order 1.
     */
    static final double LOGITS_TOLERANCE = 5e-2;

    @ParameterizedTest
    @ValueSource(strings = {GoldenModels.MIXTRAL, GoldenModels.QWEN2_MOE})
    void logitsStayWithinTheBf16ToleranceOfTheReference(String model) throws Exception {
        double worst = 0;
        try (Engine e = Engine.open(GoldenModels.dir(model), EngineOptions.defaults().withThreads(1)
                .withBackend(EmulatedCudaBackendProvider.NAME))) {
            assertThat(e.backend().name()).isEqualTo(EmulatedCudaBackendProvider.NAME);
            for (GoldenModels.Case c : GoldenModels.cases(model)) {
                float[][] logits = e.prefillLogits(c.tokens());
                for (int t = 0; t < logits.length; t++) {
                    double err = GoldenModels.relativeError(logits[t], c.logits()[t]);
                    worst = Math.max(worst, err);
                    assertThat(err).as("%s %s row %d", model, c.name(), t).isLessThan(LOGITS_TOLERANCE);
                }
            }
        }
        System.out.printf(Locale.ROOT, "%s: largest per-row relative error of logits, emulated GPU experts vs the "
                + "float64 reference: %.3g%n", model, worst);
    }

    @ParameterizedTest
    @ValueSource(strings = {GoldenModels.MIXTRAL, GoldenModels.QWEN2_MOE})
    void greedyTokensAgainstTheCpuEngine(String model) throws Exception {
        try (Engine cpu = Engine.open(GoldenModels.dir(model), EngineOptions.defaults().withThreads(1));
             Engine gpu = Engine.open(GoldenModels.dir(model), EngineOptions.defaults().withThreads(1)
                     .withBackend(EmulatedCudaBackendProvider.NAME))) {
            int[] prompt = GoldenModels.cases(model).getLast().tokens();
            GreedyComparison g = GreedyComparison.of(cpu, gpu, prompt, 24);
            System.out.printf(Locale.ROOT, "%s greedy, emulated GPU experts vs CPU: %s%n", model, g.describe());
            assertThat(g.reference()).hasSize(24);
            if (!g.equal()) {
                // a divergence is acceptable only where the CPU's own choice was nearly a tie
                assertThat(g.referenceTop2Gap()).isLessThan(0.05);
            }
        }
    }
}
