// Shared helpers for scoop's kernels. Chunks arrive as CSR with 64-bit row offsets (int64 indptr
// is what Tahoe-scale plates need), 32-bit column indices and f32 values; accumulators are f64.
//
// A chunk may be a shard of a larger one: `indptr` then holds the parent's offsets and `base` is
// the offset of the shard's first value, so value k of the shard lives at `data[k - base]`.
#pragma once

typedef unsigned long long u64;
typedef unsigned int u32;

// +inf as a float (NVRTC has no <math.h> macros).
#define F32_INF __int_as_float(0x7f800000)

// Global thread index and stride for grid-stride loops.
__device__ __forceinline__ u64 global_tid() { return (u64)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ u64 grid_stride() { return (u64)gridDim.x * blockDim.x; }

// Warp-level sum of a double.
__device__ __forceinline__ double warp_sum(double v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    return v;
}

// ln(1 + x) for f32 with the CPU twin's arithmetic (backend::log1p_f32): for |x| >= 1e-3 the f64
// logarithm of the exact f64 sum, rounded to f32; below that, log1pf itself.
__device__ __forceinline__ float log1p_f32(float x) {
    return fabsf(x) >= 1e-3f ? (float)log((double)x + 1.0) : log1pf(x);
}

// splitmix64, the CPU layout kernel's hash (backend::cpu::splitmix64).
__device__ __forceinline__ u64 splitmix64(u64 z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
