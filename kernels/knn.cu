// Exact k nearest neighbours, the CUDA twin of CpuBackend::knn_exact.
//
// A block takes 128 queries and walks every point in tiles of 128. For each (query, point) pair
// the tile computes ‖q‖² + ‖p‖² − 2 q·p in f32 (the GEMM trick: each thread holds an 8 x 8
// register tile of dot products, fed from shared memory 8 dimensions at a time). That estimate
// only filters: a pair whose estimate, less a bound on its rounding error, does not exceed the
// query's current k−1-th distance is queued, and the queued pairs get their distance recomputed exactly
// as the CPU twin computes it (f64 sums of f32 differences, same order, no FMA contraction) and
// enter the query's sorted list, ordered by (distance, index) as on the CPU. Once the lists
// fill, few pairs pass the filter, and the work is the dot products.
#include "common.cuh"

#define KT_Q 128           // queries per block
#define KT_P 128           // points per tile
#define KT_DK 8            // dimensions per shared-memory pass (points come padded to a multiple)
#define KT_CAP 32          // queued candidates per query and merge round (one per lane)
#define KT_ROW (KT_Q + 4)  // shared row: float4-aligned
#define KT_THREADS 256     // 16 x 16 threads, each 8 queries x 8 points

#define F64_INF __longlong_as_double(0x7ff0000000000000ll)

// Squared distance as backend::points::sq_dist_f64: four f64 partial sums over groups of four
// dimensions, combined pairwise, then the remaining dimensions; explicit roundings so no
// multiply-add is fused and the value is bit for bit the CPU's.
__device__ __forceinline__ double exact_sq(const float* __restrict__ a,
                                           const float* __restrict__ b, u32 dim) {
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    u32 d = 0;
    for (; d + 4 <= dim; d += 4) {
#pragma unroll
        for (int t = 0; t < 4; t++) {
            const double x = (double)a[d + t] - (double)b[d + t];
            acc[t] = __dadd_rn(acc[t], __dmul_rn(x, x));
        }
    }
    double s = __dadd_rn(__dadd_rn(acc[0], acc[1]), __dadd_rn(acc[2], acc[3]));
    for (; d < dim; d++) {
        const double x = (double)a[d] - (double)b[d];
        s = __dadd_rn(s, __dmul_rn(x, x));
    }
    return s;
}

// Inserts (d, i) into the list (ld, li) of length m, sorted by (distance, index), if it comes
// before the last entry.
__device__ __forceinline__ void list_insert(double* ld, u32* li, u32 m, double d, u32 i) {
    const double wd = ld[m - 1];
    if (!(d < wd || (d == wd && i < li[m - 1]))) return;
    u32 pos = m - 1;
    while (pos > 0 && (ld[pos - 1] > d || (ld[pos - 1] == d && li[pos - 1] > i))) {
        ld[pos] = ld[pos - 1];
        li[pos] = li[pos - 1];
        pos--;
    }
    ld[pos] = d;
    li[pos] = i;
}

// Row (or column) of register-tile entry e (0..7) for thread coordinate c (0..15): two groups of
// four, 64 apart, so a quarter-warp's float4 reads of shared memory are contiguous.
__device__ __forceinline__ u32 tile_slot(int c, int e) { return (e < 4 ? 0 : 64) + c * 4 + (e & 3); }

// Loads the float4 `part` (0 or 1) of dimensions d0 .. d0 + 8 of row `row` (zeros past `rows`).
__device__ __forceinline__ float4 load_dims(const float* __restrict__ points, u32 dimp, u64 row,
                                            u64 rows, u32 d0, int part) {
    if (row >= rows) return make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    return *reinterpret_cast<const float4*>(points + row * dimp + d0 + 4 * part);
}

// Stores a pass's loads transposed (dimension-major) into the stage's query and point tiles.
__device__ __forceinline__ void store_dims(float (*sq)[KT_ROW], float (*sp)[KT_ROW], int row,
                                           int part, float4 q, float4 p) {
    sq[4 * part + 0][row] = q.x;
    sq[4 * part + 1][row] = q.y;
    sq[4 * part + 2][row] = q.z;
    sq[4 * part + 3][row] = q.w;
    sp[4 * part + 0][row] = p.x;
    sp[4 * part + 1][row] = p.y;
    sp[4 * part + 2][row] = p.z;
    sp[4 * part + 3][row] = p.w;
}

