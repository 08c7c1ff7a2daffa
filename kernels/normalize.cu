// normalize_total + log1p + gene subset of a CSR chunk: the CUDA twin of
// CpuBackend::normalize_log1p. Two passes: count each row's kept values, then (after an exclusive
// scan of the counts gives the output offsets) write them renumbered and transformed.
#include "common.cuh"

// One warp per row: counts[r] = stored values of row r whose column `map` keeps.
extern "C" __global__ void count_kept(const u64* __restrict__ indptr, u64 base,
                                      const u32* __restrict__ indices,
                                      const u32* __restrict__ map, u64 n_rows,
                                      u64* __restrict__ counts) {
    const u64 warp = global_tid() / 32;
    const int lane = threadIdx.x % 32;
    const u64 n_warps = grid_stride() / 32;
    for (u64 r = warp; r < n_rows; r += n_warps) {
        u32 c = 0;
        for (u64 k = indptr[r] + lane; k < indptr[r + 1]; k += 32)
            c += map[indices[k - base]] != 0xffffffffu;
        for (int off = 16; off > 0; off >>= 1) c += __shfl_down_sync(0xffffffffu, c, off);
        if (lane == 0) counts[r] = c;
    }
}

// One warp per row: kept values in their original order, out_data = log1p(x / divisors[r]) in
// f32, out_indices = the new column. out_indptr holds the output offsets (from 0).
extern "C" __global__ void normalize_log1p(const u64* __restrict__ indptr, u64 base,
                                           const u32* __restrict__ indices,
                                           const float* __restrict__ data,
                                           const float* __restrict__ divisors,
                                           const u32* __restrict__ map, u64 n_rows,
                                           const u64* __restrict__ out_indptr,
                                           u32* __restrict__ out_indices,
                                           float* __restrict__ out_data) {
    const u64 warp = global_tid() / 32;
    const int lane = threadIdx.x % 32;
    const u64 n_warps = grid_stride() / 32;
    for (u64 r = warp; r < n_rows; r += n_warps) {
        const float d = divisors[r];
        u64 pos = out_indptr[r];
        for (u64 k0 = indptr[r]; k0 < indptr[r + 1]; k0 += 32) {
            const u64 k = k0 + lane;
            u32 m = 0xffffffffu;
            float x = 0.0f;
            if (k < indptr[r + 1]) {
                m = map[indices[k - base]];
                x = data[k - base];
            }
            const bool keep = m != 0xffffffffu;
            const unsigned ballot = __ballot_sync(0xffffffffu, keep);
            if (keep) {
                const u64 o = pos + __popc(ballot & ((1u << lane) - 1u));
                out_indices[o] = m;
                out_data[o] = log1p_f32(x / d);
            }
            pos += __popc(ballot);
        }
    }
}
