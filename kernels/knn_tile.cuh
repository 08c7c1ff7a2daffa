// The body of the exact kNN kernels (knn.cu: f32 dot products on the CUDA cores; knn_tc.cu: TF32
// tensor cores, sm_80 and newer), the CUDA twins of CpuBackend::knn_exact. The including file
// defines KNN_TC (0 or 1) and KNN_KERNEL (the kernel's name).
//
// A block takes 128 queries and walks every point in tiles of 128. The estimate works on the
// points less their mean, y, augmented (see backend/cuda/points.rs): a query row is
// [y, (1 − σ)‖y‖², 1, 0 …], a point row [−2y, 1, (1 − σ)‖y‖², 0 …], so one dot product of the two
// is the squared distance's estimate ‖q‖² + ‖p‖² − 2 q·p less σ(‖q‖² + ‖p‖²), a bound on its
// rounding error (σ depends on the arithmetic). Each thread holds 8 x 8 of a tile's estimates,
// fed from shared memory 8 dimensions at a time. An estimate only filters: a pair whose estimate
// does not exceed the query's current (k−1)-th distance is queued, and queued pairs get their
// distance computed exactly as the CPU twin computes it (f64 sums of f32 differences of the
// coordinates as given, same order, no FMA contraction), then enter the query's sorted list,
// ordered by (distance, index) as on the CPU. Once the lists fill, few pairs pass, and the work
// is the dot products.
#include "common.cuh"

#define KT_Q 128           // queries per block
#define KT_P 128           // points per tile
#define KT_DK 8            // dimensions per shared-memory pass (rows come padded to a multiple)
#define KT_CAP 32          // queued candidates per query and merge round (one per lane)
#define KT_ROW (KT_Q + 8)  // shared row: float4-aligned; 8 apart, a fragment's 4 x 8 reads
                           // hit 32 banks
#define KT_THREADS 256
static_assert(KT_Q == KT_P, "copy_tile copies KT_P rows of queries as of points");

#define F64_INF __longlong_as_double(0x7ff0000000000000ll)
#define F32_MAX __int_as_float(0x7f7fffff)

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

// Loads the float4 `part` (0 or 1) of dimensions d0 .. d0 + 8 of row `row` (zeros past `rows`).
__device__ __forceinline__ float4 load_dims(const float* __restrict__ x, u32 dimp, u64 row,
                                            u64 rows, u32 d0, int part) {
    if (row >= rows) return make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    return *reinterpret_cast<const float4*>(x + row * dimp + d0 + 4 * part);
}

#if KNN_TC
// f32 → TF32, rounded to nearest (ties away), as the tensor cores read it.
__device__ __forceinline__ float to_tf32(float v) {
    u32 r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
    return __uint_as_float(r);
}
#else
__device__ __forceinline__ float to_tf32(float v) { return v; }
#endif

// Stores a pass's loads transposed (dimension-major) into the stage's query and point tiles.
__device__ __forceinline__ void store_dims(float (*sq)[KT_ROW], float (*sp)[KT_ROW], int row,
                                           int part, float4 q, float4 p) {
    sq[4 * part + 0][row] = to_tf32(q.x);
    sq[4 * part + 1][row] = to_tf32(q.y);
    sq[4 * part + 2][row] = to_tf32(q.z);
    sq[4 * part + 3][row] = to_tf32(q.w);
    sp[4 * part + 0][row] = to_tf32(p.x);
    sp[4 * part + 1][row] = to_tf32(p.y);
    sp[4 * part + 2][row] = to_tf32(p.z);
    sp[4 * part + 3][row] = to_tf32(p.w);
}

