// RMSNorm over rows, y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w, all f32: one block per
// row, a strided sum of squares per thread, then a warp-shuffle and shared-memory reduction.
// Launch with blockDim.x a multiple of 32, at most 1024.

extern "C" __global__ void moe_rms_norm(const float* __restrict__ x, const float* __restrict__ w,
                                        float* __restrict__ y, int rows, int cols, float eps) {
    __shared__ float partial[32];
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* xr = x + (long long) r * cols;
        float ss = 0.0f;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            ss += xr[c] * xr[c];
        }
        for (int offset = 16; offset > 0; offset >>= 1) {
            ss += __shfl_down_sync(0xffffffffu, ss, offset);
        }
        int lane = threadIdx.x & 31;
        int warp = threadIdx.x >> 5;
        if (lane == 0) {
            partial[warp] = ss;
        }
        __syncthreads();
        if (warp == 0) {
            int warps = (blockDim.x + 31) >> 5;
            ss = lane < warps ? partial[lane] : 0.0f;
            for (int offset = 16; offset > 0; offset >>= 1) {
                ss += __shfl_down_sync(0xffffffffu, ss, offset);
            }
            if (lane == 0) {
                partial[0] = rsqrtf(ss / cols + eps);
            }
        }
        __syncthreads();
        float inv = partial[0];
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            y[(long long) r * cols + c] = xr[c] * inv * w[c];
        }
        __syncthreads();
    }
}
