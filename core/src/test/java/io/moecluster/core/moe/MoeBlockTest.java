package io.moecluster.core.moe;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.EngineOptions;
import io.moecluster.core.attention.FeedForwardLayers;
import io.moecluster.core.attention.FeedForwardFactory;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.safetensors.Checkpoint;
import io.moecluster.core.model.WeightLoader;
import io.moecluster.core.testing.GoldenModels;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The router path — gate on the router, experts in separate banks that scale their own rows, a
 * plain sum in expert order — gives the single-process engine's logits to the bit.
 */
class MoeBlockTest {
    /** Experts split over two banks, as over two expert services (the shared expert in the second). */
    static final class TwoBankDispatcher implements ExpertDispatcher {
        final ExpertBank low;
        final ExpertBank high;
        final Checkpoint checkpoint;
        final WeightLoader loader;
        int dispatches;

        TwoBankDispatcher(Path dir, ModelConfig config, ComputeBackend backend, int maxRows) {
            checkpoint = Checkpoint.open(dir);
            loader = new WeightLoader(checkpoint, config);
            int half = config.numExperts() / 2;
            BitSet a = new BitSet();
            a.set(0, half);
            BitSet b = new BitSet();
            b.set(half, config.expertSlots());
            low = new ExpertBank(config, loader, a, 0, config.numLayers() - 1, backend, maxRows);
            high = new ExpertBank(config, loader, b, 0, config.numLayers() - 1, backend, maxRows);
        }

        @Override
        public void dispatch(int layer, int expert, MemorySegment rows, int row, int count, MemorySegment weights,
                             MemorySegment out) {
            ExpertBank bank = low.hosts(layer, expert) ? low : high;
            bank.run(layer, expert, rows, row, count, weights, row, out, row);
            dispatches++;
        }

        @Override
        public void awaitAll() {
        }

        @Override
        public void close() {
            low.close();
            high.close();
            loader.close();
            checkpoint.close();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {GoldenModels.MIXTRAL, GoldenModels.QWEN2_MOE, GoldenModels.DEEPSEEK_V3,
        GoldenModels.DEEPSEEK_V3_FP8})
    void routerWithRemoteStyleExpertsMatchesTheLocalEngineBitForBit(String model) throws Exception {
        Path dir = GoldenModels.dir(model);
        List<MoeBlock> routers = new ArrayList<>();
        FeedForwardFactory viaRouter = (config, loader, backend, maxTokens) -> {
            MoeBlock router = new MoeBlock(config, loader,
                    new TwoBankDispatcher(dir, config, backend, maxTokens * config.topK()), backend, maxTokens);
            routers.add(router);
            return new FeedForwardLayers(config, loader, backend, maxTokens, router);
        };
        try (Engine local = Engine.open(dir, EngineOptions.defaults().withThreads(2));
             Engine routed = Engine.open(dir, EngineOptions.defaults().withThreads(2), viaRouter)) {
            for (GoldenModels.Case c : GoldenModels.cases(model)) {
                float[][] expected = local.prefillLogits(c.tokens());
                float[][] actual = routed.prefillLogits(c.tokens());
                for (int t = 0; t < expected.length; t++) {
                    assertThat(actual[t]).as("%s %s row %d", model, c.name(), t).containsExactly(expected[t]);
                }
            }
            MoeBlock router = routers.getFirst();
            long total = 0;
            for (int e = 0; e < router.config().numExperts(); e++) {
                total += router.tokensRouted(e);
            }
            int tokens = 0;
            for (GoldenModels.Case c : GoldenModels.cases(model)) {
                tokens += c.tokens().length;
            }
            int moeLayers = 0;
            for (int l = 0; l < router.config().numLayers(); l++) {
                moeLayers += router.config().isMoeLayer(l) ? 1 : 0;
            }
            assertThat(total).as("top-k per token per MoE layer").isEqualTo(
                    (long) tokens * router.config().topK() * moeLayers);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {GoldenModels.MIXTRAL})
    void anExpertWithNoHostFailsTheStepWithItsName(String model) throws Exception {
        Path dir = GoldenModels.dir(model);
        FeedForwardFactory onlyHalf = (config, loader, backend, maxTokens) -> {
            BitSet a = new BitSet();
            a.set(0, 4);
            ExpertBank bank = new ExpertBank(config, loader, a, 0, config.numLayers() - 1, backend, maxTokens * 2);
            return new MoeBlock(config, loader, new LocalExpertDispatcher(bank), backend, maxTokens);
        };
        try (Engine routed = Engine.open(dir, EngineOptions.defaults(), onlyHalf)) {
            assertThatThrownBy(() -> routed.prefillLogits(new int[] {1, 72, 101, 108, 108, 111, 35, 87, 111}))
                    .isInstanceOf(ExpertUnavailableException.class)
                    .hasMessageContaining("is not hosted");
        }
    }
}