#if KNN_TC
// acc's 2 x 2 of product (mi, ni) += the A fragment a (16 x 8) x the B fragment b0, b1 (8 x 8):
// one m16n8k8 TF32 tensor-core product.
__device__ __forceinline__ void mma_tf32(float (&acc)[8][8], int mi, int ni, u32 a0, u32 a1,
                                         u32 a2, u32 a3, u32 b0, u32 b1) {
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(acc[2 * mi][2 * ni]), "+f"(acc[2 * mi][2 * ni + 1]), "+f"(acc[2 * mi + 1][2 * ni]),
          "+f"(acc[2 * mi + 1][2 * ni + 1])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Warp w covers queries 64 (w / 4) .. + 64 and points 32 (w % 4) .. + 32 of the tile as 4 x 4
// m16n8k8 products. Entry (i, j) of a thread's 8 x 8 is accumulator (i & 1) * 2 + (j & 1) of
// product (i / 2, j / 2): query row g + 8 (i & 1), point column 2 t + (j & 1) within it, where
// g = lane / 4 and t = lane % 4 (the PTX ISA's fragment layout for .m16n8k8 .tf32).
__device__ __forceinline__ u32 query_slot(int t, int i) {
    const int w = t / 32, lane = t % 32;
    return (w / 4) * 64 + (i >> 1) * 16 + (i & 1) * 8 + lane / 4;
}
__device__ __forceinline__ u32 point_slot(int t, int j) {
    const int w = t / 32, lane = t % 32;
    return (w % 4) * 32 + (j >> 1) * 8 + (lane % 4) * 2 + (j & 1);
}

// One pass: acc += the stage's 8 dimensions of the warp's queries x points, on tensor cores.
__device__ __forceinline__ void pass(float (&acc)[8][8], const float (*sq)[KT_ROW],
                                     const float (*sp)[KT_ROW], int t) {
    const int w = t / 32, lane = t % 32, g = lane / 4, tg = lane % 4;
    const int qb = (w / 4) * 64, pb = (w % 4) * 32;
    u32 b[4][2];
#pragma unroll
    for (int ni = 0; ni < 4; ni++) {
        const int c = pb + ni * 8 + g;
        b[ni][0] = __float_as_uint(sp[tg][c]);
        b[ni][1] = __float_as_uint(sp[tg + 4][c]);
    }
    // One query fragment at a time (4 registers, not 16: the accumulators take 64).
#pragma unroll
    for (int mi = 0; mi < 4; mi++) {
        const int r = qb + mi * 16 + g;
        const u32 a0 = __float_as_uint(sq[tg][r]), a1 = __float_as_uint(sq[tg][r + 8]);
        const u32 a2 = __float_as_uint(sq[tg + 4][r]), a3 = __float_as_uint(sq[tg + 4][r + 8]);
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
            mma_tf32(acc, mi, ni, a0, a1, a2, a3, b[ni][0], b[ni][1]);
    }
}
#else
// 16 x 16 threads, thread (tx, ty) = (t % 16, t / 16) holding queries and points in two groups
// of four, 64 apart, so a quarter-warp's float4 reads of shared memory are contiguous.
__device__ __forceinline__ u32 query_slot(int t, int i) {
    return (i < 4 ? 0 : 64) + (t / 16) * 4 + (i & 3);
}
__device__ __forceinline__ u32 point_slot(int t, int j) {
    return (j < 4 ? 0 : 64) + (t % 16) * 4 + (j & 3);
}

// One pass: acc += the stage's 8 dimensions of the thread's 8 queries x 8 points, as FMAs.
__device__ __forceinline__ void pass(float (&acc)[8][8], const float (*sq)[KT_ROW],
                                     const float (*sp)[KT_ROW], int t) {
    const int tx = t % 16, ty = t / 16;
#pragma unroll
    for (int dd = 0; dd < KT_DK; dd++) {
        const float4 a0 = *reinterpret_cast<const float4*>(&sq[dd][ty * 4]);
        const float4 a1 = *reinterpret_cast<const float4*>(&sq[dd][64 + ty * 4]);
        const float4 b0 = *reinterpret_cast<const float4*>(&sp[dd][tx * 4]);
        const float4 b1 = *reinterpret_cast<const float4*>(&sp[dd][64 + tx * 4]);
        const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
        const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int j = 0; j < 8; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
}
#endif

// The block's state shared by both kernel bodies: the queries' sorted lists (global scratch),
// their filter thresholds and the candidates queued in a merge round.
struct BlockLists {
    double* ld;           // nq x m distances, sorted ascending (ties by index)
    u32* li;              // nq x m indices
    float* thr;           // [KT_Q] shared: the estimate a pair must not exceed to be queued
    int* count;           // [KT_Q] shared: candidates queued this round
    u32 (*cand)[KT_CAP];  // [KT_Q][KT_CAP] shared
    u32 m, nq;
    u64 qfirst;
};

// Empty lists; thresholds at the largest float until a list fills, so that pairs whose estimate
// overflows (or is NaN) never pass; rows past the block's queries pass nothing.
__device__ __forceinline__ void init_lists(const BlockLists& L, int t) {
    for (u32 e = t; e < L.nq * L.m; e += KT_THREADS) {
        L.ld[e] = F64_INF;
        L.li[e] = 0xffffffffu;
    }
    for (int e = t; e < KT_Q; e += KT_THREADS) {
        L.thr[e] = (u32)e < L.nq ? F32_MAX : -F32_INF;
        L.count[e] = 0;
    }
}

// The thread's pairs of the tile whose estimate does not exceed their query's threshold: bit
// i * 8 + j for entry (i, j) of `acc`, a row skipped when its nearest estimate does not pass.
__device__ __forceinline__ unsigned long long passing_pairs(const float (&acc)[8][8],
                                                            const BlockLists& L, int t) {
    unsigned long long pending = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const float limit = L.thr[query_slot(t, i)];
        float lo = acc[i][0];
#pragma unroll
        for (int j = 1; j < 8; j++) lo = fminf(lo, acc[i][j]);
        if (lo <= limit) {
#pragma unroll
            for (int j = 0; j < 8; j++)
                if (acc[i][j] <= limit) pending |= 1ull << (i * 8 + j);
        }
    }
    return pending;
}

// Lane `lane`'s queued pair of query ql (of c queued) with its exact squared distance, or
// (inf, 0xffffffff) past c.
__device__ __forceinline__ void queued_pair(const BlockLists& L, const float* __restrict__ x,
                                            u32 dim, u32 ql, int c, int lane, double& d, u32& p) {
    d = F64_INF;
    p = 0xffffffffu;
    if (lane < c) {
        p = L.cand[ql][lane];
        d = exact_sq(x + (L.qfirst + ql) * dim, x + (u64)p * dim, dim);
    }
}

// Query ql's threshold from its list's last distance `worst` (run by one lane): rounded up, and
// no lower than 2^-100 (near f32's underflow the estimate's error is absolute, which σ,
// relative, does not bound); the largest float while the list is not full. Empties its queue.
__device__ __forceinline__ void set_threshold(const BlockLists& L, u32 ql, double worst) {
    L.thr[ql] = worst == F64_INF ? F32_MAX : fmaxf(__double2float_ru(worst), 0x1p-100f);
    L.count[ql] = 0;
}

// Queues this thread's pending pairs that still pass (CHECK: their estimates against the
// thresholds; else all, their exact distances deciding) where their query's queue has room;
// returns whether a queue it added to reached flush_at (slots are handed out in order, so the
// thread given slot flush_at − 1 sees it).
template <bool CHECK>
__device__ __forceinline__ bool queue_pairs(const float (&acc)[8][8], unsigned long long& pending,
                                            const BlockLists& L, u64 n, u64 p0, u32 flush_at,
                                            int t) {
    bool full = false;
    if (pending == 0) return false;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const u32 ql = query_slot(t, i);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const unsigned long long bit = 1ull << (i * 8 + j);
            if (pending & bit) {
                const u64 p = p0 + point_slot(t, j);
                if (p < n && p != L.qfirst + ql && (!CHECK || acc[i][j] <= L.thr[ql])) {
                    const int slot = atomicAdd(&L.count[ql], 1);
                    if (slot < KT_CAP) {
                        L.cand[ql][slot] = (u32)p;
                        pending &= ~bit;
                        full |= (u32)slot + 1 >= flush_at;
                    }
                } else {
                    pending &= ~bit;
                }
            }
        }
    }
    return full;
}

