// One epoch of UMAP's edge sampling with negative samples, the CUDA twin of the CPU layout
// kernel (backend/cpu/layout.rs): one thread per edge, Hogwild updates of a shared embedding,
// negative samples drawn by the same splitmix64 hash of (epoch seed, edge), so a race-free graph
// gives the CPU's result.
//
// Unlike the CPU's threads, thousands of GPU threads run at once, and the edges of one head sit
// on neighbouring lanes: writing whole positions back would let one edge's write erase its
// neighbours'. Every update is therefore added as a delta with atomicAdd (the head's attraction
// and repulsion, the tail's attraction). The edge clocks are computed without FMA contraction so
// the sampling counts round as the CPU's do.
#include "common.cuh"

#define MAX_DIM 8

__device__ __forceinline__ float clip4(float v) { return fminf(fmaxf(v, -4.0f), 4.0f); }

// One negative sample's repulsion of the head `cur` from the point whose coordinate d is
// `pt(d)` (umap's gradient 2γb / ((0.001 + d²)(1 + a d²ᵇ)), clipped); `grad` is scratch.
template <typename P>
__device__ __forceinline__ void repel(float* cur, float* grad, u32 dim, P pt, float a, float b,
                                      float gamma, float alpha) {
    float dn = 0.0f;
    for (u32 d = 0; d < dim; d++) {
        const float diff = cur[d] - pt(d);
        grad[d] = diff;
        dn += diff * diff;
    }
    if (dn > 0.0f) {
        const float pb = powf(dn, b);
        const float c = 2.0f * gamma * b / ((0.001f + dn) * (a * pb + 1.0f));
        for (u32 d = 0; d < dim; d++) cur[d] += clip4(c * grad[d]) * alpha;
    }
}

// The kernels' parameters, and the same as arguments.
#define LAYOUT_PARAMS                                                                           \
    float *__restrict__ emb, u32 n, u32 dim_arg, const u32 *__restrict__ head,                  \
        const u32 *__restrict__ tail, const float *__restrict__ eps, u64 n_edges,               \
        float *__restrict__ next_sample, float *__restrict__ next_negative, float a, float b,    \
        float gamma, float neg_rate, float alpha, float epoch, u64 seed
#define LAYOUT_ARGS                                                                             \
    emb, n, dim_arg, head, tail, eps, n_edges, next_sample, next_negative, a, b, gamma,         \
        neg_rate, alpha, epoch, seed

// The epoch for embeddings of DIM dimensions (0: `dim_arg`, up to MAX_DIM, in local arrays; a
// fixed DIM keeps the coordinates in registers), loading the points of NB negative samples at
// once (NB > 1 needs a fixed DIM).
template <int DIM, int NB>
__device__ __forceinline__ void epoch_body(LAYOUT_PARAMS) {
    static_assert(NB == 1 || DIM > 0, "batched negative samples need a fixed dimension");
    const u32 dim = DIM > 0 ? DIM : dim_arg;
    for (u64 i = global_tid(); i < n_edges; i += grid_stride()) {
        float ns = next_sample[i];
        if (ns > epoch) continue;
        const u32 hj = head[i];
        const u64 j = (u64)hj * dim, kt = (u64)tail[i] * dim;
        float cur[DIM > 0 ? DIM : MAX_DIM], grad[DIM > 0 ? DIM : MAX_DIM];
        float d2 = 0.0f;
        for (u32 d = 0; d < dim; d++) {
            cur[d] = emb[j + d];
            const float diff = cur[d] - emb[kt + d];
            grad[d] = diff;
            d2 += diff * diff;
        }
        float coeff = 0.0f;
        if (d2 > 0.0f) {
            const float pb = powf(d2, b);
            // One division, as the CPU lanes: -2ab·d²ᵇ / (d²(1 + a d²ᵇ)).
            coeff = -2.0f * a * b * pb / (d2 * (a * pb + 1.0f));
        }
        float start[DIM > 0 ? DIM : MAX_DIM];
        for (u32 d = 0; d < dim; d++) {
            const float g = clip4(coeff * grad[d]) * alpha;
            cur[d] += g;
            start[d] = cur[d];
            atomicAdd(&emb[j + d], g);
            atomicAdd(&emb[kt + d], -g);
        }
        const float e = eps[i];
        next_sample[i] = ns + e;
        const float eps_neg = __fdiv_rn(e, neg_rate);
        const float nn = next_negative[i];
        const float n_neg_f = fmaxf(__fdiv_rn(__fsub_rn(epoch, nn), eps_neg), 0.0f);
        const u64 n_neg = (u64)n_neg_f;
        u64 state = splitmix64(seed ^ i);
        if constexpr (NB == 1) {
            for (u64 s = 0; s < n_neg; s++) {
                state = splitmix64(state);
                const u64 k = (((state >> 32) * (u64)n) >> 32) * dim;
                repel(cur, grad, dim, [&](u32 d) { return emb[k + d]; }, a, b, gamma, alpha);
            }
        } else {
            // The negative samples' points loaded NB at a time, then used in order: one wait for
            // memory a batch, not one a sample. This thread writes no point between its tail's
            // update above and its head's below, so a point read early is the point the sample
            // would read, and the arithmetic is the loop's above.
            for (u64 s0 = 0; s0 < n_neg; s0 += NB) {
                const u64 nb = min((u64)NB, n_neg - s0);
                float pts[NB][DIM];
#pragma unroll
                for (int s = 0; s < NB; s++) {
                    if ((u64)s < nb) {
                        state = splitmix64(state);
                        const u64 k = (((state >> 32) * (u64)n) >> 32) * DIM;
#pragma unroll
                        for (int d = 0; d < DIM; d++) pts[s][d] = emb[k + d];
                    }
                }
#pragma unroll
                for (int s = 0; s < NB; s++) {
                    if ((u64)s < nb)
                        repel(cur, grad, DIM, [&](u32 d) { return pts[s][d]; }, a, b, gamma, alpha);
                }
            }
        }
        for (u32 d = 0; d < dim; d++) atomicAdd(&emb[j + d], cur[d] - start[d]);
        next_negative[i] = __fadd_rn(nn, __fmul_rn((float)n_neg, eps_neg));
    }
}

// Any dimension up to MAX_DIM.
extern "C" __global__ void layout_epoch(LAYOUT_PARAMS) { epoch_body<0, 1>(LAYOUT_ARGS); }

// UMAP's usual 2-D layout (`dim_arg` must be 2).
extern "C" __global__ void layout_epoch_2d(LAYOUT_PARAMS) { epoch_body<2, 1>(LAYOUT_ARGS); }

// The same with eight negative samples' points loaded at once (the same result).
extern "C" __global__ void layout_epoch_2d_batched(LAYOUT_PARAMS) {
    epoch_body<2, 8>(LAYOUT_ARGS);
}
