// What the host-compiled kernels (kernels.cpp) tell the simulated driver (simulator.cpp).
#pragma once
#include <cstddef>

namespace cusim {

constexpr int MAX_PARAMS = 32;

// A kernel of predcode.cu compiled for the host: its parameters' sizes and which are pointers (so a
// launch's arguments can be copied into a graph and its pointers checked), and a call that reads the
// arguments from a cuLaunchKernel-style array.
struct Kernel {
    const char* name;
    int arity;
    std::size_t size[MAX_PARAMS];
    bool pointer[MAX_PARAMS];
    void (*invoke)(void** args);
};

// The kernel of that name, or null.
const Kernel* findKernel(const char* name);

}  // namespace cusim