// Every query's queue into its list (defined below; WARP: a warp's lanes hold a list of up to
// 32 entries).
template <bool WARP>
__device__ __forceinline__ void merge_queues(const BlockLists& L, const float* __restrict__ x,
                                             u32 dim, int t);

// The filter and merge of one tile's estimates `acc` (points p0 ..): a row whose nearest estimate
// passes marks its passing pairs (bit i * 8 + j); rows past the block's queries have a threshold
// of −inf; points past n (zero rows, estimate 0) and the query itself are dropped when queued.
// Merge rounds queue what still passes (up to KT_CAP a query), compute exact distances and insert
// them; again while anything is left queued out. Ends on a barrier that every thread reaches
// after its last read of the tile's shared memory.
__device__ __forceinline__ void merge_tile(const float (&acc)[8][8], const BlockLists& L,
                                           const float* __restrict__ x, u32 dim, u64 n, u64 p0,
                                           int t) {
    // The merging kernels' code as measured: their own queueing loop (queue_pairs, inlined
    // here, moves ptxas's spills into it) and lane-0 inserts.
    const int warp = t / 32, lane = t % 32;
    unsigned long long pending = passing_pairs(acc, L, t);
    while (__syncthreads_or(pending != 0)) {
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const u32 ql = query_slot(t, i);
#pragma unroll
            for (int j = 0; j < 8; j++) {
                const unsigned long long bit = 1ull << (i * 8 + j);
                if (pending & bit) {
                    const u64 p = p0 + point_slot(t, j);
                    if (p < n && p != L.qfirst + ql && acc[i][j] <= L.thr[ql]) {
                        const int slot = atomicAdd(&L.count[ql], 1);
                        if (slot < KT_CAP) {
                            L.cand[ql][slot] = (u32)p;
                            pending &= ~bit;
                        }
                    } else {
                        pending &= ~bit;
                    }
                }
            }
        }
        __syncthreads();
        for (u32 ql = warp; ql < L.nq; ql += KT_THREADS / 32) {
            const int c = min(L.count[ql], KT_CAP);
            if (c == 0) continue;
            double d;
            u32 p;
            queued_pair(L, x, dim, ql, c, lane, d, p);
            double* qd = L.ld + (u64)ql * L.m;
            u32* qi = L.li + (u64)ql * L.m;
            for (int s = 0; s < c; s++) {
                const double ds = __shfl_sync(0xffffffffu, d, s);
                const u32 ps = __shfl_sync(0xffffffffu, p, s);
                if (lane == 0) list_insert(qd, qi, L.m, ds, ps);
            }
            if (lane == 0) set_threshold(L, ql, qd[L.m - 1]);
            __syncwarp();
        }
        __syncthreads();
    }
}

