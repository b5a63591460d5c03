package io.moecluster.attention;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.core.engine.Engine;
import io.moecluster.core.model.Architecture;
import io.moecluster.core.model.Preset;
import io.moecluster.core.model.RandomModelGenerator;
import io.moecluster.core.safetensors.DType;
import io.moecluster.core.sampling.FinishReason;
import io.moecluster.core.sampling.SamplingParams;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GenerationLoopTest {
    @TempDir
    Path modelDir;

    /** Collects one request's callbacks and completes when it ends. */
    static final class Recorder implements GenerationListener {
        final List<Integer> tokens = new CopyOnWriteArrayList<>();
        final CountDownLatch firstToken = new CountDownLatch(1);
        final CompletableFuture<FinishReason> done = new CompletableFuture<>();

        @Override
        public void onToken(int token) {
            tokens.add(token);
            firstToken.countDown();
        }

        @Override
        public void onFinish(FinishReason reason) {
            done.complete(reason);
        }

        @Override
        public void onError(Throwable cause) {
            done.completeExceptionally(cause);
        }
    }

    @Test
    void aFailedStepFailsTheRunningSequencesAndTheLoopServesOn() throws Exception {
        RandomModelGenerator.generate(Architecture.MIXTRAL, Preset.TINY, DType.F32, 3, modelDir);
        AtomicBoolean failNext = new AtomicBoolean();
        try (Engine engine = Engine.open(modelDir, AttentionServerTest.ENGINE);
             GenerationLoop loop = new GenerationLoop(engine, 2, 0, step -> () -> {
                 if (failNext.getAndSet(false)) {
                     throw new IllegalStateException("expert 3 on node b timed out");
                 }
                 return step.getAsInt();
             })) {
            SamplingParams params = SamplingParams.greedy(4000).withIgnoreEos(true);
            Recorder a = new Recorder();
            Recorder b = new Recorder();
            loop.submit(new int[] {1, 5, 6}, params, a);
            loop.submit(new int[] {1, 7}, params, b);
            assertThatThrownBy(() -> loop.submit(new int[] {1}, params, new Recorder()))
                    .isInstanceOf(CapacityExceededException.class);
            // Both running (each has a token) before the step fails.
            assertThat(a.firstToken.await(10, TimeUnit.SECONDS)).isTrue();
            assertThat(b.firstToken.await(10, TimeUnit.SECONDS)).isTrue();
            failNext.set(true);
            assertThatThrownBy(() -> a.done.get(10, TimeUnit.SECONDS)).hasMessageContaining("expert 3 on node b timed out");
            assertThatThrownBy(() -> b.done.get(10, TimeUnit.SECONDS)).hasMessageContaining("expert 3 on node b timed out");
            Recorder c = new Recorder();
            loop.submit(new int[] {1, 9}, SamplingParams.greedy(3).withIgnoreEos(true), c);
            assertThat(c.done.get(10, TimeUnit.SECONDS)).isEqualTo(FinishReason.LENGTH);
            assertThat(c.tokens).hasSize(3);
            // The count is refreshed after the step that finished c, which may end just after c heard of it.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (loop.runningCount() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertThat(loop.runningCount()).isZero();
        }
    }
}
