package io.moecluster.core.backend.cpu;

import io.moecluster.core.backend.Availability;
import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.ComputeBackendProvider;
import io.moecluster.core.kernels.Kernels;
import io.moecluster.core.parallel.WorkerPool;

/** The {@code cpu} backend: the Vector API kernels on the owner's worker pool. Always available. */
public final class CpuBackendProvider implements ComputeBackendProvider {
    public static final String NAME = "cpu";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Availability availability() {
        return Availability.yes();
    }

    @Override
    public String description() {
        return "Vector API kernels, " + Kernels.describe();
    }

    @Override
    public ComputeBackend open(WorkerPool pool) {
        return new CpuBackend(pool);
    }
}
