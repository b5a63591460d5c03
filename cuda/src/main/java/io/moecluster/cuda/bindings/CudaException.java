package io.moecluster.cuda.bindings;

/**
 * A failed call into one of NVIDIA's libraries: the function, the status as the library names it,
 * its number, and the library's message, e.g. {@code cudaGetDeviceCount: cudaErrorInsufficientDriver
 * (35): CUDA driver version is insufficient for CUDA runtime version}.
 */
public final class CudaException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final String call;
    private final int status;
    private final String statusName;

    public CudaException(String call, int status, String statusName, String message) {
        super(call + ": " + statusName + " (" + status + ")" + (message == null || message.isBlank() ? "" : ": " + message));
        this.call = call;
        this.status = status;
        this.statusName = statusName;
    }

    /** The function that failed, e.g. {@code cudaMalloc}. */
    public String call() {
        return call;
    }

    /** The status number the function returned. */
    public int status() {
        return status;
    }

    /** The status as the library names it, e.g. {@code cudaErrorMemoryAllocation}. */
    public String statusName() {
        return statusName;
    }
}
