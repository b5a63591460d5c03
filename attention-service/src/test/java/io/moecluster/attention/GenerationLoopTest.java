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
import java.util.function.IntSupplier;
import java.util.function.UnaryOperator;
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

    /** Holds the loop's first step until {@link #goOn}, so that a test can act while a step runs. */
    static final class HeldStep implements UnaryOperator<IntSupplier> {
        final AtomicBoolean holdNext = new AtomicBoolean(true);
        final CountDownLatch inStep = new CountDownLatch(1);
        final CountDownLatch goOn = new CountDownLatch(1);

        @Override
        public IntSupplier apply(IntSupplier step) {
            return () -> {
                if (holdNext.getAndSet(false)) {
                    inStep.countDown();
                    try {
                        goOn.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
                return step.getAsInt();
            };
        }
    }

    /**
     * Issue 13, defect 3: requests opened and cancelled while a step runs (here: while it is held)
     * give their places back at once, so after a storm of 300 of them a normal request is accepted
     * rather than refused for capacity, and completes once the step goes on.
     */
    @Test
    void aCancelStormDuringAStepLeavesRoomForTheNextRequest() throws Exception {
        RandomModelGenerator.generate(Architecture.MIXTRAL, Preset.TINY, DType.F32, 3, modelDir);
        HeldStep held = new HeldStep();
        try (Engine engine = Engine.open(modelDir, AttentionServerTest.ENGINE);
             GenerationLoop loop = new GenerationLoop(engine, 1, 4, held)) {
            try {
                SamplingParams params = SamplingParams.greedy(3).withIgnoreEos(true);
                Recorder running = new Recorder();
                loop.submit(new int[] {1, 5, 6}, params, running);
                assertThat(held.inStep.await(10, TimeUnit.SECONDS)).isTrue();
                for (int i = 0; i < 300; i++) {
                    loop.submit(new int[] {1, 7 + i % 50}, params, new Recorder()).cancel();
                }
                assertThat(loop.queuedCount()).as("cancelled requests hold no place (the running one may count)")
                        .isLessThanOrEqualTo(1);
                Recorder normal = new Recorder();
                loop.submit(new int[] {1, 9}, params, normal);
                // Capacity 5 (1 running + 4 queued) is still enforced for requests that stay.
                GenerationHandle[] more = new GenerationHandle[3];
                for (int i = 0; i < more.length; i++) {
                    more[i] = loop.submit(new int[] {1, 11 + i}, params, new Recorder());
                }
                assertThatThrownBy(() -> loop.submit(new int[] {1, 20}, params, new Recorder()))
                        .isInstanceOf(CapacityExceededException.class);
                for (GenerationHandle h : more) {
                    h.cancel();
                }
                held.goOn.countDown();
                assertThat(normal.done.get(10, TimeUnit.SECONDS)).isEqualTo(FinishReason.LENGTH);
                assertThat(normal.tokens).hasSize(3);
                assertThat(running.done.get(10, TimeUnit.SECONDS)).isEqualTo(FinishReason.LENGTH);
            } finally {
                held.goOn.countDown(); // a failed assertion must not leave the loop held: close() joins it
            }
        }
    }

    /** A running request cancelled mid-step gives its place back at once, not at the end of the step. */
    @Test
    void aRunningRequestCancelledMidStepGivesItsPlaceBackAtOnce() throws Exception {
        RandomModelGenerator.generate(Architecture.MIXTRAL, Preset.TINY, DType.F32, 3, modelDir);
        HeldStep held = new HeldStep();
        try (Engine engine = Engine.open(modelDir, AttentionServerTest.ENGINE);
             GenerationLoop loop = new GenerationLoop(engine, 1, 0, held)) {
            try {
                GenerationHandle first = loop.submit(new int[] {1, 5, 6}, SamplingParams.greedy(50).withIgnoreEos(true),
                        new Recorder());
                assertThat(held.inStep.await(10, TimeUnit.SECONDS)).isTrue();
                first.cancel();
                Recorder next = new Recorder();
                loop.submit(new int[] {1, 9}, SamplingParams.greedy(3).withIgnoreEos(true), next); // capacity 1
                held.goOn.countDown();
                assertThat(next.done.get(10, TimeUnit.SECONDS)).isEqualTo(FinishReason.LENGTH);
            } finally {
                held.goOn.countDown();
            }
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
