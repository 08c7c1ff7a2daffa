// scoop-no-fmad
// The tall-matrix operations of the spectral initialization's eigensolver, the CUDA twins of
// backend::cpu::tall (see backend/tall.rs for each one's rounding, which both follow, so the
// solver returns the same bits on either). M is column-major, n rows, column c at M + c * n.
// Every product and sum is an explicit round-to-nearest operation (__dmul_rn, __dadd_rn): no
// fused multiply-add (and `scoop-no-fmad` above has build.rs compile this file with
// --fmad=false, so no later plain a * b + c is contracted either). The parity with the CPU also
// needs IEEE f32 conversion (no flush of subnormals to zero): build.rs compiles without
// fast-math or -ftz. Launches are 256 threads a
// block (Worker::flat_launch), a whole number of warps, as tall_dot_parts's half-warps need.
#include "common.cuh"

// Rows per task of the products' partial sums (backend::tall::TALL_ROWS).
#define TALL_ROWS 4096

// Partial products of M[:, a0 .. a0 + p]^T M[:, b0 .. b0 + k], one per row task t and column
// pair (j, q) at parts[(t * p + j) * k + q], each the CPU's dot16 of the task's rows: sixteen
// lanes (a half-warp) sum the rows 16c + l of the whole chunks of 16 from 0.0, lane 0 adds the
// sixteen in order from -0.0 and then the remainder's products, also from -0.0.
extern "C" __global__ void tall_dot_parts(const double* __restrict__ m, u64 n, u32 a0, u32 p,
                                          u32 b0, u32 k, double* __restrict__ parts) {
    const u64 tasks = (n + TALL_ROWS - 1) / TALL_ROWS;
    const u64 groups = tasks * p * k;
    const u32 lane = threadIdx.x % 16;
    // The half-warp's lanes: the shuffles below run among them only.
    const unsigned mask = 0xFFFFu << (threadIdx.x & 16);
    for (u64 g = global_tid() / 16; g < groups; g += grid_stride() / 16) {
        const u32 q = (u32)(g % k);
        const u32 j = (u32)((g / k) % p);
        const u64 t = g / ((u64)k * p);
        const u64 r0 = t * TALL_ROWS;
        const u64 len = n - r0 < TALL_ROWS ? n - r0 : TALL_ROWS;
        const double* a = m + (u64)(a0 + j) * n + r0;
        const double* b = m + (u64)(b0 + q) * n + r0;
        const u64 whole = len / 16 * 16;
        double acc = 0.0;
        for (u64 r = lane; r < whole; r += 16) acc = __dadd_rn(acc, __dmul_rn(a[r], b[r]));
        double s = -0.0;
        for (int l = 0; l < 16; l++) s = __dadd_rn(s, __shfl_sync(mask, acc, l, 16));
        if (lane == 0) {
            double tail = -0.0;
            for (u64 r = whole; r < len; r++) tail = __dadd_rn(tail, __dmul_rn(a[r], b[r]));
            parts[g] = __dadd_rn(s, tail);
        }
    }
}

// M[:, x0 .. x0 + k] -= M[:, a0 .. a0 + p] C for the row-major p x k matrix c: each value v
// becomes v + (-c[j][q] * a_j) for j in order. One thread per row (its k values one after
// another: the row's a_j are read from memory once, then from L1).
extern "C" __global__ void tall_sub_mul(double* __restrict__ m, u64 n, u32 x0, u32 k, u32 a0,
                                        u32 p, const double* __restrict__ c) {
    for (u64 i = global_tid(); i < n; i += grid_stride()) {
        for (u32 q = 0; q < k; q++) {
            double v = m[(u64)(x0 + q) * n + i];
            for (u32 j = 0; j < p; j++)
                v = __dadd_rn(v, __dmul_rn(-c[j * k + q], m[(u64)(a0 + j) * n + i]));
            m[(u64)(x0 + q) * n + i] = v;
        }
    }
}

// M[:, x0 + q] -= c[q] * M[:, a0 + q] for q < k: each value v becomes v + (-c[q] * a), as
// tall_sub_mul rounds it for a one-column C. One thread per row.
extern "C" __global__ void tall_sub_diag(double* __restrict__ m, u64 n, u32 x0, u32 k, u32 a0,
                                         const double* __restrict__ c) {
    for (u64 i = global_tid(); i < n; i += grid_stride()) {
        for (u32 q = 0; q < k; q++) {
            const double v = m[(u64)(x0 + q) * n + i];
            m[(u64)(x0 + q) * n + i] = __dadd_rn(v, __dmul_rn(-c[q], m[(u64)(a0 + q) * n + i]));
        }
    }
}

// M[:, x0 .. x0 + k] = M[:, a0 .. a0 + p] V for the row-major p x k matrix v: the sum of
// v[j][q] * a_j for j in order from 0.0. One thread per row.
extern "C" __global__ void tall_mul(double* __restrict__ m, u64 n, u32 x0, u32 k, u32 a0, u32 p,
                                    const double* __restrict__ v) {
    for (u64 i = global_tid(); i < n; i += grid_stride()) {
        for (u32 q = 0; q < k; q++) {
            double s = 0.0;
            for (u32 j = 0; j < p; j++)
                s = __dadd_rn(s, __dmul_rn(v[j * k + q], m[(u64)(a0 + j) * n + i]));
            m[(u64)(x0 + q) * n + i] = s;
        }
    }
}

// M[:, c] /= s.
extern "C" __global__ void tall_div_col(double* __restrict__ m, u64 n, u32 c, double s) {
    for (u64 i = global_tid(); i < n; i += grid_stride())
        m[(u64)c * n + i] = __ddiv_rn(m[(u64)c * n + i], s);
}

// M[:, dst] = M[:, src].
extern "C" __global__ void tall_copy_col(double* __restrict__ m, u64 n, u32 dst, u32 src) {
    for (u64 i = global_tid(); i < n; i += grid_stride())
        m[(u64)dst * n + i] = m[(u64)src * n + i];
}

// The block M[:, a0 .. a0 + k] row-major in f32, each row scaled first: rows[i * k + c] =
// (float)(M[i][a0 + c] * scale[i]), the sparse product's input.
extern "C" __global__ void tall_pack(const double* __restrict__ m, u64 n, u32 a0, u32 k,
                                     const double* __restrict__ scale, float* __restrict__ rows) {
    for (u64 t = global_tid(); t < n * k; t += grid_stride()) {
        const u64 i = t / k;
        const u32 c = (u32)(t - i * k);
        rows[t] = __double2float_rn(__dmul_rn(m[(u64)(a0 + c) * n + i], scale[i]));
    }
}

// The sparse product's row-major result into M[:, x0 .. x0 + k]. One thread per row.
extern "C" __global__ void tall_unpack(double* __restrict__ m, u64 n, u32 x0, u32 k,
                                       const double* __restrict__ out) {
    for (u64 i = global_tid(); i < n; i += grid_stride())
        for (u32 c = 0; c < k; c++) m[(u64)(x0 + c) * n + i] = out[i * k + c];
}
