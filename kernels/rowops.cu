// Row and column reductions over a CSR chunk: the CUDA twins of CpuBackend::row_totals and
// CpuBackend::gene_sums.
#include "common.cuh"

// One warp per row: out[r] = sum of row r's values (0 where mask[r] == 0; mask may be null).
extern "C" __global__ void row_totals(const u64* __restrict__ indptr, const float* __restrict__ data,
                                      const unsigned char* __restrict__ mask, u64 n_rows,
                                      double* __restrict__ out) {
    const u64 warp = global_tid() / 32;
    const int lane = threadIdx.x % 32;
    const u64 n_warps = grid_stride() / 32;
    for (u64 r = warp; r < n_rows; r += n_warps) {
        double s = 0.0;
        if (mask == nullptr || mask[r]) {
            for (u64 k = indptr[r] + lane; k < indptr[r + 1]; k += 32) s += (double)data[k];
        }
        s = warp_sum(s);
        if (lane == 0) out[r] = s;
    }
}

// Per-column sums, sums of squares and non-zero counts with an optional per-row scale and mask.
// One warp per row; columns are scattered with f64 atomics (sm_60+).
extern "C" __global__ void gene_sums(const u64* __restrict__ indptr, const unsigned int* __restrict__ indices,
                                     const float* __restrict__ data, const unsigned char* __restrict__ mask,
                                     const double* __restrict__ row_scale, u64 n_rows,
                                     double* __restrict__ sum, double* __restrict__ sumsq,
                                     unsigned long long* __restrict__ nnz) {
    const u64 warp = global_tid() / 32;
    const int lane = threadIdx.x % 32;
    const u64 n_warps = grid_stride() / 32;
    for (u64 r = warp; r < n_rows; r += n_warps) {
        if (mask != nullptr && !mask[r]) continue;
        const double s = row_scale == nullptr ? 1.0 : row_scale[r];
        for (u64 k = indptr[r] + lane; k < indptr[r + 1]; k += 32) {
            const float v = data[k];
            const double x = (double)v * s;
            const unsigned int j = indices[k];
            atomicAdd(&sum[j], x);
            atomicAdd(&sumsq[j], x * x);
            if (v != 0.0f) atomicAdd(&nnz[j], 1ull);
        }
    }
}
