// Row and column reductions over a CSR chunk: the CUDA twins of CpuBackend::row_totals and
// CpuBackend::gene_moments.
#include "common.cuh"

// One warp per row: out[r] = sum of row r's values (0 where mask[r] == 0; mask may be null).
extern "C" __global__ void row_totals(const u64* __restrict__ indptr, u64 base,
                                      const float* __restrict__ data,
                                      const unsigned char* __restrict__ mask, u64 n_rows,
                                      double* __restrict__ out) {
    const u64 warp = global_tid() / 32;
    const int lane = threadIdx.x % 32;
    const u64 n_warps = grid_stride() / 32;
    for (u64 r = warp; r < n_rows; r += n_warps) {
        double s = 0.0;
        if (mask == nullptr || mask[r]) {
            for (u64 k = indptr[r] + lane; k < indptr[r + 1]; k += 32) s += (double)data[k - base];
        }
        s = warp_sum(s);
        if (lane == 0) out[r] = s;
    }
}

// Value maps of gene_moments (backend::ValueMap).
#define MAP_RAW 0
#define MAP_SCALED 1
#define MAP_LOGNORM 2
#define MAP_CLIPPED 3

// Per-column sums, sums of squares and counts of stored non-zeros of the mapped values, for rows
// whose mask entry is set (mask may be null). `row_arg` is the per-row scale (f64, MAP_SCALED) or
// divisor (f32, MAP_LOGNORM); `clip` the per-column clip (MAP_CLIPPED). One warp per row; columns
// are scattered with f64 atomics (sm_60+).
extern "C" __global__ void gene_moments(const u64* __restrict__ indptr, u64 base,
                                        const u32* __restrict__ indices,
                                        const float* __restrict__ data,
                                        const unsigned char* __restrict__ mask, u64 n_rows, int map,
                                        const void* __restrict__ row_arg,
                                        const double* __restrict__ clip, double* __restrict__ sum,
                                        double* __restrict__ sumsq,
                                        unsigned long long* __restrict__ nnz) {
    const u64 warp = global_tid() / 32;
    const int lane = threadIdx.x % 32;
    const u64 n_warps = grid_stride() / 32;
    for (u64 r = warp; r < n_rows; r += n_warps) {
        if (mask != nullptr && !mask[r]) continue;
        for (u64 k = indptr[r] + lane; k < indptr[r + 1]; k += 32) {
            const float x = data[k - base];
            const u32 j = indices[k - base];
            double v;
            switch (map) {
                case MAP_SCALED: v = (double)x * ((const double*)row_arg)[r]; break;
                case MAP_LOGNORM: v = (double)log1p_f32(x / ((const float*)row_arg)[r]); break;
                case MAP_CLIPPED: v = fmin((double)x, clip[j]); break;
                default: v = (double)x;
            }
            atomicAdd(&sum[j], v);
            atomicAdd(&sumsq[j], v * v);
            if (x != 0.0f) atomicAdd(&nnz[j], 1ull);
        }
    }
}
