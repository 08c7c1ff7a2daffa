// Exact k nearest neighbours, the CUDA twin of CpuBackend::knn_exact: tiles of 64 queries against
// tiles of 64 points in shared memory, squared distances in f32 by differences, a sorted private
// top-(k-1) list per thread, merged per query at the end. The query itself goes first.
#include "common.cuh"

#define KNN_Q 64       // queries per block
#define KNN_P 64       // points per tile
#define KNN_D 32       // dimensions per shared-memory pass
#define KNN_SPLIT 4    // threads per query (each sees every 4th point of a tile)
#define KNN_PER (KNN_P / KNN_SPLIT)

// Inserts (d, i) into the sorted list (ld, li) of length m if it beats the last entry; equal
// distances keep the earlier entry first. Returns the new last distance.
__device__ __forceinline__ float topk_push(float* ld, u32* li, u32 m, float d, u32 i) {
    u32 pos = m - 1;
    while (pos > 0 && ld[pos - 1] > d) {
        ld[pos] = ld[pos - 1];
        li[pos] = li[pos - 1];
        pos--;
    }
    ld[pos] = d;
    li[pos] = i;
    return ld[m - 1];
}

// points: n x dim row-major. Queries q0 .. q0 + n_queries. out_idx / out_dist: n_queries x k.
// scratch_d / scratch_i: gridDim.x * 256 * (k - 1) entries.
extern "C" __global__ void __launch_bounds__(256) knn_exact(
    const float* __restrict__ points, u64 n, u32 dim, u64 q0, u64 n_queries, u32 k,
    float* __restrict__ scratch_d, u32* __restrict__ scratch_i, u32* __restrict__ out_idx,
    float* __restrict__ out_dist) {
    // Rows padded by one: the loads below store along KNN_D, 32 different rows per warp.
    __shared__ float sq[KNN_D][KNN_Q + 1];
    __shared__ float sp[KNN_D][KNN_P + 1];
    const u32 m = k - 1;
    const int t = threadIdx.x;
    const int qi = t / KNN_SPLIT, sub = t % KNN_SPLIT;
    const u64 qb = (u64)blockIdx.x * KNN_Q;  // first query of the block, relative to q0
    const u64 q = q0 + qb + qi;
    const bool live = qb + qi < n_queries;
    float* ld = scratch_d + ((u64)blockIdx.x * 256 + t) * m;
    u32* li = scratch_i + ((u64)blockIdx.x * 256 + t) * m;
    for (u32 s = 0; s < m; s++) {
        ld[s] = F32_INF;
        li[s] = 0xffffffffu;
    }
    float worst = m > 0 ? F32_INF : -1.0f;
    for (u64 p0 = 0; p0 < n; p0 += KNN_P) {
        float acc[KNN_PER];
#pragma unroll
        for (int s = 0; s < KNN_PER; s++) acc[s] = 0.0f;
        for (u32 d0 = 0; d0 < dim; d0 += KNN_D) {
            for (int e = t; e < KNN_D * KNN_Q; e += 256) {
                const int dd = e % KNN_D, rr = e / KNN_D;
                const u64 qq = q0 + qb + rr, pp = p0 + rr;
                const bool in_d = d0 + dd < dim;
                sq[dd][rr] = (in_d && qb + rr < n_queries) ? points[qq * dim + d0 + dd] : 0.0f;
                sp[dd][rr] = (in_d && pp < n) ? points[pp * dim + d0 + dd] : 0.0f;
            }
            __syncthreads();
#pragma unroll 4
            for (int dd = 0; dd < KNN_D; dd++) {
                const float x = sq[dd][qi];
#pragma unroll
                for (int s = 0; s < KNN_PER; s++) {
                    const float diff = x - sp[dd][sub + KNN_SPLIT * s];
                    acc[s] = fmaf(diff, diff, acc[s]);
                }
            }
            __syncthreads();
        }
        if (live) {
#pragma unroll
            for (int s = 0; s < KNN_PER; s++) {
                const u64 p = p0 + sub + KNN_SPLIT * s;
                if (p < n && p != q && acc[s] < worst) worst = topk_push(ld, li, m, acc[s], (u32)p);
            }
        }
    }
    __syncthreads();
    if (!live || sub != 0) return;
    // Merge the KNN_SPLIT sorted lists of this query (threads t .. t + KNN_SPLIT - 1).
    u32 head[KNN_SPLIT];
    for (int h = 0; h < KNN_SPLIT; h++) head[h] = 0;
    const u64 row = (qb + qi) * k;
    out_idx[row] = (u32)q;
    out_dist[row] = 0.0f;
    for (u32 o = 0; o < m; o++) {
        int best = -1;
        float bd = F32_INF;
        u32 bi = 0xffffffffu;
        for (int h = 0; h < KNN_SPLIT; h++) {
            if (head[h] >= m) continue;
            const float d = ld[h * m + head[h]];
            const u32 i = li[h * m + head[h]];
            if (best < 0 || d < bd || (d == bd && i < bi)) {
                best = h;
                bd = d;
                bi = i;
            }
        }
        head[best]++;
        out_idx[row + 1 + o] = bi;
        out_dist[row + 1 + o] = sqrtf(bd);
    }
}
