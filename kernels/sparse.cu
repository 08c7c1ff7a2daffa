// scoop-no-fmad
// Square sparse matrix times a narrow dense block, the CUDA twin of the CPU SparseOperator
// (backend::cpu::sparse): out[i][c] = scale[i] * sum_j a[i][j] * rows[j][c], the block row-major
// with k columns. One thread per output value (row i, column c): the k threads of a row sit side
// by side, so they read the row's columns and values as one broadcast and the gathered block
// row (k consecutive floats) as one coalesced access. Each sum runs over the row's stored values
// in order with every product and sum rounded to f64 (__dmul_rn / __dadd_rn: no fused
// multiply-add; `scoop-no-fmad` above also compiles the file with --fmad=false), as the CPU
// does, so the two give the same bits.
#include "common.cuh"

extern "C" __global__ void sparse_apply(const u64* __restrict__ indptr,
                                        const u32* __restrict__ indices,
                                        const float* __restrict__ data, u64 n_rows,
                                        const double* __restrict__ scale,
                                        const float* __restrict__ rows, u32 k,
                                        double* __restrict__ out) {
    const u64 total = n_rows * k;
    for (u64 t = global_tid(); t < total; t += grid_stride()) {
        const u64 i = t / k;
        const u32 c = (u32)(t - i * k);
        double acc = 0.0;
        const u64 end = indptr[i + 1];
        for (u64 p = indptr[i]; p < end; p++) {
            const double w = (double)data[p];
            const double r = (double)rows[(u64)indices[p] * k + c];
            acc = __dadd_rn(acc, __dmul_rn(w, r));
        }
        out[t] = __dmul_rn(acc, scale[i]);
    }
}
