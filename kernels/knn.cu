// Exact k nearest neighbours on the CUDA cores (any GPU): knn_tile.cuh with f32 dot products.
#define KNN_TC 0
#define KNN_KERNEL knn_exact
#include "knn_tile.cuh"