// points: n x dimp row-major, dimensions dim .. dimp zero, dimp a multiple of KT_DK, rows 16-byte
// aligned. norms: the n squared norms. Queries q0 .. q0 + n_queries. list_d / list_i: n_queries
// x (k − 1) scratch. slack: bound on the estimate's relative error (times ‖q‖² + ‖p‖²).
// out_idx / out_dist: n_queries x k, the query first.
extern "C" __global__ void __launch_bounds__(KT_THREADS, 2) knn_exact(
    const float* __restrict__ points, const float* __restrict__ norms, u64 n, u32 dim, u32 dimp,
    u64 q0, u64 n_queries, u32 k, float slack, double* __restrict__ list_d,
    u32* __restrict__ list_i, u32* __restrict__ out_idx, float* __restrict__ out_dist) {
    // Two stages: a pass computes from one while the next pass's tiles are stored in the other.
    __shared__ __align__(16) float sq[2][KT_DK][KT_ROW];
    __shared__ __align__(16) float sp[2][KT_DK][KT_ROW];
    __shared__ float thr[KT_Q];
    __shared__ int count[KT_Q];
    __shared__ u32 cand[KT_Q][KT_CAP];
    const u32 m = k - 1;
    const int t = threadIdx.x, tx = t % 16, ty = t / 16, warp = t / 32, lane = t % 32;
    const u64 qb = (u64)blockIdx.x * KT_Q;  // first query of the block, relative to q0
    const u32 nq = (u32)min((u64)KT_Q, n_queries - qb);
    const u64 qfirst = q0 + qb, qend = q0 + qb + nq;
    double* ld = list_d + qb * m;
    u32* li = list_i + qb * m;
    for (u32 e = t; e < nq * m; e += KT_THREADS) {
        ld[e] = F64_INF;
        li[e] = 0xffffffffu;
    }
    if (m == 0) {  // k = 1: each query's only neighbour is itself
        for (u32 ql = t; ql < nq; ql += KT_THREADS) {
            out_idx[qb + ql] = (u32)(qfirst + ql);
            out_dist[qb + ql] = 0.0f;
        }
        return;
    }
    for (int e = t; e < KT_Q; e += KT_THREADS) {
        thr[e] = (u32)e < nq ? F32_INF : -F32_INF;
        count[e] = 0;
    }
    float qn[8];
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const u64 q = qfirst + tile_slot(ty, i);
        qn[i] = q < qend ? norms[q] : 0.0f;
    }
    // This thread's share of a pass's loads: row t / 2 of the tile, dimensions 4 (t % 2) .. + 4.
    const int lrow = t / 2, lpart = t % 2;
    int stage = 0;
    {
        const float4 q = load_dims(points, dimp, qfirst + lrow, qend, 0, lpart);
        const float4 p = load_dims(points, dimp, lrow, n, 0, lpart);
        store_dims(sq[0], sp[0], lrow, lpart, q, p);
    }
    __syncthreads();
    for (u64 p0 = 0; p0 < n; p0 += KT_P) {
        float acc[8][8];
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int j = 0; j < 8; j++) acc[i][j] = 0.0f;
        for (u32 d0 = 0; d0 < dimp; d0 += KT_DK) {
            // The next pass's tiles (the next point tile's first when this is the last pass) are
            // loaded while this one computes, and stored in the other stage, which the barrier
            // that ended the previous pass freed.
            const bool more_dims = d0 + KT_DK < dimp, more = more_dims || p0 + KT_P < n;
            float4 nq4 = make_float4(0.0f, 0.0f, 0.0f, 0.0f), np4 = nq4;
            if (more) {
                const u32 nd = more_dims ? d0 + KT_DK : 0;
                const u64 np0 = more_dims ? p0 : p0 + KT_P;
                nq4 = load_dims(points, dimp, qfirst + lrow, qend, nd, lpart);
                np4 = load_dims(points, dimp, np0 + lrow, n, nd, lpart);
            }
#pragma unroll
            for (int dd = 0; dd < KT_DK; dd++) {
                const float4 a0 = *reinterpret_cast<const float4*>(&sq[stage][dd][ty * 4]);
                const float4 a1 = *reinterpret_cast<const float4*>(&sq[stage][dd][64 + ty * 4]);
                const float4 b0 = *reinterpret_cast<const float4*>(&sp[stage][dd][tx * 4]);
                const float4 b1 = *reinterpret_cast<const float4*>(&sp[stage][dd][64 + tx * 4]);
                const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
                const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
                for (int i = 0; i < 8; i++)
#pragma unroll
                    for (int j = 0; j < 8; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
            }
            if (more) store_dims(sq[stage ^ 1], sp[stage ^ 1], lrow, lpart, nq4, np4);
            stage ^= 1;
            __syncthreads();
        }
        // Filter: bit i * 8 + j set for each pair that may beat its query's list.
        float pn[8];
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const u64 p = p0 + tile_slot(tx, j);
            pn[j] = p < n ? norms[p] : 0.0f;
        }
        unsigned long long pending = 0;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const u32 ql = tile_slot(ty, i);
            const float limit = thr[ql];
