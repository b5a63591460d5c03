package io.moecluster.cuda.backend;

import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.DenseMatMul;
import io.moecluster.core.backend.FfnKernel;
import io.moecluster.core.backend.cpu.MatMul;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.parallel.WorkerPool;
import io.moecluster.cuda.bindings.CudaLibraries;

/**
 * The cuda backend of one engine or expert service: its FFNs (routed experts, the shared expert,
 * dense MLPs) on one GPU ({@link CudaFfnDevice}, {@link ExpertFfnProgram}), weights uploaded once as
 * BF16 ({@link DeviceWeightStore}); the dense matmuls (attention projections, LM head, MoE gates)
 * stay on the CPU's vector kernels on the owner's pool.
 */
public final class CudaBackend implements ComputeBackend {
    private final WorkerPool pool;
    private final CudaFfnDevice device;
    private final DeviceWeightStore store;

    public CudaBackend(CudaLibraries libs, int index, WorkerPool pool) {
        this.pool = pool;
        this.device = new CudaFfnDevice(libs, index);
        this.store = new DeviceWeightStore(device);
    }

    @Override
    public String name() {
        return CudaBackendProvider.NAME;
    }

    @Override
    public String description() {
        return device.describe() + "; expert FFNs on the GPU in BF16, dense matmuls on the CPU (" + Kernels.describe()
                + ", " + pool.threads() + (pool.threads() == 1 ? " thread)" : " threads)");
    }

    @Override
    public DenseMatMul newMatMul() {
        return new MatMul(pool);
    }

    @Override
    public FfnKernel newFfn(int maxRows, int maxFfn) {
        return new CudaFfnKernel(device, store, maxRows, maxFfn);
    }

    public CudaFfnDevice device() {
        return device;
    }

    /** Weights on the device, bytes. */
    public long weightBytes() {
        return store.bytes();
    }

    @Override
    public void close() {
        device.close();
    }
}
