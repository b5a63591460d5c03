/**
 * The {@code cuda} compute backend: expert FFNs on a GPU, behind core's compute-backend seam.
 *
 * <p>The expert math is written once, in {@link io.moecluster.cuda.backend.ExpertFfnProgram}: per
 * batch of experts, rows packed on the host into pinned memory, copied to the device on a stream,
 * converted to BF16, one grouped GEMM for every expert's stacked gate and up projections, the SiLU
 * gating, one grouped GEMM for the down projections, each row scaled by its routing weight, and
 * back. It runs against a {@link io.moecluster.cuda.backend.FfnDevice}: the GPU
 * ({@link io.moecluster.cuda.backend.CudaFfnDevice}: cuBLAS and NVRTC-compiled kernels), or in the
 * tests a host emulation of the same steps, so the host-side planning (batch layout, offsets, the
 * grouped-GEMM argument arrays) is tested on every build, on machines without a GPU.
 */
package io.moecluster.cuda.backend;
