package io.moecluster.core.backend;

/**
 * Where one engine's or one expert service's dense matmuls and expert FFNs run: the CPU's vector
 * units ({@code cpu}, always there) or a device (the {@code cuda} backend of the GPU work). Opened
 * once at start-up by {@link ComputeBackends#open}, closed with the engine or service that owns it.
 *
 * <p>Kernels are handed out per calling thread ({@link #newMatMul}, {@link #newFfn}) and hold
 * their scratch, so a forward pass allocates nothing. Weights and activations arrive as host
 * {@link java.lang.foreign.MemorySegment}s; a device backend keeps its own copies
 * ({@link FfnKernel#prepare}).
 */
public interface ComputeBackend extends AutoCloseable {
    /** The provider's name, as {@code --device} takes it. */
    String name();

    /** One line for the start-up log and {@code moe backends}: the device, vector width, threads. */
    String description();

    /** A dense matmul for one calling thread. */
    DenseMatMul newMatMul();

    /**
     * A SwiGLU FFN runner for one calling thread, for up to {@code maxRows} rows at a time and FFNs
     * up to {@code maxFfn} wide. The caller closes it.
     */
    FfnKernel newFfn(int maxRows, int maxFfn);

    @Override
    void close();
}
