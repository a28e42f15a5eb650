// Runs the CUDA kernels of this directory on the CPU: the few CUDA words they use become plain
// C++, and the launch helpers in shim_cpu.cpp run the grid as loops. This is what lets CI,
// which has no GPU, check the kernels' arithmetic against the CPU scorer; the kernels compile
// for the device from the very same files.
#ifndef PORTCULLIS_SHIM_CPU_H
#define PORTCULLIS_SHIM_CPU_H

#include <math.h>

#define __global__
#define __device__
#define __forceinline__ inline

struct ShimDim3 {
    unsigned int x, y, z;
};

// The position of the "thread" the loops are running; thread-local so tests that launch from
// several threads at once do not see each other's.
extern thread_local ShimDim3 blockIdx;
extern thread_local ShimDim3 threadIdx;
extern thread_local ShimDim3 blockDim;
extern thread_local ShimDim3 gridDim;

#endif
