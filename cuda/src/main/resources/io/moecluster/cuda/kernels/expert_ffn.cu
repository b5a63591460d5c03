// The element-wise steps of an expert FFN on the GPU; the GEMMs are cuBLAS. Compiled at run time by
// NVRTC for the device's compute capability (io.moecluster.cuda.backend.CudaKernels).
//
// bf16 is handled as its raw 16 bits (the upper half of an f32), so no CUDA header is needed and
// the rounding is exactly core's Bf16.fromFloat (round to nearest even, NaN stays NaN).
// Every kernel is a grid-stride loop over 64-bit indices.

typedef unsigned short bf16_t;

__device__ __forceinline__ float bf16_to_f32(bf16_t h) {
    return __uint_as_float(((unsigned int) h) << 16);
}

__device__ __forceinline__ bf16_t f32_to_bf16(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (bf16_t) ((u >> 16) | 0x40u);
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    return (bf16_t) (u >> 16);
}

// IEEE half (raw bits) to f32, subnormals, infinities and NaN included.
__device__ __forceinline__ float f16_to_f32(unsigned short h) {
    unsigned int sign = ((unsigned int) h & 0x8000u) << 16;
    unsigned int exponent = ((unsigned int) h >> 10) & 0x1fu;
    unsigned int mantissa = (unsigned int) h & 0x3ffu;
    if (exponent == 0x1fu) {
        return __uint_as_float(sign | 0x7f800000u | (mantissa << 13));
    }
    if (exponent == 0u) {
        // zero or subnormal: mantissa * 2^-24, exact in f32
        float m = (float) mantissa * 5.9604644775390625e-8f;
        return sign != 0u ? -m : m;
    }
    return __uint_as_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

#define GRID_STRIDE(i, n) \
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long long) gridDim.x * blockDim.x)

// y[i] = bf16(x[i]): activations for the GEMMs, and F32 checkpoints on upload.
extern "C" __global__ void moe_f32_to_bf16(const float* __restrict__ x, bf16_t* __restrict__ y, long long n) {
    GRID_STRIDE(i, n) {
        y[i] = f32_to_bf16(x[i]);
    }
}

// y[i] = bf16(f16 x[i]): F16 checkpoints on upload.
extern "C" __global__ void moe_f16_to_bf16(const unsigned short* __restrict__ x, bf16_t* __restrict__ y, long long n) {
    GRID_STRIDE(i, n) {
        y[i] = f32_to_bf16(f16_to_f32(x[i]));
    }
}

// SwiGLU's gating: gu is [rows, 2 * ffn] (each row the gate projection, then the up projection, as
// one GEMM of the stacked [gate; up] weights writes it); h[r, c] = bf16(silu(gate) * up), [rows, ffn].
extern "C" __global__ void moe_silu_mul(const bf16_t* __restrict__ gu, bf16_t* __restrict__ h, int rows, int ffn) {
    long long n = (long long) rows * ffn;
    GRID_STRIDE(i, n) {
        long long r = i / ffn;
        long long c = i - r * ffn;
        const bf16_t* row = gu + r * 2 * ffn;
        float g = bf16_to_f32(row[c]);
        float u = bf16_to_f32(row[ffn + c]);
        h[i] = f32_to_bf16(g / (1.0f + expf(-g)) * u);
    }
}

// out[r, c] = s[r] * y[r, c] in f32, y bf16 [rows, cols]: the routing weight (or shared-expert
// gate) applied to each row of the down projection; s == 0 (a null pointer) means no scaling.
extern "C" __global__ void moe_scale_rows(const bf16_t* __restrict__ y, const float* __restrict__ s,
                                          float* __restrict__ out, int rows, int cols) {
    long long n = (long long) rows * cols;
    GRID_STRIDE(i, n) {
        float v = bf16_to_f32(y[i]);
        out[i] = s != 0 ? s[i / cols] * v : v;
    }
}

// acc[r, c] += s[r] * y[r, c], all f32 [rows, cols]: the MoE combine of one expert's rows on the GPU.
extern "C" __global__ void moe_scale_accumulate(float* __restrict__ acc, const float* __restrict__ y,
                                                const float* __restrict__ s, int rows, int cols) {
    long long n = (long long) rows * cols;
    GRID_STRIDE(i, n) {
        acc[i] += s[i / cols] * y[i];
    }
}
