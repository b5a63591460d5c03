package io.moecluster.attention;

import io.moecluster.core.engine.BatchGenerator;
import io.moecluster.core.engine.Engine;
import io.moecluster.core.engine.Sequence;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.sampling.SamplingParams;
import io.moecluster.telemetry.ServiceTracing;
import io.opentelemetry.context.Context;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntSupplier;
import java.util.function.UnaryOperator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Drives a {@link BatchGenerator} on one dedicated thread, because the {@link Engine} under it is
 * single-threaded. Other threads hand requests over through a bounded queue; between steps the
 * loop admits them (so they join the running batch: continuous batching) and applies
 * cancellations; with no work it blocks on the queue instead of spinning.
 *
 * <p>Capacity is {@code maxRunning + maxQueued} requests in flight (queued, waiting or running);
 * past it {@link #submit} throws {@link CapacityExceededException} rather than queueing without
 * bound. A cancelled request gives its place back at once, from the cancelling thread, even while
 * a step runs: requests still queued here leave the queue then, and those the generator holds
 * (at most {@code maxRunning} waiting and {@code maxRunning} running, whatever the queue) are ended
 * at the next step boundary. So a storm of requests opened and cancelled cannot fill the queue for
 * the requests after it. If a step throws (a remote expert failed, say), every running sequence is
 * failed with that exception and the loop goes on serving new requests.
 *
 * <p>Built on {@link Engine#step} only: an engine whose transformer's {@code FeedForward} is the
 * cluster's remote MoE works unchanged.
 */
public final class GenerationLoop implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(GenerationLoop.class);
    /** How long an idle loop blocks before re-checking whether it was closed. */
    private static final long IDLE_POLL_MILLIS = 50;

    private final Engine engine;
    private final BatchGenerator generator;
    private final IntSupplier step;
    private final int maxRunning;
    private final int capacity;
    private final AtomicInteger inFlight = new AtomicInteger();
    /** Requests not yet handed to the generator; a cancelled one is taken out at once ({@link #requestCancel}). */
    private final BlockingQueue<GenerationHandle> submissions = new LinkedBlockingQueue<>();
    /** Bounded in practice: each handle enqueues itself at most once. */
    private final Queue<GenerationHandle> cancellations = new ConcurrentLinkedQueue<>();
    /** Loop thread only: the handle of every sequence the generator holds (a request of n has n). */
    private final Map<Sequence, GenerationHandle> active = new IdentityHashMap<>();
    /** Loop thread only: the requests the generator holds, once each. */
    private final Set<GenerationHandle> handles = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Thread thread;
    private volatile boolean closed;
    private volatile int running;
    private final StepTracing stepTracing;

    /**
     * @param maxRunning most sequences holding a KV cache at once
     * @param maxQueued most further requests waiting for a slot
     */
    public GenerationLoop(Engine engine, int maxRunning, int maxQueued) {
        this(engine, maxRunning, maxQueued, UnaryOperator.identity());
    }

    /** @param tracing step spans (and which steps get per-layer spans); off costs nothing per step */
    public GenerationLoop(Engine engine, int maxRunning, int maxQueued, ServiceTracing tracing) {
        this(engine, maxRunning, maxQueued, UnaryOperator.identity(), tracing);
    }

    /** @param stepDecorator wraps the generator's step (tests inject failures through it) */
    GenerationLoop(Engine engine, int maxRunning, int maxQueued, UnaryOperator<IntSupplier> stepDecorator) {
        this(engine, maxRunning, maxQueued, stepDecorator, ServiceTracing.off());
    }

    GenerationLoop(Engine engine, int maxRunning, int maxQueued, UnaryOperator<IntSupplier> stepDecorator,
                   ServiceTracing tracing) {
        if (maxQueued < 0) {
            throw new IllegalArgumentException("max queued requests must be >= 0, got " + maxQueued);
        }
        this.engine = engine;
        this.generator = new BatchGenerator(engine, maxRunning);
        this.step = stepDecorator.apply(generator::step);
        this.maxRunning = maxRunning;
        this.capacity = maxRunning + maxQueued;
        this.stepTracing = tracing.enabled() ? new StepTracing(tracing, maxRunning) : null;
        this.thread = Thread.ofPlatform().name("generation-loop").daemon(true).unstarted(this::run);
        thread.start();
    }

    public ModelConfig config() {
        return engine.config();
    }

    /** Most positions one sequence may use (prompt plus completion). */
    public int maxSequenceLength() {
        return engine.transformer().maxPositions();
    }

    public int maxRunning() {
        return maxRunning;
    }

    /** Sequences holding a KV cache after the last step. */
    public int runningCount() {
        return running;
    }

    /** Requests accepted and not yet running. */
    public int queuedCount() {
        return Math.max(0, inFlight.get() - running);
    }

    /**
     * Hands a request to the loop. Bad input (empty prompt, ids outside the vocabulary, too long)
     * is reported through {@link GenerationListener#onError} with an {@link IllegalArgumentException};
     * callers that want a synchronous answer validate first.
     *
     * @throws CapacityExceededException if {@code maxRunning + maxQueued} requests are in flight
     * @throws IllegalStateException if the loop is closed
     */
    public GenerationHandle submit(int[] prompt, SamplingParams params, GenerationListener listener) {
        return submit(prompt, params, listener, null);
    }

    /**
     * As {@link #submit(int[], SamplingParams, GenerationListener)}, traced: the steps this
     * request takes part in are spans in {@code traceContext}'s trace (the parent of a step is
     * its oldest request; the others are links).
     */
    public GenerationHandle submit(int[] prompt, SamplingParams params, GenerationListener listener,
                                   Context traceContext) {
        return submit(prompt, params, 1, listener, traceContext);
    }

    /**
     * As {@link #submit(int[], SamplingParams, GenerationListener, Context)}, for {@code n}
     * completions of the prompt that share its prefill (completion i samples with seed
     * {@code params.seed() + i}); the listener hears each by index. A request of n counts once
     * against the loop's capacity; n above max running is refused through {@link GenerationListener#onError}.
     */
    public GenerationHandle submit(int[] prompt, SamplingParams params, int n, GenerationListener listener,
                                   Context traceContext) {
        if (closed) {
            throw new IllegalStateException("generation loop is closed");
        }
        if (inFlight.incrementAndGet() > capacity) {
            inFlight.decrementAndGet();
            throw new CapacityExceededException("attention replica at capacity (" + capacity
                    + " requests: " + maxRunning + " running + " + (capacity - maxRunning) + " queued)");
        }
        GenerationHandle h = new GenerationHandle(this, prompt.clone(), params, n, listener);
        h.traceContext = traceContext;
        submissions.add(h);
        return h;
    }

    /**
     * Any thread, once per handle: its place is given back now. Still queued, it just leaves the
     * queue; otherwise the loop ends its sequences at the next step boundary.
     */
    void requestCancel(GenerationHandle h) {
        if (!submissions.remove(h)) {
            cancellations.add(h);
        }
        release(h);
    }

    /** Called by a handle's sink when the generator finished its sequence. */
    void finished(GenerationHandle h) {
        if (h.markDone()) {
            forget(h);
        }
        release(h);
    }

    private void forget(GenerationHandle h) {
        if (h.sequences != null) {
            for (Sequence s : h.sequences) {
                active.remove(s);
            }
        }
        handles.remove(h);
    }

    private void run() {
        while (!closed) {
            try {
                if (generator.isIdle()) {
                    GenerationHandle first = submissions.poll(IDLE_POLL_MILLIS, TimeUnit.MILLISECONDS);
                    if (first != null) {
                        admit(first);
                    }
                }
                drainSubmissions();
                applyCancellations();
                if (!generator.isIdle()) {
                    stepOnce();
                }
                running = generator.runningCount();
            } catch (InterruptedException e) {
                // Nobody but close() has a reason to interrupt; the while condition decides.
            } catch (RuntimeException | Error e) {
                // A bug in the loop itself: keep serving rather than leave every caller hanging.
                LOG.error("generation loop error", e);
            }
        }
    }

    /**
     * Hands queued requests to the generator while fewer than max-running wait there: enough to
     * fill every slot that frees up, and the rest stay in the queue, where a cancel removes them at once.
     */
    private void drainSubmissions() {
        GenerationHandle h;
        while (generator.waitingCount() < maxRunning && (h = submissions.poll()) != null) {
            admit(h);
        }
    }

    private void admit(GenerationHandle h) {
        if (h.isCancelRequested()) {
            release(h);
            return;
        }
        try {
            h.sequences = generator.submitGroup(h.prompt, h.params, h.sinks());
            h.sequence = h.sequences[0];
            for (Sequence s : h.sequences) {
                active.put(s, h);
            }
            handles.add(h);
        } catch (IllegalArgumentException e) {
            h.markDone();
            release(h);
            h.fail(e);
        }
    }

    private void applyCancellations() {
        GenerationHandle h;
        while ((h = cancellations.poll()) != null) {
            if (h.sequences != null && h.markDone()) {
                for (Sequence s : h.sequences) {
                    generator.cancel(s);
                }
                forget(h);
            }
            // A handle not yet admitted is dropped by admit(); one already done needs nothing.
            // Its place was given back when the cancel was asked for.
        }
    }

    private void stepOnce() {
        if (stepTracing != null) {
            stepTracing.step(handles);
        }
        try {
            int tokens = step.getAsInt();
            if (stepTracing != null) {
                stepTracing.succeeded(tokens);
            }
        } catch (RuntimeException | Error e) {
            if (stepTracing != null) {
                stepTracing.failed(e);
            }
            LOG.warn("step failed; failing {} running sequences: {}", generator.runningCount(), e.toString());
            List<GenerationHandle> failed = new ArrayList<>();
            for (Sequence s : generator.abortRunning()) {
                GenerationHandle h = active.get(s);
                if (h != null) {
                    forget(h);
                    if (h.markDone()) {
                        release(h);
                        failed.add(h);
                    }
                }
            }
            for (GenerationHandle h : failed) {
                h.fail(e);
            }
        }
    }

    /** Gives the request's place back, once, whichever thread gets here first. */
    private void release(GenerationHandle h) {
        if (h.release()) {
            inFlight.decrementAndGet();
        }
    }

    /** Stops the loop thread; requests still in flight are failed with an IllegalStateException. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        // No interrupt: the thread may be inside a step whose worker pool parks; an idle loop
        // notices within IDLE_POLL_MILLIS.
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        // The loop thread is gone: this thread now owns the generator.
        IllegalStateException cause = new IllegalStateException("generation loop closed");
        for (GenerationHandle h : List.copyOf(handles)) {
            for (Sequence s : h.sequences) {
                generator.cancel(s);
            }
            release(h);
            if (h.markDone()) {
                h.fail(cause);
            }
        }
        active.clear();
        handles.clear();
        GenerationHandle h;
        while ((h = submissions.poll()) != null) {
            release(h);
            if (h.markDone()) {
                h.fail(cause);
            }
        }
        running = 0;
    }
}