// Deferred merging (the kernels' `flush_at` > 0): a tile's passing pairs are queued, up to
// KT_CAP a query, and left there; the queues are merged only when one of them reaches
// `flush_at`, when pairs are left over, and after the last tile (`last`). The thresholds then
// lag by the tiles since the last merge, so a few more pairs queue, but the lists end the same:
// a pair is only ever dropped against a list's worst entry so far, which bounds its final one.
// The merge is warp-parallel (merge_queues). A tile with nothing to merge costs one barrier, as
// in merge_tile, which ends the same way, after every thread's last read of the tile.
__device__ __forceinline__ void queue_tile(const float (&acc)[8][8], const BlockLists& L,
                                           const float* __restrict__ x, u32 dim, u64 n, u64 p0,
                                           u32 flush_at, bool last, int t) {
    unsigned long long pending = passing_pairs(acc, L, t);
    bool full = queue_pairs<true>(acc, pending, L, n, p0, flush_at, t);
    // The estimates are read no further: pairs left over by a full queue are queued after the
    // merge as they are (their exact distances decide), so the estimates do not live across a
    // merge.
    for (;;) {
        if (!__syncthreads_or(last || full || pending != 0)) return;
        merge_queues<true>(L, x, dim, t);
        // Merged everything queued; again only for pairs left over by full queues.
        if (!__syncthreads_or(pending != 0)) return;
        full = queue_pairs<false>(acc, pending, L, n, p0, flush_at, t);
    }
}

