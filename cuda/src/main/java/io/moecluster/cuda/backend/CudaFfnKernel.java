package io.moecluster.cuda.backend;

import io.moecluster.core.backend.FfnBatch;
import io.moecluster.core.backend.FfnKernel;
import io.moecluster.core.model.FfnWeights;
import java.lang.foreign.MemorySegment;

/**
 * {@link FfnKernel} on a GPU: {@link #prepare} uploads weights (and, the first time, allocates the
 * workspace of an {@link ExpertFfnProgram}); {@link #runBatch} runs every expert of a batch with one
 * grouped GEMM per projection; {@link #run} is a batch of one.
 */
final class CudaFfnKernel implements FfnKernel {
    /**
     * Rows of one device chunk, as multiples of {@code maxRows}: a layer's batch in the
     * single-process engine has top-k rows per token, plus one for a shared expert (3 covers top-2
     * with a shared expert); a larger batch runs in several chunks.
     */
    static final int CHUNK_ROWS_PER_MAX_ROWS = 3;

    private final FfnDevice device;
    private final DeviceWeightStore store;
    private final int maxRows;
    private final int maxFfn;
    private final FfnBatch single = new FfnBatch(1);
    private ExpertFfnProgram program;

    /** @param device the GPU ({@link CudaFfnDevice}), or in tests a host emulation of its steps */
    CudaFfnKernel(FfnDevice device, DeviceWeightStore store, int maxRows, int maxFfn) {
        if (maxRows < 1 || maxFfn < 1) {
            throw new IllegalArgumentException("an FFN kernel for " + maxRows + " rows and FFNs " + maxFfn + " wide");
        }
        this.device = device;
        this.store = store;
        this.maxRows = maxRows;
        this.maxFfn = maxFfn;
    }

    @Override
    public void prepare(FfnWeights weights) {
        if (weights.ffn() > maxFfn) {
            throw new IllegalArgumentException("FFN width " + weights.ffn() + " exceeds this FFN runner's " + maxFfn);
        }
        synchronized (device) {
            device.bind();
            store.upload(weights);
            if (program == null) {
                program = new ExpertFfnProgram(device, store, weights.hidden(), maxFfn,
                        maxRows * CHUNK_ROWS_PER_MAX_ROWS, ExpertFfnProgram.DEFAULT_MAX_GROUPS);
            }
        }
    }

    @Override
    public void run(FfnWeights weights, MemorySegment x, int xRow, int rows, MemorySegment scales, long scaleIndex,
                    MemorySegment out, int outRow) {
        synchronized (single) {
            single.clear();
            single.add(weights, x, xRow, rows, scales, scaleIndex, out, outRow);
            try {
                runBatch(single);
            } finally {
                single.clear();
            }
        }
    }

    @Override
    public void runBatch(FfnBatch batch) {
        for (int i = 0; i < batch.size(); i++) {
            if (batch.rows(i) > maxRows) {
                throw new IllegalArgumentException(batch.rows(i) + " rows exceed this FFN runner's " + maxRows);
            }
        }
        if (program == null) {
            throw new IllegalStateException("no FFN weights were prepared on this cuda FFN runner");
        }
        synchronized (device) {
            device.bind();
            program.run(batch);
        }
    }

    @Override
    public int maxRows() {
        return maxRows;
    }

    @Override
    public void close() {
        // the workspace belongs to the device's arena, freed with the backend
    }
}
