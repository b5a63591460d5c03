package io.moecluster.cuda.backend;

import io.moecluster.core.backend.Availability;
import io.moecluster.core.backend.ComputeBackend;
import io.moecluster.core.backend.ComputeBackendProvider;
import io.moecluster.core.parallel.WorkerPool;
import io.moecluster.cuda.bindings.CudaException;
import io.moecluster.cuda.bindings.CudaLibraries;
import io.moecluster.cuda.bindings.Cudart;
import io.moecluster.cuda.bindings.DeviceAttribute;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code cuda} backend ({@code --device cuda}, {@code cuda:N}): expert FFNs on an NVIDIA GPU.
 * Found by {@link java.util.ServiceLoader}. Before anything opens it says whether it can run: which
 * library is missing and which folders were searched, a CUDA major-version mismatch, the driver's
 * error ({@code cudaGetDeviceCount}), a missing device index, or a GPU older than compute
 * capability 8.0 (BF16 tensor cores).
 */
public final class CudaBackendProvider implements ComputeBackendProvider {
    public static final String NAME = "cuda";
    /** BF16 GEMMs need Ampere (8.0) or newer. */
    static final int MIN_COMPUTE_CAPABILITY = 80;

    private final CudaLibraries libraries;

    /** The provider ServiceLoader makes: the process's libraries ({@link CudaLibraries#system()}), found when first asked. */
    public CudaBackendProvider() {
        this(null);
    }

    /** A provider over a given set of libraries (tests, the GPU check). */
    public CudaBackendProvider(CudaLibraries libraries) {
        this.libraries = libraries;
    }

    private CudaLibraries libs() {
        return libraries != null ? libraries : CudaLibraries.system();
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public boolean hasDevices() {
        return true;
    }

    @Override
    public Availability availability() {
        return availability(0);
    }

    @Override
    public Availability availability(int index) {
        List<String> reasons = reasons(libs(), index);
        return reasons.isEmpty() ? Availability.yes()
                : Availability.no(reasons.getFirst(), reasons.subList(1, reasons.size()).toArray(String[]::new));
    }

    static List<String> reasons(CudaLibraries libs, int index) {
        List<String> reasons = new ArrayList<>();
        boolean notFound = false;
        for (String component : List.of(CudaLibraries.RUNTIME, CudaLibraries.NVRTC, CudaLibraries.CUBLAS)) {
            String problem = libs.problems().get(component);
            if (problem != null) {
                reasons.add(component + ": " + problem);
                notFound |= problem.contains("not found");
            }
        }
        if (notFound) {
            reasons.add("searched " + libs.searched());
        }
        Cudart cudart = libs.cudart().orElse(null);
        if (cudart == null) {
            return reasons;
        }
        if (!cudart.canLoadKernels()) {
            reasons.add("CUDA runtime " + Cudart.versionString(cudart.runtimeVersion()) + " (" + cudart.library().path()
                    + ") lacks cudaLibraryLoadData, which loading the kernels needs (CUDA 12.8+ or 13)");
        }
        int count;
        try {
            count = cudart.deviceCount();
        } catch (CudaException e) {
            reasons.add(e.getMessage());
            return reasons;
        }
        if (count == 0) {
            reasons.add("no CUDA device");
        } else if (index >= count) {
            reasons.add("device " + index + " not found: " + count + (count == 1 ? " CUDA device" : " CUDA devices"));
        } else {
            int cc = 10 * cudart.attribute(DeviceAttribute.COMPUTE_CAPABILITY_MAJOR, index)
                    + cudart.attribute(DeviceAttribute.COMPUTE_CAPABILITY_MINOR, index);
            if (cc < MIN_COMPUTE_CAPABILITY) {
                reasons.add("GPU " + index + " has compute capability " + cc / 10 + "." + cc % 10
                        + "; BF16 GEMMs need 8.0 or newer");
            }
        }
        return reasons;
    }

    @Override
    public String description() {
        CudaLibraries libs = libs();
        if (!availability().available()) {
            return "";
        }
        Cudart c = libs.requireCudart();
        int n = c.deviceCount();
        return n + (n == 1 ? " GPU" : " GPUs") + "; expert FFNs in BF16 (cuBLAS grouped GEMM), the rest on the CPU; "
                + libs.describe();
    }

    @Override
    public ComputeBackend open(WorkerPool pool) {
        return open(pool, 0);
    }

    @Override
    public ComputeBackend open(WorkerPool pool, int index) {
        return new CudaBackend(libs(), index, pool);
    }
}