// Every query's queue into its list, a warp a query: the queued pairs' exact distances (a lane
// each), then, with WARP and lists of up to 32 entries, the list held a lane an entry and each
// pair inserted by one ballot (the entries that come after it) and one shift up; else by lane 0
// (list_insert). Thresholds updated and queues emptied; ends on a barrier.
template <bool WARP>
__device__ __forceinline__ void merge_queues(const BlockLists& L, const float* __restrict__ x,
                                             u32 dim, int t) {
    const int warp = t / 32, lane = t % 32;
    const u32 full_mask = 0xffffffffu;
    for (u32 ql = warp; ql < L.nq; ql += KT_THREADS / 32) {
        const int c = min(L.count[ql], KT_CAP);
        if (c == 0) continue;
        double d;
        u32 p;
        queued_pair(L, x, dim, ql, c, lane, d, p);
        double* qd = L.ld + (u64)ql * L.m;
        u32* qi = L.li + (u64)ql * L.m;
        double worst;
        if (WARP && L.m <= 32) {
            const bool held = (u32)lane < L.m;
            double e = held ? qd[lane] : F64_INF;
            u32 ei = held ? qi[lane] : 0xffffffffu;
            // Only the pairs that come before the list's last entry can enter it (the others
            // are dropped, as list_insert drops them); the entry it ends on rises as pairs go in,
            // so each is tested again on insertion.
            const double wd = __shfl_sync(full_mask, e, L.m - 1);
            const u32 wi = __shfl_sync(full_mask, ei, L.m - 1);
            u32 todo = __ballot_sync(full_mask, lane < c && (d < wd || (d == wd && p < wi)));
            const bool changed = todo != 0;
            while (todo != 0) {
                const int s = __ffs(todo) - 1;
                todo &= todo - 1;
                const double ds = __shfl_sync(full_mask, d, s);
                const u32 ps = __shfl_sync(full_mask, p, s);
                // The list is sorted, so the entries after the pair are a suffix; none when the
                // pair no longer comes before the last entry.
                const u32 after = __ballot_sync(full_mask, held && (e > ds || (e == ds && ei > ps)));
                const double up_d = __shfl_up_sync(full_mask, e, 1);
                const u32 up_i = __shfl_up_sync(full_mask, ei, 1);
                if (after != 0) {
                    const int pos = __ffs(after) - 1;
                    if (lane == pos) {
                        e = ds;
                        ei = ps;
                    } else if (lane > pos) {
                        e = up_d;
                        ei = up_i;
                    }
                }
            }
            if (held && changed) {
                qd[lane] = e;
                qi[lane] = ei;
            }
            worst = __shfl_sync(full_mask, e, L.m - 1);
        } else {
            for (int s = 0; s < c; s++) {
                const double ds = __shfl_sync(full_mask, d, s);
                const u32 ps = __shfl_sync(full_mask, p, s);
                if (lane == 0) list_insert(qd, qi, L.m, ds, ps);
            }
            worst = lane == 0 ? qd[L.m - 1] : 0.0;
        }
        if (lane == 0) set_threshold(L, ql, worst);
        __syncwarp();
    }
    __syncthreads();
}

// The lists, query first, as the kernels' outputs (k = 1: each query's only neighbour is itself).
__device__ __forceinline__ void write_out(const BlockLists& L, u64 qb, u32 k,
                                          u32* __restrict__ out_idx, float* __restrict__ out_dist,
                                          int t) {
    for (u32 e = t; e < L.nq * k; e += KT_THREADS) {
        const u32 ql = e / k, s = e % k;
        const u64 row = (qb + ql) * k;
        if (s == 0) {
            out_idx[row] = (u32)(L.qfirst + ql);
            out_dist[row] = 0.0f;
        } else {
            out_idx[row + s] = L.li[(u64)ql * L.m + s - 1];
            out_dist[row + s] = (float)sqrt(L.ld[(u64)ql * L.m + s - 1]);
        }
    }
}

// x: n x dim, the points as given (exact distances). rows / cols: n x dimp, the query and the
// point augmentations of the points less their mean (rows 16-byte aligned, dimp a multiple of
// KT_DK). Queries q0 .. q0 + n_queries. flush_at: 0 merges each tile's pairs into the lists at
// once (merge_tile), else queues up to that many a query before merging (queue_tile).
// list_d / list_i: n_queries x (k − 1) scratch. out_idx / out_dist: n_queries x k, the query
// first.
//
// Each kernel comes in two instances: KNN_KERNEL merges every tile (flush_at is not read), its
// `_deferred` twin queues (flush_at > 0), so the measured default's code is as it was.
#define KNN_PARAMS                                                                              \
    const float *__restrict__ x, const float *__restrict__ rows, const float *__restrict__ cols, \
        u64 n, u32 dim, u32 dimp, u64 q0, u64 n_queries, u32 k, u32 flush_at,                   \
        double *__restrict__ list_d, u32 *__restrict__ list_i, u32 *__restrict__ out_idx,        \
        float *__restrict__ out_dist
