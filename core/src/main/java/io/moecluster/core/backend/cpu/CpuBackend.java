package io.moecluster.core.backend.cpu;

import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.DenseMatMul;
import io.moecluster.core.backend.FfnKernel;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.parallel.WorkerPool;

/**
 * The Vector API kernels on a {@link WorkerPool}: weights are read where they are mapped, and
 * every output element is computed by one thread in a fixed order, so results do not depend on
 * the thread count. The pool belongs to the owner (engine or service), which closes it.
 */
public final class CpuBackend implements ComputeBackend {
    private final WorkerPool pool;

    public CpuBackend(WorkerPool pool) {
        this.pool = pool;
    }

    @Override
    public String name() {
        return CpuBackendProvider.NAME;
    }

    @Override
    public String description() {
        return Kernels.describe() + ", " + pool.threads() + (pool.threads() == 1 ? " thread" : " threads");
    }

    @Override
    public DenseMatMul newMatMul() {
        return new MatMul(pool);
    }

    @Override
    public FfnKernel newFfn(int maxRows, int maxFfn) {
        return new CpuFfnKernel(maxRows, maxFfn, pool);
    }

    @Override
    public void close() {
    }
}
