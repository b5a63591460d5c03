package io.moecluster.cuda.backend;

import io.moecluster.core.backend.Availability;
import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.ComputeBackendProvider;
import io.moecluster.core.backend.DenseMatMul;
import io.moecluster.core.backend.FfnKernel;
import io.moecluster.core.backend.cpu.MatMul;
import io.moecluster.core.parallel.WorkerPool;

/**
 * {@code --device cuda-emulated} in this module's tests: the cuda backend exactly as it runs on a GPU
 * ({@link CudaFfnKernel}, {@link ExpertFfnProgram}, {@link DeviceWeightStore}) over
 * {@link EmulatedFfnDevice}, so whole engines run the GPU path's host side and arithmetic here.
 */
public final class EmulatedCudaBackendProvider implements ComputeBackendProvider {
    public static final String NAME = "cuda-emulated";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Availability availability() {
        return Availability.yes();
    }

    @Override
    public ComputeBackend open(WorkerPool pool) {
        EmulatedFfnDevice device = new EmulatedFfnDevice();
        DeviceWeightStore store = new DeviceWeightStore(device);
        return new ComputeBackend() {
            @Override
            public String name() {
                return NAME;
            }

            @Override
            public String description() {
                return device.describe();
            }

            @Override
            public DenseMatMul newMatMul() {
                return new MatMul(pool);
            }

            @Override
            public FfnKernel newFfn(int maxRows, int maxFfn) {
                return new CudaFfnKernel(device, store, maxRows, maxFfn);
            }

            @Override
            public void close() {
                device.close();
            }
        };
    }
}
