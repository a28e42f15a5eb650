// The CPU shim's launch helpers: each runs one kernel over a one-dimensional grid as two nested
// loops (blocks, then threads), in order. The kernels use no shared memory and no barrier, so
// running threads one after another is a faithful execution. Built only for the tests
// (inference's `cpu-shim` feature, inference/build.rs), called through inference/src/gpu/shim.rs.
#define PORTCULLIS_CPU_SHIM 1
#include "shim_cpu.h"

thread_local ShimDim3 blockIdx;
thread_local ShimDim3 threadIdx;
thread_local ShimDim3 blockDim;
thread_local ShimDim3 gridDim;

#include "forest.cu"
#include "mlp.cu"

template <typename Kernel>
static void run_grid(unsigned int n_rows, unsigned int block, Kernel kernel)
{
    unsigned int grid = (n_rows + block - 1) / block;
    gridDim = ShimDim3{grid, 1, 1};
    blockDim = ShimDim3{block, 1, 1};
    for (unsigned int b = 0; b < grid; b++) {
        blockIdx = ShimDim3{b, 0, 0};
        for (unsigned int t = 0; t < block; t++) {
            threadIdx = ShimDim3{t, 0, 0};
            kernel();
        }
    }
}

extern "C" void portcullis_shim_forest_predict(
    unsigned int block,
    struct ForestShape shape,
    const float* rows,
    const struct ForestNode* nodes,
    const unsigned int* tree_root,
    const unsigned int* tree_depth,
    const unsigned int* leaf_of,
    const unsigned int* leaf_start,
    const unsigned int* leaf_class,
    const float* leaf_weight,
    const float* base,
    float* out)
{
    run_grid(shape.n_rows, block, [&] {
        forest_predict(shape, rows, nodes, tree_root, tree_depth, leaf_of, leaf_start, leaf_class, leaf_weight, base, out);
    });
}

extern "C" void portcullis_shim_mlp_score(
    unsigned int block,
    struct MlpShape shape,
    const float* rows,
    const struct MlpOp* ops,
    const float* params,
    float* out)
{
    run_grid(shape.n_rows, block, [&] { mlp_score(shape, rows, ops, params, out); });
}
