// The anomaly autoencoder: the ONNX graph's elementwise preprocessing, its dense layers
// (matrix multiply, bias and activation fused in one step) and the reconstruction error, per
// row, in one kernel. inference/src/gpu/layout.rs converts the graph at load time into a
// short straight-line program of `MlpOp`s over a per-row scratch vector; every thread runs the
// same program on its own row, so the branch on the op code is uniform across a warp and
// weights are read by all threads of a warp at once (broadcast loads).
//
// Operands name a vector: the top two bits say where it lives, the rest its offset.
//   0 scratch (the thread's own), 1 the input row, 2 a parameter vector, 3 a parameter scalar
//   (the same value for every element).
//
// Only plain C and a few CUDA builtins (blockIdx, blockDim, threadIdx, expf, logf, tanhf,
// sqrtf, fabsf, fmaxf, fminf) are used, so shim_cpu.h can run this same file on the CPU.

#ifdef PORTCULLIS_CPU_SHIM
#include "shim_cpu.h"
#endif

// Floats of scratch per row; the converter refuses a graph whose live values need more.
#define MLP_SCRATCH 1024

#define MLP_OP_UNARY 0u   // dst[j] = f(a[j])                      j < n
#define MLP_OP_BINARY 1u  // dst[j] = a[j] f b[j]                  j < n
#define MLP_OP_CLIP 2u    // dst[j] = min(max(a[j], b[j]), c[j])   j < n
#define MLP_OP_DENSE 3u   // dst[o] = f(sum_i a[i] * b[i*n + o] + c[o])  o < n, i < k; c may be MLP_NONE
#define MLP_OP_SQERR 4u   // dst[0] = sum_j c[j] * (a[j] - b[j])^2 j < k

#define MLP_F_IDENTITY 0u
#define MLP_F_RELU 1u
#define MLP_F_SIGMOID 2u
#define MLP_F_TANH 3u
#define MLP_F_ABS 4u
#define MLP_F_NEG 5u
#define MLP_F_SIGN 6u
#define MLP_F_LOG 7u
#define MLP_F_EXP 8u
#define MLP_F_SQRT 9u

#define MLP_F_ADD 0u
#define MLP_F_SUB 1u
#define MLP_F_MUL 2u
#define MLP_F_DIV 3u
#define MLP_F_MAX 4u
#define MLP_F_MIN 5u

#define MLP_NONE 0xffffffffu
#define MLP_WHERE(o) ((o) >> 30)
#define MLP_OFFSET(o) ((o) & 0x3fffffffu)

struct MlpOp {
    unsigned int code;
    unsigned int n;  // output width
    unsigned int k;  // input width (dense, sqerr)
    unsigned int dst; // scratch offset
    unsigned int a;
    unsigned int b;
    unsigned int c;
    unsigned int f;  // MLP_F_*
};

struct MlpShape {
    unsigned int n_rows;
    unsigned int width;   // floats per input row
    unsigned int n_ops;
    unsigned int result;  // scratch offset of the row's score
};

// The vector an operand names and its stride (0 for a scalar).
__device__ __forceinline__ const float* mlp_vec(unsigned int o, const float* s, const float* x, const float* p, unsigned int* stride)
{
    unsigned int off = MLP_OFFSET(o);
    *stride = 1;
    switch (MLP_WHERE(o)) {
    case 0: return s + off;
    case 1: return x + off;
    case 2: return p + off;
    default: *stride = 0; return p + off;
    }
}

__device__ __forceinline__ float mlp_unary(unsigned int f, float v)
{
    switch (f) {
    case MLP_F_RELU: return (v > 0.0f || v != v) ? v : 0.0f; // NaN stays NaN
    case MLP_F_SIGMOID: return 1.0f / (1.0f + expf(-v));
    case MLP_F_TANH: return tanhf(v);
    case MLP_F_ABS: return fabsf(v);
    case MLP_F_NEG: return -v;
    case MLP_F_SIGN: return v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : (v == 0.0f ? 0.0f : v));
    case MLP_F_LOG: return logf(v);
    case MLP_F_EXP: return expf(v);
    case MLP_F_SQRT: return sqrtf(v);
    default: return v;
    }
}

__device__ __forceinline__ float mlp_binary(unsigned int f, float a, float b)
{
    switch (f) {
    case MLP_F_ADD: return a + b;
    case MLP_F_SUB: return a - b;
    case MLP_F_MUL: return a * b;
    case MLP_F_DIV: return a / b;
    case MLP_F_MAX: return fmaxf(a, b);
    default: return fminf(a, b);
    }
}

extern "C" __global__ void mlp_score(
    struct MlpShape shape,
    const float* __restrict__ rows,
    const struct MlpOp* __restrict__ ops,
    const float* __restrict__ params,
    float* __restrict__ out)
{
    unsigned int row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= shape.n_rows) {
        return;
    }
    const float* x = rows + (unsigned long long)row * shape.width;
    float s[MLP_SCRATCH];
    for (unsigned int q = 0; q < shape.n_ops; q++) {
        struct MlpOp op = ops[q];
        float* d = s + op.dst;
        unsigned int sa = 0, sb = 0, sc = 0;
        const float* a = mlp_vec(op.a, s, x, params, &sa);
        const float* b = op.b == MLP_NONE ? 0 : mlp_vec(op.b, s, x, params, &sb);
        const float* c = op.c == MLP_NONE ? 0 : mlp_vec(op.c, s, x, params, &sc);
        switch (op.code) {
        case MLP_OP_UNARY:
            for (unsigned int j = 0; j < op.n; j++) {
                d[j] = mlp_unary(op.f, a[j * sa]);
            }
            break;
        case MLP_OP_BINARY:
            for (unsigned int j = 0; j < op.n; j++) {
                d[j] = mlp_binary(op.f, a[j * sa], b[j * sb]);
            }
            break;
        case MLP_OP_CLIP:
            for (unsigned int j = 0; j < op.n; j++) {
                d[j] = fminf(fmaxf(a[j * sa], b[j * sb]), c[j * sc]);
            }
            break;
        case MLP_OP_DENSE:
            // Output by output: the row's input stays in this thread's scratch while the
            // weights, the same for every thread, are broadcast.
            for (unsigned int o = 0; o < op.n; o++) {
                float acc = 0.0f;
                for (unsigned int i = 0; i < op.k; i++) {
                    acc += a[i * sa] * b[i * op.n + o];
                }
                if (c) {
                    acc += c[o * sc];
                }
                d[o] = mlp_unary(op.f, acc);
            }
            break;
        case MLP_OP_SQERR: {
            float acc = 0.0f;
            for (unsigned int j = 0; j < op.k; j++) {
                float e = a[j * sa] - b[j * sb];
                acc += (e * e) * c[j * sc];
            }
            d[0] = acc;
            break;
        }
        default:
            break;
        }
    }
    out[row] = s[shape.result];
}