#define KNN_ARGS x, rows, cols, n, dim, dimp, q0, n_queries, k, flush_at, list_d, list_i, out_idx, out_dist
#define KNN_CAT_(a, b) a##b
#define KNN_CAT(a, b) KNN_CAT_(a, b)

template <bool DEFER>
__device__ __forceinline__ void knn_streamed(KNN_PARAMS) {
    // Two stages: a pass computes from one while the next pass's tiles are stored in the other.
    __shared__ __align__(16) float sq[2][KT_DK][KT_ROW];
    __shared__ __align__(16) float sp[2][KT_DK][KT_ROW];
    __shared__ float thr[KT_Q];
    __shared__ int count[KT_Q];
    __shared__ u32 cand[KT_Q][KT_CAP];
    const int t = threadIdx.x;
    const u64 qb = (u64)blockIdx.x * KT_Q;  // first query of the block, relative to q0
    const BlockLists L = {list_d + qb * (k - 1), list_i + qb * (k - 1), thr, count, cand, k - 1,
                          (u32)min((u64)KT_Q, n_queries - qb), q0 + qb};
    const u64 qend = L.qfirst + L.nq;
    if (L.m == 0) {
        write_out(L, qb, k, out_idx, out_dist, t);
        return;
    }
    init_lists(L, t);
    // This thread's share of a pass's loads: row t / 2 of the tile, dimensions 4 (t % 2) .. + 4.
    const int lrow = t / 2, lpart = t % 2;
    int stage = 0;
    {
        const float4 q = load_dims(rows, dimp, L.qfirst + lrow, qend, 0, lpart);
        const float4 p = load_dims(cols, dimp, lrow, n, 0, lpart);
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
                nq4 = load_dims(rows, dimp, L.qfirst + lrow, qend, nd, lpart);
                np4 = load_dims(cols, dimp, np0 + lrow, n, nd, lpart);
            }
            pass(acc, sq[stage], sp[stage], t);
            if (more) store_dims(sq[stage ^ 1], sp[stage ^ 1], lrow, lpart, nq4, np4);
            stage ^= 1;
            __syncthreads();
        }
        if (DEFER)
            queue_tile(acc, L, x, dim, n, p0, flush_at, p0 + KT_P >= n, t);
        else
            merge_tile(acc, L, x, dim, n, p0, t);
    }
    __syncthreads();
    write_out(L, qb, k, out_idx, out_dist, t);
}

extern "C" __global__ void __launch_bounds__(KT_THREADS, 2) KNN_KERNEL(KNN_PARAMS) {
    knn_streamed<false>(KNN_ARGS);
}
extern "C" __global__ void __launch_bounds__(KT_THREADS, 2)
    KNN_CAT(KNN_KERNEL, _deferred)(KNN_PARAMS) {
    knn_streamed<true>(KNN_ARGS);
}

