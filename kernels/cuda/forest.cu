// Forest inference for the shipped tree-ensemble classifier (ONNX-ML TreeEnsembleClassifier,
// converted at load time by inference/src/gpu/layout.rs). One thread scores one row: it walks
// every tree in order and sums the leaves' class weights, so the sum runs in the same order as
// the CPU evaluator (inference/src/tree.rs) and every row's result is deterministic.
//
// Layout, in the manner of RAPIDS FIL's sparse forests: all trees in one array of 16-byte
// nodes, each an `x <= threshold` test (LT, GT and GTE rewritten at load), children by index,
// leaves pointing to themselves. A tree is walked in exactly `depth` steps whatever the row,
// so the threads of a warp stay in step; a leaf's index into the (class, weight) ranges comes
// from `leaf_of`. The top bit of `feature` sends NaN to the right child
// (`nodes_missing_value_tracks_true`).
//
// Only plain C and a few CUDA builtins (blockIdx, blockDim, threadIdx, expf) are used, so
// shim_cpu.h can run this same file on the CPU for the tests.

#ifdef PORTCULLIS_CPU_SHIM
#include "shim_cpu.h"
#endif

#define FOREST_MAX_CLASSES 64
#define FOREST_NAN_RIGHT 0x80000000u
#define FOREST_FEATURE_MASK 0x7fffffffu

#define FOREST_POST_NONE 0u
#define FOREST_POST_SOFTMAX 1u
#define FOREST_POST_LOGISTIC 2u

struct ForestNode {
    float threshold;
    unsigned int feature;  // column read; top bit: NaN goes right
    unsigned int child[2]; // [x <= threshold, otherwise]
};

// Scalars of the forest, passed by value.
struct ForestShape {
    unsigned int n_rows;
    unsigned int width;    // floats per input row
    unsigned int n_trees;
    unsigned int n_classes;
    unsigned int post;     // FOREST_POST_*
    unsigned int binary_layout; // two classes, leaves score class 0 only: [1 - s, s]
};

extern "C" __global__ void forest_predict(
    struct ForestShape shape,
    const float* __restrict__ rows,
    const struct ForestNode* __restrict__ nodes,
    const unsigned int* __restrict__ tree_root,
    const unsigned int* __restrict__ tree_depth,
    const unsigned int* __restrict__ leaf_of,
    const unsigned int* __restrict__ leaf_start,
    const unsigned int* __restrict__ leaf_class,
    const float* __restrict__ leaf_weight,
    const float* __restrict__ base,
    float* __restrict__ out)
{
    unsigned int row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= shape.n_rows) {
        return;
    }
    const float* x = rows + (unsigned long long)row * shape.width;
    unsigned int c = shape.n_classes;
    float acc[FOREST_MAX_CLASSES];
    for (unsigned int k = 0; k < c; k++) {
        acc[k] = 0.0f;
    }
    for (unsigned int t = 0; t < shape.n_trees; t++) {
        unsigned int i = tree_root[t];
        unsigned int depth = tree_depth[t];
        for (unsigned int d = 0; d < depth; d++) {
            struct ForestNode nd = nodes[i];
            float v = x[nd.feature & FOREST_FEATURE_MASK];
            // v != v: NaN, without isnan, which the CPU shim would need a header for.
            unsigned int right = (v != v) ? ((nd.feature & FOREST_NAN_RIGHT) != 0) : (v > nd.threshold);
            i = nd.child[right];
        }
        unsigned int leaf = leaf_of[i];
        for (unsigned int e = leaf_start[leaf]; e < leaf_start[leaf + 1]; e++) {
            acc[leaf_class[e]] += leaf_weight[e];
        }
    }
    for (unsigned int k = 0; k < c; k++) {
        acc[k] += base[k];
    }
    if (shape.post == FOREST_POST_LOGISTIC) {
        for (unsigned int k = 0; k < c; k++) {
            acc[k] = 1.0f / (1.0f + expf(-acc[k]));
        }
    } else if (shape.post == FOREST_POST_SOFTMAX) {
        float max = acc[0];
        for (unsigned int k = 1; k < c; k++) {
            max = acc[k] > max ? acc[k] : max;
        }
        float sum = 0.0f;
        for (unsigned int k = 0; k < c; k++) {
            acc[k] = expf(acc[k] - max);
            sum += acc[k];
        }
        for (unsigned int k = 0; k < c; k++) {
            acc[k] /= sum;
        }
    }
    if (shape.binary_layout) {
        float s = acc[0];
        acc[0] = 1.0f - s;
        acc[1] = s;
    }
    float* o = out + (unsigned long long)row * c;
    for (unsigned int k = 0; k < c; k++) {
        o[k] = acc[k];
    }
}
