// scoop-arch: compute_80
// Exact k nearest neighbours on TF32 tensor cores (sm_80 and newer): knn_tile.cuh with
// mma.sync.m16n8k8 dot products, whose coarser rounding only widens the filter.
#define KNN_TC 1
#define KNN_KERNEL knn_exact_tc
#include "knn_tile.cuh"
