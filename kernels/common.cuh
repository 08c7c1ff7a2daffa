// Shared helpers for scoop's kernels. Chunks arrive as CSR with 64-bit row offsets (int64 indptr
// is what Tahoe-scale plates need), 32-bit column indices and f32 values; accumulators are f64.
#pragma once

typedef unsigned long long u64;

// Global thread index and stride for grid-stride loops.
__device__ __forceinline__ u64 global_tid() { return (u64)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ u64 grid_stride() { return (u64)gridDim.x * blockDim.x; }

// Warp-level sum of a double.
__device__ __forceinline__ double warp_sum(double v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    return v;
}
