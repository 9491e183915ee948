// The CUDA C++ device language, as much of it as native/cuda/predcode.cu uses, for compiling the
// kernels with the host compiler (kernels.cpp). Each GPU thread of a block runs as a call of the
// kernel function; a block whose threads meet at __syncthreads runs them as fibers (simulator.cpp).
#pragma once
#include <cmath>
#include <cstdint>

using std::isnan;
using std::isfinite;

struct uint3 { unsigned int x, y, z; };
struct dim3 { unsigned int x, y, z; };

// Set by the simulator before each thread runs (launches run one at a time, under its lock).
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

// Every thread of the block waits here until all have arrived; a thread that cannot wait (the block
// did not start as fibers, or some threads exited) fails the launch, as divergent barriers are
// undefined on a GPU.
void __syncthreads();
// Ends the launch with CUDA_ERROR_LAUNCH_FAILED, as the device's trap instruction does.
[[noreturn]] void __trap();

// One block's threads run in one host thread, one block at a time: a block's shared memory is
// thread-local storage of the running host thread.
#define __global__
#define __device__ static
#define __shared__ static

// Round-to-nearest intrinsics: host float arithmetic is round-to-nearest and not contracted here.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }

// Blocks run one after another (see above), so a device-wide atomic is a plain read-modify-write, and a fence has
// nothing left to order.
inline unsigned int atomicAdd(unsigned int* address, unsigned int value) {
    unsigned int old = *address;
    *address = old + value;
    return old;
}
inline void __threadfence() {}