#if KNN_TC
// Asynchronous 16-byte copy global → shared (sm_80 and newer), zeros where `bytes` is 0.
__device__ __forceinline__ void cp_async16(float* dst, const float* src, u32 bytes) {
    const u32 d = (u32)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(d), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
__device__ __forceinline__ void cp_async_wait_all_but_last() {
    asm volatile("cp.async.wait_group 1;" ::: "memory");
}

// Starts the copy of rows first .. first + KT_P of `src` (n x dimp, rows past `end` as zeros)
// into `dst`, row-major with `stride` floats a row.
__device__ __forceinline__ void copy_tile(float* dst, const float* __restrict__ src, u64 first,
                                          u64 end, u32 dimp, u32 stride, int t) {
    const u32 per_row = dimp / 4;
    for (u32 c = t; c < KT_P * per_row; c += KT_THREADS) {
        const u32 r = c / per_row, part = c % per_row;
        const bool in = first + r < end;
        cp_async16(dst + r * stride + 4 * part, src + (in ? (first + r) * dimp + 4 * part : 0),
                   in ? 16 : 0);
    }
}

// One pass from row-major tiles (`stride` floats a row): acc += dimensions d0 .. d0 + 8 of the
// warp's queries x points, the fragments of `pass` read from the other layout, so the sums are
// the same bits.
__device__ __forceinline__ void pass_rows(float (&acc)[8][8], const float* sq, const float* sp,
                                          u32 stride, u32 d0, int t) {
    const int w = t / 32, lane = t % 32, g = lane / 4, tg = lane % 4;
    const int qb = (w / 4) * 64, pb = (w % 4) * 32;
    u32 b[4][2];
#pragma unroll
    for (int ni = 0; ni < 4; ni++) {
        const float* c = sp + (pb + ni * 8 + g) * stride + d0 + tg;
        b[ni][0] = __float_as_uint(c[0]);
        b[ni][1] = __float_as_uint(c[4]);
    }
#pragma unroll
    for (int mi = 0; mi < 4; mi++) {
        const float* r = sq + (qb + mi * 16 + g) * stride + d0 + tg;
        const u32 a0 = __float_as_uint(r[0]), a1 = __float_as_uint(r[8 * stride]);
        const u32 a2 = __float_as_uint(r[4]), a3 = __float_as_uint(r[8 * stride + 4]);
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
            mma_tf32(acc, mi, ni, a0, a1, a2, a3, b[ni][0], b[ni][1]);
    }
}

// The same search with the block's queries resident in shared memory and whole point tiles
// copied asynchronously, the next while the current one is computed (one barrier a tile, the
// copies' latency hidden behind a tile's products). rows / cols must already be TF32 values
// (backend/cuda/points.rs rounds them), as the copies do not convert. Dynamic shared memory:
// (KT_Q + 2 KT_P) x (dimp + 4) floats; the row stride dimp + 4 is 4 times an odd number, so a
// fragment's 32 reads hit 32 banks.
template <bool DEFER>
__device__ __forceinline__ void knn_resident(KNN_PARAMS) {
    extern __shared__ __align__(16) float tiles[];
    __shared__ float thr[KT_Q];
    __shared__ int count[KT_Q];
    __shared__ u32 cand[KT_Q][KT_CAP];
    const int t = threadIdx.x;
    const u64 qb = (u64)blockIdx.x * KT_Q;
    const BlockLists L = {list_d + qb * (k - 1), list_i + qb * (k - 1), thr, count, cand, k - 1,
                          (u32)min((u64)KT_Q, n_queries - qb), q0 + qb};
    if (L.m == 0) {
        write_out(L, qb, k, out_idx, out_dist, t);
        return;
    }
    init_lists(L, t);
    const u32 stride = dimp + 4;
    const float* sq = tiles;
    // Point buffer b (0 or 1).
    auto sp = [&](int b) { return tiles + (KT_Q + b * KT_P) * stride; };
    copy_tile(tiles, rows, L.qfirst, L.qfirst + L.nq, dimp, stride, t);
    copy_tile(sp(0), cols, 0, n, dimp, stride, t);
    cp_async_commit();
    int cur = 0;
    for (u64 p0 = 0; p0 < n; p0 += KT_P) {
        // The next tile goes to the other buffer, whose last reads (the previous tile's
        // products) ended before the first barrier of that tile's merge.
        if (p0 + KT_P < n) copy_tile(sp(cur ^ 1), cols, p0 + KT_P, n, dimp, stride, t);
        cp_async_commit();
        cp_async_wait_all_but_last();
        __syncthreads();
        float acc[8][8];
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int j = 0; j < 8; j++) acc[i][j] = 0.0f;
        for (u32 d0 = 0; d0 < dimp; d0 += KT_DK) pass_rows(acc, sq, sp(cur), stride, d0, t);
        if (DEFER)
            queue_tile(acc, L, x, dim, n, p0, flush_at, p0 + KT_P >= n, t);
        else
            merge_tile(acc, L, x, dim, n, p0, t);
        cur ^= 1;
    }
    __syncthreads();
    write_out(L, qb, k, out_idx, out_dist, t);
}

extern "C" __global__ void __launch_bounds__(KT_THREADS, 2) knn_exact_tc_resident(KNN_PARAMS) {
    knn_resident<false>(KNN_ARGS);
}
extern "C" __global__ void __launch_bounds__(KT_THREADS, 2)
    knn_exact_tc_resident_deferred(KNN_PARAMS) {
    knn_resident<true>(KNN_ARGS);
}
#endif
