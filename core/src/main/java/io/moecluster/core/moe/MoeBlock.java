package io.moecluster.core.moe;

import io.moecluster.core.attention.FeedForward;
import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.DenseMatMul;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.kernels.WeightMatrix;
import io.moecluster.core.model.ModelConfig;
import io.moecluster.core.model.WeightLoader;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The MoE block of a cluster, seen from the router: gate and top-k on the normalised hidden states,
 * the tokens grouped per expert and handed to an {@link ExpertDispatcher} (one batch per expert and
 * layer, each row with its routing weight), then the scaled outputs summed per token in ascending
 * expert id. The choice of experts is the model's {@link ExpertSelection}. The shared expert,
 * where the model has one, is dispatched like any expert with every token, weighted by its
 * sigmoid gate (Qwen2-MoE) or by 1 (DeepSeek-V3's ungated shared experts).
 *
 * <p>Only MoE layers come here; dense MLP layers stay with the attention side. Where the dispatcher
 * has two groups (expert services over Aeron), an attention loop may keep one layer of each of two
 * micro-batches out at once ({@link #submit}, {@link #await}): the ping-pong pipeline. Not
 * thread-safe: one caller (an attention loop, or the router's request handler) drives it.
 */
public final class MoeBlock implements FeedForward, AutoCloseable {
    private final ModelConfig config;
    private final ExpertDispatcher dispatcher;
    private final WeightMatrix[] gates;
    private final WeightMatrix[] sharedGates;
    private final int sharedId;

    private final Arena arena = Arena.ofShared();
    private final MoeGate gate;
    private final DenseMatMul matmul;
    private final boolean shared;
    private final AtomicLongArray tokensRouted;
    /**
     * One per dispatch group: a micro-batch's layer in flight keeps its routing and rows here. The
     * second is made by the first {@link #submit} to it, so a caller that only ever calls
     * {@link #forward} (the router-service) holds one.
     */
    private final Slot[] slots;
    private final int maxTokens;

    /** What a layer in flight needs until its answers are combined: routing, rows, outputs. */
    private static final class Slot {
        final MoeRouting routing;
        final MemorySegment grouped;
        final MemorySegment expertOut;
        final MemorySegment rowWeights;
        final MemorySegment sharedIn;
        final MemorySegment sharedOut;
        final MemorySegment sharedLogits;
        final MemorySegment sharedWeights;
        MemorySegment output;
        int tokens;
        boolean inFlight;

        /** @param submits whether layers may be submitted into it: room for a copy of the shared expert's input */
        Slot(ModelConfig config, int maxTokens, Arena arena, boolean submits) {
            int hidden = config.hiddenSize();
            int k = config.topK();
            this.routing = new MoeRouting(maxTokens, config.numExperts(), k);
            this.grouped = arena.allocate((long) maxTokens * k * hidden * 4, 64);
            this.expertOut = arena.allocate((long) maxTokens * k * hidden * 4, 64);
            this.rowWeights = arena.allocate((long) maxTokens * k * 4, 64);
            boolean shared = config.hasSharedExpert();
            this.sharedIn = shared && submits ? arena.allocate((long) maxTokens * hidden * 4, 64) : null;
            this.sharedOut = shared ? arena.allocate((long) maxTokens * hidden * 4, 64) : null;
            this.sharedLogits = shared ? arena.allocate((long) maxTokens * 4, 64) : null;
            this.sharedWeights = shared ? arena.allocate((long) maxTokens * 4, 64) : null;
            if (shared && !config.sharedExpertGated()) {
                // Ungated: every row's weight is 1, which the expert's scaling leaves exact.
                sharedWeights.fill((byte) 0);
                for (int t = 0; t < maxTokens; t++) {
                    Kernels.set(sharedWeights, t, 1f);
                }
            }
        }
    }

    public MoeBlock(ModelConfig config, WeightLoader loader, ExpertDispatcher dispatcher, ComputeBackend backend,
                    int maxTokens) {
        this.config = config;
        this.dispatcher = dispatcher;
        this.gates = new WeightMatrix[config.numLayers()];
        this.sharedGates = new WeightMatrix[config.numLayers()];
        for (int l = 0; l < config.numLayers(); l++) {
            if (config.isMoeLayer(l)) {
                gates[l] = loader.router(l);
                sharedGates[l] = loader.sharedExpertGate(l);
            }
        }
        this.sharedId = config.sharedExpertId();
        this.gate = new MoeGate(config.numExperts(), config.topK(), ExpertSelection.of(config, loader), maxTokens,
                backend.newMatMul(), arena);
        this.matmul = backend.newMatMul();
        this.shared = config.hasSharedExpert();
        // Two slots only where the dispatcher can have two layers out (experts in other processes).
        this.slots = new Slot[Math.min(dispatcher.groups(), FeedForward.MAX_IN_FLIGHT)];
        this.maxTokens = maxTokens;
        slots[0] = new Slot(config, maxTokens, arena, slots.length > 1);
        this.tokensRouted = new AtomicLongArray(config.expertSlots());
    }

    public ModelConfig config() {
        return config;
    }

    /** Bytes of the gate (and shared-expert gate) of a MoE layer; 0 for a dense layer. */
    public long gateBytes(int layer) {
        return gates[layer] == null ? 0
                : gates[layer].byteSize() + (sharedGates[layer] == null ? 0 : sharedGates[layer].byteSize());
    }

    /** Tokens routed to each expert since start, all layers summed; the shared expert last. */
    public long tokensRouted(int expert) {
        return tokensRouted.get(expert);
    }

    public int expertSlots() {
        return tokensRouted.length();
    }

    @Override
    public void forward(int layer, MemorySegment input, int tokens, MemorySegment output) {
        for (int i = 0; i < slots.length; i++) {
            abandon(i); // a micro-batch of a failed step may have left its layer out
        }
        start(0, layer, input, tokens, output, false);
        finish(0);
    }

    /**
     * Routes and sends the layer of micro-batch {@code slot} and returns while the experts compute,
     * where the dispatcher runs them elsewhere ({@link #overlaps()}); else computes it now.
     */
    @Override
    public void submit(int slot, int layer, MemorySegment input, int tokens, MemorySegment output) {
        if (slot < 0 || slot >= FeedForward.MAX_IN_FLIGHT) {
            throw new IllegalArgumentException("micro-batch slot " + slot);
        }
        if (slots.length == 1) { // one group (experts in this thread): computed now, nothing left out
            forward(layer, input, tokens, output);
            return;
        }
        if (slots[slot] == null) {
            slots[slot] = new Slot(config, maxTokens, arena, true);
        }
        abandon(slot); // its last layer was never awaited: the step it belonged to failed
        start(slot, layer, input, tokens, output, true);
        slots[slot].inFlight = true;
    }

    @Override
    public void await(int slot) {
        if (slot < 0 || slot >= slots.length || slots[slot] == null || !slots[slot].inFlight) {
            return;
        }
        slots[slot].inFlight = false;
        finish(slot);
    }

    /** Two micro-batches overlap where the dispatcher can have two layers out at once. */
    @Override
    public boolean overlaps() {
        return slots.length > 1;
    }

    private void abandon(int slot) {
        if (slots[slot] != null && slots[slot].inFlight) {
            slots[slot].inFlight = false;
            dispatcher.discard(slot);
        }
    }

    /**
     * Gate, top-k and the dispatches of one layer into {@code slot}'s group. {@code copyInput}: the
     * caller may reuse {@code input} before the answers are in (a submit), so the shared expert's
     * rows, which are sent from it, are copied first (a failover sends them again).
     */
    private void start(int slot, int layer, MemorySegment input, int tokens, MemorySegment output, boolean copyInput) {
        if (gates[layer] == null) {
            throw new IllegalArgumentException("layer " + layer + " is a dense layer; the router serves MoE layers only");
        }
        Slot s = slots[slot];
        MoeRouting routing = s.routing;
        int hidden = config.hiddenSize();
        gate.route(layer, gates[layer], input, tokens, routing);
        for (int t = 0; t < tokens; t++) {
            for (int j = 0; j < routing.topK(); j++) {
                Kernels.set(s.rowWeights, routing.slotRow(t, j), routing.weight(t, j));
            }
        }
        for (int row = 0; row < routing.rows(); row++) {
            MemorySegment.copy(input, (long) routing.rowToken(row) * hidden * 4, s.grouped, (long) row * hidden * 4,
                    (long) hidden * 4);
        }
        s.output = output;
        s.tokens = tokens;
        try {
            for (int e = 0; e < config.numExperts(); e++) {
                int n = routing.expertCount(e);
                if (n > 0) {
                    dispatcher.dispatch(slot, layer, e, s.grouped, routing.expertOffset(e), n, s.rowWeights, s.expertOut);
                    tokensRouted.addAndGet(e, n);
                }
            }
            if (shared) {
                if (sharedGates[layer] != null) {
                    matmul.apply(sharedGates[layer], input, s.sharedLogits, tokens);
                    for (int t = 0; t < tokens; t++) {
                        Kernels.set(s.sharedWeights, t, (float) (1.0 / (1.0 + Math.exp(-Kernels.get(s.sharedLogits, t)))));
                    }
                }
                MemorySegment rows = input;
                if (copyInput) {
                    MemorySegment.copy(input, 0, s.sharedIn, 0, (long) tokens * hidden * 4);
                    rows = s.sharedIn;
                }
                dispatcher.dispatch(slot, layer, sharedId, rows, 0, tokens, s.sharedWeights, s.sharedOut);
                tokensRouted.addAndGet(sharedId, tokens);
            }
        } catch (RuntimeException | Error e) {
            dispatcher.discard(slot); // the batches sent before the failure: their answers go nowhere
            throw e;
        }
    }

    /** Waits for {@code slot}'s answers and sums them into its output, in ascending expert id. */
    private void finish(int slot) {
        Slot s = slots[slot];
        dispatcher.awaitAll(slot);
        MoeCombiner.sumScaled(s.routing, s.expertOut, s.output, config.hiddenSize());
        if (shared) {
            Kernels.add(s.sharedOut, 0, s.output, 0, s.tokens * config.hiddenSize());
        }
    }

    @Override
    public void close() {
        dispatcher.close();
        arena.close();
    }
}
