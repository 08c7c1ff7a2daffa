// CSR x dense projection, the CUDA twin of CpuBackend::project: out[r][c] = Σ_j x[r][j] ·
// loadings[j][c] − offset[c], accumulated in f32. One warp per row; each lane owns up to 8
// output columns of a 256-column slab (lane, lane + 32, ...), so a stored value's loading row is
// read coalesced.
#include "common.cuh"

#define PROJ_PER_LANE 8
extern "C" __global__ void project(const u64* __restrict__ indptr, u64 base,
                                   const u32* __restrict__ indices, const float* __restrict__ data,
                                   u64 n_rows, const float* __restrict__ loadings,
                                   const float* __restrict__ offset, u32 k,
                                   float* __restrict__ out) {
    const u64 warp = global_tid() / 32;
    const int lane = threadIdx.x % 32;
    const u64 n_warps = grid_stride() / 32;
    for (u64 r = warp; r < n_rows; r += n_warps) {
        for (u32 c0 = 0; c0 < k; c0 += 32 * PROJ_PER_LANE) {
            float acc[PROJ_PER_LANE];
#pragma unroll
            for (int u = 0; u < PROJ_PER_LANE; u++) {
                const u32 c = c0 + lane + 32 * u;
                acc[u] = c < k ? -offset[c] : 0.0f;
            }
            for (u64 kk = indptr[r]; kk < indptr[r + 1]; kk++) {
                const float x = data[kk - base];
                const float* w = loadings + (u64)indices[kk - base] * k;
#pragma unroll
                for (int u = 0; u < PROJ_PER_LANE; u++) {
                    const u32 c = c0 + lane + 32 * u;
                    if (c < k) acc[u] = fmaf(x, w[c], acc[u]);
                }
            }
#pragma unroll
            for (int u = 0; u < PROJ_PER_LANE; u++) {
                const u32 c = c0 + lane + 32 * u;
                if (c < k) out[r * k + c] = acc[u];
            }
        }
    }
}

// y = A · x for a CSR matrix A (f32 values, f64 accumulation): one warp per row. For tests and
// power iterations.
extern "C" __global__ void spmv(const u64* __restrict__ indptr, u64 base,
                                const u32* __restrict__ indices, const float* __restrict__ data,
                                u64 n_rows, const double* __restrict__ x, double* __restrict__ y) {
    const u64 warp = global_tid() / 32;
    const int lane = threadIdx.x % 32;
    const u64 n_warps = grid_stride() / 32;
    for (u64 r = warp; r < n_rows; r += n_warps) {
        double s = 0.0;
        for (u64 kk = indptr[r] + lane; kk < indptr[r + 1]; kk += 32)
            s += (double)data[kk - base] * x[indices[kk - base]];
        s = warp_sum(s);
        if (lane == 0) y[r] = s;
    }
}
