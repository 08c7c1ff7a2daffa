// Gram accumulation XᵀX of a CSR chunk, the CUDA twin of CpuBackend::gram: a block of rows is
// scattered into a dense f64 panel (repeated columns summed, as scipy's canonical form), then a
// tiled SYRK adds the panel's PᵀP into the upper triangle of a device-resident f64 gram.
#include "common.cuh"

// One warp per row: panel[r * dim + j] += x (the panel is zeroed first; repeated columns add).
extern "C" __global__ void densify(const u64* __restrict__ indptr, u64 base,
                                   const u32* __restrict__ indices, const float* __restrict__ data,
                                   u64 n_rows, u64 dim, double* __restrict__ panel) {
    const u64 warp = global_tid() / 32;
    const int lane = threadIdx.x % 32;
    const u64 n_warps = grid_stride() / 32;
    for (u64 r = warp; r < n_rows; r += n_warps) {
        for (u64 k = indptr[r] + lane; k < indptr[r + 1]; k += 32) {
            const u32 j = indices[k - base];
            const double x = (double)data[k - base];
            atomicAdd(&panel[r * dim + j], x);
        }
    }
}

// colsum[j] += Σ_r panel[r][j]: one thread per column, reading the panel row by row (coalesced).
extern "C" __global__ void panel_colsum(const double* __restrict__ panel, u64 n_rows, u64 dim,
                                        double* __restrict__ colsum) {
    for (u64 j = global_tid(); j < dim; j += grid_stride()) {
        double s = 0.0;
        for (u64 r = 0; r < n_rows; r++) s += panel[r * dim + j];
        colsum[j] += s;
    }
}

// G[i][j] += Σ_r P[r][i] · P[r][j] for the upper triangle (i <= j) of a dim x dim row-major G,
// over a panel P of n_rows x dim. One block of 16 x 16 threads per 64 x 64 tile of G (tile pairs
// a <= b are enumerated by blockIdx.x); each thread owns a 4 x 4 micro-tile; the panel streams
// through shared memory 16 rows at a time. Diagonal tiles compute their full square (the lower
// half is ignored by the host).
#define SYRK_T 64
#define SYRK_R 16
extern "C" __global__ void __launch_bounds__(256) syrk_upper(const double* __restrict__ panel,
                                                             u64 n_rows, u64 dim, u32 n_tiles,
                                                             double* __restrict__ gram) {
    // Tile pair (a, b), a <= b, from the linear block index p: rows of the upper triangle.
    u32 p = blockIdx.x, a = 0;
    while (p >= n_tiles - a) {
        p -= n_tiles - a;
        a++;
    }
    const u32 b = a + p;
    __shared__ double sa[SYRK_R][SYRK_T];
    __shared__ double sb[SYRK_R][SYRK_T];
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    double acc[4][4] = {};
    const u64 i0 = (u64)a * SYRK_T, j0 = (u64)b * SYRK_T;
    for (u64 r0 = 0; r0 < n_rows; r0 += SYRK_R) {
        // 256 threads load 16 x 64 values of each side: 4 each.
        for (int t = threadIdx.x; t < SYRK_R * SYRK_T; t += 256) {
            const int rr = t / SYRK_T, cc = t % SYRK_T;
            const u64 r = r0 + rr;
            const bool in_r = r < n_rows;
            sa[rr][cc] = (in_r && i0 + cc < dim) ? panel[r * dim + i0 + cc] : 0.0;
            sb[rr][cc] = (in_r && j0 + cc < dim) ? panel[r * dim + j0 + cc] : 0.0;
        }
        __syncthreads();
#pragma unroll
        for (int rr = 0; rr < SYRK_R; rr++) {
            double va[4], vb[4];
#pragma unroll
            for (int u = 0; u < 4; u++) {
                va[u] = sa[rr][ty + 16 * u];
                vb[u] = sb[rr][tx + 16 * u];
            }
#pragma unroll
            for (int u = 0; u < 4; u++)
#pragma unroll
                for (int v = 0; v < 4; v++) acc[u][v] = fma(va[u], vb[v], acc[u][v]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int u = 0; u < 4; u++) {
        const u64 i = i0 + ty + 16 * u;
        if (i >= dim) continue;
#pragma unroll
        for (int v = 0; v < 4; v++) {
            const u64 j = j0 + tx + 16 * v;
            if (j < dim && j >= i) gram[i * dim + j] += acc[u][v];
        }
    }
}
