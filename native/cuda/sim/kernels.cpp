// predcode's CUDA kernels compiled for the host: native/cuda/predcode.cu itself, through device.h,
// and a table of its __global__ functions (kernels.inc, listed from the source by build.sh).
#include "device.h"
#include "sim.h"

#include <cstring>
#include <type_traits>
#include <utility>

#include "../predcode.cu"

namespace cusim {
namespace {

template <class F> struct Signature;

template <class... A> struct Signature<void (*)(A...)> {
    static constexpr int arity = sizeof...(A);
    static_assert(arity <= MAX_PARAMS, "kernel has too many parameters for the simulator");

    template <auto F, std::size_t... I> static void call(void** args, std::index_sequence<I...>) {
        F(*static_cast<A*>(args[I])...);
    }

    template <auto F> static void invoke(void** args) { call<F>(args, std::index_sequence_for<A...>{}); }

    template <auto F> static Kernel describe(const char* name) {
        Kernel k{name, arity, {}, {}, &invoke<F>};
        int i = 0;
        ((k.size[i] = sizeof(A), k.pointer[i] = std::is_pointer_v<A>, i++), ...);
        return k;
    }
};

#define KERNEL(name) Signature<decltype(&name)>::describe<&name>(#name),
const Kernel KERNELS[] = {
#include "kernels.inc"
};
#undef KERNEL

}  // namespace

const Kernel* findKernel(const char* name) {
    for (const Kernel& k : KERNELS)
        if (std::strcmp(k.name, name) == 0) return &k;
    return nullptr;
}

}  // namespace cusim