#pragma unroll
            for (int j = 0; j < 8; j++) {
                const u64 p = p0 + tile_slot(tx, j);
                const float s = qn[i] + pn[j];
                const float est = fmaf(-2.0f, acc[i][j], s) - slack * s;
                // Not `est <= limit`: ties (a zero estimate against a zero threshold) and NaN
                // pass to the exact comparison.
                if (ql < nq && p < n && p != qfirst + ql && !(est > limit))
                    pending |= 1ull << (i * 8 + j);
            }
        }
        // Merge rounds: queue what passes (up to KT_CAP a query), compute exact distances, insert;
        // again while anything is left queued out.
        while (__syncthreads_or(pending != 0)) {
#pragma unroll
            for (int i = 0; i < 8; i++) {
                const u32 ql = tile_slot(ty, i);
#pragma unroll
                for (int j = 0; j < 8; j++) {
                    const unsigned long long bit = 1ull << (i * 8 + j);
                    if (pending & bit) {
                        const float s = qn[i] + pn[j];
                        const float est = fmaf(-2.0f, acc[i][j], s) - slack * s;
                        if (!(est > thr[ql])) {
                            const int slot = atomicAdd(&count[ql], 1);
                            if (slot < KT_CAP) {
                                cand[ql][slot] = (u32)(p0 + tile_slot(tx, j));
                                pending &= ~bit;
                            }
                        } else {
                            pending &= ~bit;
                        }
                    }
                }
            }
            __syncthreads();
            for (u32 ql = warp; ql < nq; ql += KT_THREADS / 32) {
                const int c = min(count[ql], KT_CAP);
                if (c == 0) continue;
                double d = F64_INF;
                u32 p = 0xffffffffu;
                if (lane < c) {
                    p = cand[ql][lane];
                    d = exact_sq(points + (qfirst + ql) * dimp, points + (u64)p * dimp, dim);
                }
                double* qd = ld + (u64)ql * m;
                u32* qi = li + (u64)ql * m;
                for (int s = 0; s < c; s++) {
                    const double ds = __shfl_sync(0xffffffffu, d, s);
                    const u32 ps = __shfl_sync(0xffffffffu, p, s);
                    if (lane == 0) list_insert(qd, qi, m, ds, ps);
                }
                if (lane == 0) {
                    thr[ql] = __double2float_ru(qd[m - 1]);
                    count[ql] = 0;
                }
                __syncwarp();
            }
            __syncthreads();
        }
    }
    __syncthreads();
    for (u32 e = t; e < nq * k; e += KT_THREADS) {
        const u32 ql = e / k, s = e % k;
        const u64 row = (qb + ql) * k;
        if (s == 0) {
            out_idx[row] = (u32)(qfirst + ql);
            out_dist[row] = 0.0f;
        } else {
            out_idx[row + s] = li[(u64)ql * m + s - 1];
            out_dist[row + s] = (float)sqrt(ld[(u64)ql * m + s - 1]);
        }
    }
}
