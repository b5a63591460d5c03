/**
 * Hand-written {@code java.lang.foreign} bindings to NVIDIA's libraries: the CUDA runtime
 * ({@link io.moecluster.cuda.bindings.Cudart}), NVRTC ({@link io.moecluster.cuda.bindings.Nvrtc}),
 * cuBLAS ({@link io.moecluster.cuda.bindings.Cublas}), cuBLASLt
 * ({@link io.moecluster.cuda.bindings.CublasLt}) and NCCL ({@link io.moecluster.cuda.bindings.Nccl}),
 * found by {@link io.moecluster.cuda.bindings.LibraryLocator} and loaded by full path as one
 * consistent set by {@link io.moecluster.cuda.bindings.CudaLibraries}.
 *
 * <p>Rules every binding follows: each status is checked and a failure becomes a
 * {@link io.moecluster.cuda.bindings.CudaException} naming the call, NVIDIA's error name and its
 * message; each created object is a typed {@link io.moecluster.cuda.bindings.NativeHandle} that
 * pairs create with destroy, is never NULL and refuses use after close (cuBLASLt does not check
 * its handles and a NULL one crashes the JVM); no {@code cudaDeviceProp} (its layout changed
 * between CUDA 12 and 13): device properties come from {@code cudaDeviceGetAttribute}.
 */
package io.moecluster.cuda.bindings;
