// Deterministic pseudo-random bf16 values in [-scale, scale): weights for the benchmark and the GPU
// check, made on the device rather than copied over PCIe. A SplitMix64 hash of (seed, index), so
// the host can compute any element (io.moecluster.cuda.backend.DeviceFill).

typedef unsigned short bf16_t;

__device__ __forceinline__ unsigned long long splitmix64(unsigned long long z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

extern "C" __global__ void moe_fill_uniform_bf16(bf16_t* __restrict__ w, long long n, unsigned long long seed,
                                                 float scale) {
    for (long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        unsigned long long bits = splitmix64(seed ^ (unsigned long long) i);
        // 24 random bits to [-1, 1), then to bf16 by truncation of an exact value
        float u = (float) (bits >> 40) * (1.0f / 8388608.0f) - 1.0f;
        w[i] = (bf16_t) (__float_as_uint(u * scale) >> 16);
    }
}
