// A host simulator of the subset of the CUDA driver API and cuBLAS that predcode binds, so the CUDA
// backend runs (and is tested) on machines without a GPU. Compiled against the real cuda.h, so every
// driver signature is checked by the compiler; cuBLAS's few prototypes are declared below.
//
// Model: one device, one primary context. "Device" memory is host memory from the simulator's own
// allocator, with guard bytes after each buffer; freed buffers are poisoned and quarantined for a
// while, so stale pointers fail. Work is executed when it is issued (a stream is
// in order, so issue order is a valid order); stream capture records it into a graph instead, and
// launching the graph replays it. A capture may fork into other streams and join back through events,
// as on a GPU: each node records the nodes it depends on, and a launch runs the graph in an order
// those allow, the recorded one or (cusimSetSchedule, for tests) one that runs independent branches
// in reverse or interleaved, so work that wrongly depends on another branch shows up as different
// results. Kernels are predcode.cu compiled for the host (kernels.cpp).
//
// What the real driver refuses, the simulator refuses too: calls without a current context, launches
// outside the limits, pointers that are not live device memory, synchronising a capturing stream,
// pageable host memory in a capture. It also fails what a GPU would only corrupt: kernel arguments
// that do not match the kernel (predcode ends each argument list with NULL so they can be counted),
// writes past the end of a buffer (guard bytes checked after each kernel), divergent __syncthreads.
// Faults in kernels are sticky for the context, as on a GPU. Tests can inject failures of any call.
#include <cuda.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <csetjmp>
#include <ucontext.h>

#include "device.h"
#include "sim.h"

// Kernels run under the simulator's lock, one launch at a time, so the built-in variables and all
// execution state are plain globals (thread-local ones cost a __tls_get_addr call per use in a
// shared library).
uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace cusim {
// One piece of work on a stream, as a graph records it: a kernel launch with its arguments copied,
// a copy, a 32-bit memset or a cuBLAS GEMM.
struct Node {
    enum Kind { KERNEL, COPY, SET32, GEMM } kind;
    explicit Node(Kind k) : kind(k) {}
    const Kernel* kernel = nullptr;
    std::vector<std::vector<unsigned char>> args;
    unsigned grid[3] = {1, 1, 1}, block[3] = {1, 1, 1};
    void* dst = nullptr;
    const void* src = nullptr;
    std::size_t bytes = 0;
    unsigned value = 0;
    std::vector<long long> gemm;  // the GEMM's integer arguments, see runGemm
    float alpha = 0, beta = 0;
    const float *a = nullptr, *b = nullptr;
    float* c = nullptr;
    std::vector<int> deps;  // in a graph: the indices of the nodes this one waits for (all earlier)
};
}  // namespace cusim

// The driver's handle types (declared, not defined, by cuda.h).
struct CUctx_st { int device; };
struct CUgraph_st { std::vector<cusim::Node> nodes; };
struct CUgraphExec_st { std::vector<cusim::Node> nodes; };
// A capturing stream records into graph; origin is the stream that began the capture (itself, or the
// stream whose event this one waited on to join it); capture numbers the capture (no two the same, so a
// later capture whose graph reuses a freed one's address is not taken for it); tail holds the nodes its
// next node will wait for.
struct CUstream_st { bool capturing = false; bool invalidated = false; CUstreamCaptureMode mode{}; CUgraph graph = nullptr; CUstream origin = nullptr;
                     long capture = 0; std::vector<int> tail; };
// An event recorded in a capture stands for the recording stream's tail there; outside one (capture 0), work has run.
struct CUevent_st { long capture = 0; std::vector<int> deps; };
struct CUmod_st { int unused; };
struct CUfunc_st { const cusim::Kernel* kernel; };

namespace {

using cusim::Kernel;
using cusim::Node;
CUctx_st primary{0};

// ------------------------------------------------------------------ state

std::recursive_mutex lock;
#define LOCKED std::lock_guard<std::recursive_mutex> guard(lock)

bool initialized = false;
int primaryRefs = 0;
thread_local CUcontext current = nullptr;
// A fault in a kernel makes the context unusable until it is destroyed (its primary refs reach 0).
CUresult sticky = CUDA_SUCCESS;
std::string lastError;

constexpr std::size_t GUARD = 256;
constexpr unsigned char GUARD_BYTE = 0xA5, FRESH_BYTE = 0xFF;  // 0xFFFFFFFF is a NaN: uninitialised reads show
struct Allocation { std::size_t bytes; bool host; };
std::map<std::uintptr_t, Allocation> allocations;
std::size_t used = 0, total = 0;

std::set<CUstream> streams;
std::set<CUevent> events;
std::set<CUgraph> graphs;
std::set<CUgraphExec> execs;
std::map<std::string, CUfunc_st*> functions;

struct Injection { std::string call; int skip; CUresult status; };
std::vector<Injection> injections;
std::atomic<long> launches{0};
// Work the host handed to a stream outside any capture (kernels, copies, memsets, GEMMs) and graph launches: what
// a GPU's host side pays for, per call, where a graph launch stands for all its nodes.
std::atomic<long> submissions{0};
// Host waits for a stream (cuStreamSynchronize), counted for tests: a step should wait for the device once.
std::atomic<long> synchronizations{0};
long lastGraphNodes = 0, lastGraphDepth = 0, captures = 0;
std::string lastGraphChain, lastGraphNames;
// The order a graph launch runs independent nodes in: 0 as recorded, 1 the latest recorded first, 2 alternately the earliest and the latest.
int schedule = 0;

CUresult fail(CUresult status, const std::string& message) {
    lastError = message;
    return status;
}

// A fault that breaks the context (sticky, as on a GPU): every later call fails with it.
std::string stickyReason;
CUresult breakContext(CUresult status, const std::string& message) {
    sticky = status;
    stickyReason = message;
    return fail(status, message);
}

// A failure the test asked for, on this call.
bool injected(const char* call, CUresult* status) {
    for (auto it = injections.begin(); it != injections.end(); ++it)
        if (it->call == call) {
            if (it->skip-- > 0) return false;
            *status = it->status;
            injections.erase(it);
            lastError = std::string(call) + ": failure injected by the test";
            return true;
        }
    return false;
}

// The checks every call in a context makes first.
#define ENTER(call)                                                                          \
    LOCKED;                                                                                  \
    if (!initialized) return fail(CUDA_ERROR_NOT_INITIALIZED, call ": cuInit was not called"); \
    if (current == nullptr) return fail(CUDA_ERROR_INVALID_CONTEXT, call ": no context is current on this thread"); \
    if (sticky != CUDA_SUCCESS) return fail(sticky, call ": the context was broken by an earlier fault: " + stickyReason); \
    { CUresult injectedStatus; if (injected(call, &injectedStatus)) return injectedStatus; }

// The live allocation containing [p, p + bytes), or null.
const Allocation* find(const void* p, std::size_t bytes) {
    auto a = reinterpret_cast<std::uintptr_t>(p);
    auto it = allocations.upper_bound(a);
    if (it == allocations.begin()) return nullptr;
    --it;
    if (a < it->first || bytes > it->second.bytes || a - it->first > it->second.bytes - bytes) return nullptr;
    return &it->second;
}

bool device(const void* p, std::size_t bytes) { const Allocation* a = find(p, bytes); return a && !a->host; }

bool guardsIntact(std::string* where) {
    for (auto& [base, a] : allocations) {
        auto* g = reinterpret_cast<const unsigned char*>(base) + a.bytes;
        for (std::size_t i = 0; i < GUARD; i++)
            if (g[i] != GUARD_BYTE) {
                char buf[160];
                std::snprintf(buf, sizeof buf, "write %zu bytes past the end of the %zu-byte buffer at %p", i, a.bytes, reinterpret_cast<void*>(base));
                *where = buf;
                return false;
            }
    }
    return true;
}

void* allocate(std::size_t bytes, bool host) {
    std::size_t size = (bytes + GUARD + 255) / 256 * 256;
    void* p = std::aligned_alloc(256, size);
    if (!p) return nullptr;
    std::memset(p, FRESH_BYTE, bytes);
    std::memset(static_cast<unsigned char*>(p) + bytes, GUARD_BYTE, size - bytes);
    allocations[reinterpret_cast<std::uintptr_t>(p)] = {bytes, host};
    if (!host) used += bytes;  // page-locked host memory is not device memory
    return p;
}

// Freed buffers wait in a quarantine before their memory goes back to malloc, poisoned with NaNs:
// an address stays dead for a while, so a stale pointer (in a graph, say) is caught, not served by
// a new buffer that happens to sit at the same place.
std::vector<std::pair<void*, std::size_t>> quarantine;
std::size_t quarantined = 0;
constexpr std::size_t QUARANTINE_BYTES = 256u << 20;

void release(void* p) {
    auto it = allocations.find(reinterpret_cast<std::uintptr_t>(p));
    std::size_t bytes = it->second.bytes;
    if (!it->second.host) used -= bytes;
    allocations.erase(it);
    std::memset(p, FRESH_BYTE, bytes);
    quarantine.emplace_back(p, bytes);
    quarantined += bytes;
    while (quarantined > QUARANTINE_BYTES || quarantine.size() > 4096) {
        quarantined -= quarantine.front().second;
        std::free(quarantine.front().first);
        quarantine.erase(quarantine.begin());
    }
}

// The stream a call may use: a stream created here (0, the legacy stream, is accepted outside capture).
bool validStream(CUstream s) { return s == nullptr || streams.count(s); }

// ------------------------------------------------------------------ kernel execution

struct KernelFault { std::string what; };

// A GPU thread of a cooperative block runs on a fiber: its own stack, entered once through
// ucontext and from then on switched with _setjmp/_longjmp (no signal-mask system call per switch,
// unlike swapcontext).
// A fiber runs a thread, parks, and runs the next thread it is given, so stacks are made once.
struct Fiber { ucontext_t start; std::jmp_buf env; bool started; int barriers; bool done; };
std::vector<Fiber> fibers;
std::vector<std::vector<char>> stacks;
std::jmp_buf scheduler;
Fiber* running = nullptr;
const Kernel* runningKernel;
void** runningArgs;
std::string fiberFault;
// A launch that failed leaves fibers parked inside its kernel: they restart from scratch next time.
bool fibersInsideAKernel = false;
constexpr std::size_t STACK = 256 * 1024;

// Back to the scheduler; returns when the scheduler resumes this fiber.
__attribute__((noinline)) void park() {
    if (_setjmp(running->env) == 0) _longjmp(scheduler, 1);
}

void fiberMain(int t) {
    for (;;) {
        try {
            runningKernel->invoke(runningArgs);
        } catch (KernelFault& e) {
            if (fiberFault.empty()) fiberFault = e.what;
        }
        fibers[t].done = true;
        park();
    }
}

// Readies fiber t to run a thread from the start (a fiber left inside a failed block starts afresh).
void startFiber(int t, bool afresh) {
    Fiber& f = fibers[t];
    if (afresh || !f.started) {
        if (stacks.size() <= static_cast<std::size_t>(t)) stacks.resize(t + 1);
        if (stacks[t].empty()) stacks[t].resize(STACK);
        getcontext(&f.start);
        f.start.uc_stack.ss_sp = stacks[t].data();
        f.start.uc_stack.ss_size = STACK;
        f.start.uc_link = nullptr;
        makecontext(&f.start, reinterpret_cast<void (*)()>(fiberMain), 1, t);
        f.started = false;
    }
    f.barriers = 0;
    f.done = false;
}

__attribute__((noinline)) void resume(int t) {
    threadIdx = {static_cast<unsigned>(t), 0, 0};
    Fiber& f = fibers[t];
    running = &f;
    if (_setjmp(scheduler) == 0) {
        if (!f.started) {
            f.started = true;
            setcontext(&f.start);
        }
        _longjmp(f.env, 1);
    }
    running = nullptr;
}

// Runs the block's fibers barrier by barrier: first those behind, until every thread waits at the
// same barrier or has exited.
void scheduleBlock(int threads) {
    for (;;) {
        if (!fiberFault.empty()) throw KernelFault{fiberFault};
        int live = 0, low = INT32_MAX, high = -1;
        bool exited = false;
        for (int t = 0; t < threads; t++) {
            if (fibers[t].done) { exited = true; continue; }
            live++;
            low = std::min(low, fibers[t].barriers);
            high = std::max(high, fibers[t].barriers);
        }
        if (live == 0) return;
        if (low == high && exited)
            throw KernelFault{"__syncthreads not reached by every thread of the block (some exited): a divergent barrier"};
        for (int t = 0; t < threads && fiberFault.empty(); t++)
            if (!fibers[t].done && fibers[t].barriers == low) resume(t);
    }
}

void runDirect(int from, int threads) {
    for (int t = from; t < threads; t++) {
        threadIdx = {static_cast<unsigned>(t), 0, 0};
        runningKernel->invoke(runningArgs);
    }
}

// Executes a launch. Thread 0 of the first block runs as a fiber: if it reaches __syncthreads, every
// block runs its threads as fibers; if not, the rest run as plain calls (and a __syncthreads there
// is a divergent barrier).
void execute(const Kernel* k, void** args, const unsigned grid[3], const unsigned block[3]) {
    int threads = static_cast<int>(block[0] * block[1] * block[2]);
    if (fibers.size() < static_cast<std::size_t>(threads)) fibers.resize(threads);
    runningKernel = k;
    runningArgs = args;
    bool afresh = fibersInsideAKernel;
    fibersInsideAKernel = true;  // until this launch completes
    fiberFault.clear();
    gridDim = {grid[0], grid[1], grid[2]};
    blockDim = {block[0], block[1], block[2]};
    int cooperative = -1;
    for (unsigned z = 0; z < grid[2]; z++)
        for (unsigned y = 0; y < grid[1]; y++)
            for (unsigned x = 0; x < grid[0]; x++) {
                blockIdx = {x, y, z};
                if (cooperative == -1) {
                    startFiber(0, afresh);
                    resume(0);
                    if (!fiberFault.empty()) throw KernelFault{fiberFault};
                    cooperative = fibers[0].done ? 0 : 1;
                    if (cooperative) {
                        for (int t = 1; t < threads; t++) startFiber(t, afresh);
                        scheduleBlock(threads);
                    } else {
                        runDirect(1, threads);
                    }
                } else if (cooperative) {
                    for (int t = 0; t < threads; t++) startFiber(t, false);
                    scheduleBlock(threads);
                } else {
                    runDirect(0, threads);
                }
            }
    fibersInsideAKernel = false;
}

// ------------------------------------------------------------------ cuBLAS GEMM (column-major)

// C = alpha op(A) op(B) + beta C per batch, accumulated in float as cuBLAS does; beta 0
// never reads C. Integer arguments: transA, transB, m, n, k, lda, strideA, ldb, strideB, ldc, strideC, batch.
void runGemm(const std::vector<long long>& g, float alpha, const float* A, const float* B, float beta, float* C) {
    bool ta = g[0], tb = g[1];
    long long m = g[2], n = g[3], k = g[4], lda = g[5], sa = g[6], ldb = g[7], sb = g[8], ldc = g[9], sc = g[10], batch = g[11];
    for (long long b = 0; b < batch; b++) {
        const float* a = A + b * sa;
        const float* bb = B + b * sb;
        float* c = C + b * sc;
        // Each C(i, j) sums its k products in order p = 0, 1, ...: as a dot product when A is
        // transposed (both operands contiguous in p), else column by column into a row of sums.
        std::vector<float> sums(m);
        for (long long j = 0; j < n; j++) {
            if (ta) {
                for (long long i = 0; i < m; i++) {
                    float s = 0.f;
                    for (long long p = 0; p < k; p++) s += a[p + i * lda] * (tb ? bb[j + p * ldb] : bb[p + j * ldb]);
                    sums[i] = s;
                }
            } else {
                std::fill(sums.begin(), sums.end(), 0.f);
                for (long long p = 0; p < k; p++) {
                    float bv = tb ? bb[j + p * ldb] : bb[p + j * ldb];
                    const float* col = a + p * lda;
                    for (long long i = 0; i < m; i++) sums[i] += col[i] * bv;
                }
            }
            for (long long i = 0; i < m; i++) {
                float& out = c[i + j * ldc];
                out = beta == 0.f ? alpha * sums[i] : alpha * sums[i] + beta * out;
            }
        }
    }
}

// ------------------------------------------------------------------ issuing work

std::string pointerName(const void* p) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%p", p);
    return buf;
}

CUresult runNode(const Node& n) {
    switch (n.kind) {
        case Node::KERNEL: {
            for (int i = 0; i < n.kernel->arity; i++)
                if (n.kernel->pointer[i]) {
                    void* p = *reinterpret_cast<void* const*>(n.args[i].data());
                    if (p != nullptr && !find(p, 0))
                        return breakContext(CUDA_ERROR_ILLEGAL_ADDRESS, std::string(n.kernel->name) + ": argument " + std::to_string(i) + " (" + pointerName(p)
                                    + ") is not in any live allocation (freed, or never allocated)");
                }
            void* args[cusim::MAX_PARAMS];
            for (int i = 0; i < n.kernel->arity; i++) args[i] = const_cast<unsigned char*>(n.args[i].data());
            try {
                execute(n.kernel, args, n.grid, n.block);
            } catch (KernelFault& e) {
                return breakContext(CUDA_ERROR_LAUNCH_FAILED, std::string(n.kernel->name) + ": " + e.what);
            }
            launches++;
            std::string where;
            if (!guardsIntact(&where)) return breakContext(CUDA_ERROR_ILLEGAL_ADDRESS, std::string(n.kernel->name) + ": " + where);
            return CUDA_SUCCESS;
        }
        case Node::COPY:
            if (!find(n.dst, n.bytes) || !find(n.src, n.bytes)) return breakContext(CUDA_ERROR_ILLEGAL_ADDRESS, "memcpy node: a buffer was freed after capture");
            std::memmove(n.dst, n.src, n.bytes);
            return CUDA_SUCCESS;
        case Node::SET32: {
            if (!find(n.dst, n.bytes)) return breakContext(CUDA_ERROR_ILLEGAL_ADDRESS, "memset node: the buffer was freed after capture");
            auto* d = static_cast<unsigned*>(n.dst);
            for (std::size_t i = 0; i < n.bytes / 4; i++) d[i] = n.value;
            return CUDA_SUCCESS;
        }
        case Node::GEMM:
            if (!find(n.c, 0) || (n.gemm[4] > 0 && (!find(n.a, 0) || !find(n.b, 0))))
                return breakContext(CUDA_ERROR_ILLEGAL_ADDRESS, "GEMM node: a matrix was freed after capture");
            runGemm(n.gemm, n.alpha, n.a, n.b, n.beta, n.c);
            return CUDA_SUCCESS;
    }
    return CUDA_ERROR_UNKNOWN;
}

// Work on a stream: recorded into its graph when it is capturing (after the stream's tail), else done now.
CUresult issue(CUstream s, Node&& n) {
    if (s != nullptr && s->capturing) {
        if (!s->invalidated) {
            n.deps = s->tail;
            s->tail = {static_cast<int>(s->graph->nodes.size())};
            s->graph->nodes.push_back(std::move(n));
        }
        return CUDA_SUCCESS;
    }
    submissions++;
    return runNode(n);
}

// Runs a graph's nodes in an order their dependencies allow, chosen by the schedule.
CUresult runGraph(const std::vector<Node>& nodes) {
    std::vector<int> waiting(nodes.size());
    std::vector<std::vector<int>> dependents(nodes.size());
    for (std::size_t i = 0; i < nodes.size(); i++) {
        waiting[i] = static_cast<int>(nodes[i].deps.size());
        for (int d : nodes[i].deps) dependents[d].push_back(static_cast<int>(i));
    }
    std::set<int> ready;
    for (std::size_t i = 0; i < nodes.size(); i++) if (waiting[i] == 0) ready.insert(static_cast<int>(i));
    for (bool earliest = schedule != 1; !ready.empty(); earliest = schedule == 2 ? !earliest : schedule != 1) {
        int i = earliest ? *ready.begin() : *ready.rbegin();
        ready.erase(i);
        CUresult r = runNode(nodes[i]);
        if (r != CUDA_SUCCESS) return r;
        for (int j : dependents[i]) if (--waiting[j] == 0) ready.insert(j);
    }
    return CUDA_SUCCESS;
}

// The most nodes on one chain of dependencies (what a GPU must run one after another), and into names one such
// chain's nodes, named (kernel name, copy, memset, gemm), first to last.
// A node's name in the chains and lists the tests read: its kernel's, or what the node does.
std::string nodeName(const Node& n) {
    return n.kind == Node::KERNEL ? n.kernel->name : n.kind == Node::COPY ? "copy" : n.kind == Node::SET32 ? "memset" : "gemm";
}

// Every node's name, in the order the graph recorded them, space-separated.
std::string allNames(const std::vector<Node>& nodes) {
    std::string names;
    for (const Node& n : nodes) names += (names.empty() ? "" : " ") + nodeName(n);
    return names;
}

long longestChain(const std::vector<Node>& nodes, std::string& names) {
    std::vector<long> longest(nodes.size());
    std::vector<int> before(nodes.size(), -1);
    int last = -1;
    for (std::size_t i = 0; i < nodes.size(); i++) {
        longest[i] = 1;
        for (int d : nodes[i].deps)
            if (longest[d] + 1 > longest[i]) longest[i] = longest[d] + 1, before[i] = d;
        if (last < 0 || longest[i] > longest[last]) last = static_cast<int>(i);
    }
    std::vector<std::string> chain;
    for (int i = last; i >= 0; i = before[i]) chain.push_back(nodeName(nodes[i]));
    names.clear();
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) names += (names.empty() ? "" : " ") + *it;
    return last < 0 ? 0 : longest[last];
}

// The streams that joined s's capture (s is its origin), s excluded.
std::vector<CUstream> joined(CUstream s) {
    std::vector<CUstream> out;
    for (CUstream t : streams) if (t != s && t->capturing && t->capture == s->capture) out.push_back(t);
    return out;
}

// Ends the part of other streams in s's capture.
void leaveCapture(CUstream s) {
    for (CUstream t : joined(s)) {
        t->capturing = false;
        t->graph = nullptr;
        t->origin = nullptr;
        t->tail.clear();
    }
}

// A call that may not be made while the stream is capturing: it also invalidates the capture.
CUresult refuseInCapture(CUstream s, const char* call) {
    s->invalidated = true;
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, std::string(call) + ": not permitted while the stream is capturing");
}

bool anyGlobalCapture() {
    for (CUstream s : streams)
        if (s->capturing && s->mode != CU_STREAM_CAPTURE_MODE_RELAXED) return true;
    return false;
}

}  // namespace

// ====================================================================== the driver API

extern "C" {

CUresult CUDAAPI cuGetErrorName(CUresult error, const char** pStr) {
    switch (error) {
#define NAME(e) case e: *pStr = #e; return CUDA_SUCCESS;
        NAME(CUDA_SUCCESS) NAME(CUDA_ERROR_INVALID_VALUE) NAME(CUDA_ERROR_OUT_OF_MEMORY) NAME(CUDA_ERROR_NOT_INITIALIZED)
        NAME(CUDA_ERROR_INVALID_IMAGE) NAME(CUDA_ERROR_INVALID_CONTEXT) NAME(CUDA_ERROR_INVALID_HANDLE) NAME(CUDA_ERROR_NOT_FOUND)
        NAME(CUDA_ERROR_ILLEGAL_ADDRESS) NAME(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES) NAME(CUDA_ERROR_LAUNCH_FAILED) NAME(CUDA_ERROR_ILLEGAL_STATE)
        NAME(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED) NAME(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED) NAME(CUDA_ERROR_NO_DEVICE)
        NAME(CUDA_ERROR_INVALID_DEVICE) NAME(CUDA_ERROR_UNKNOWN) NAME(CUDA_ERROR_STREAM_CAPTURE_UNMATCHED) NAME(CUDA_ERROR_STREAM_CAPTURE_UNJOINED)
        NAME(CUDA_ERROR_STREAM_CAPTURE_ISOLATION) NAME(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT)
#undef NAME
        default: *pStr = nullptr; return CUDA_ERROR_INVALID_VALUE;
    }
}

CUresult CUDAAPI cuGetErrorString(CUresult error, const char** pStr) { return cuGetErrorName(error, pStr); }

CUresult CUDAAPI cuInit(unsigned int flags) {
    LOCKED;
    if (flags != 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuInit: flags must be 0");
    if (!initialized) {
        const char* mem = std::getenv("PREDCODE_CUDASIM_MEMORY");
        total = mem ? std::strtoull(mem, nullptr, 10) : (8ull << 30);
        initialized = true;
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDriverGetVersion(int* version) {
    if (!version) return CUDA_ERROR_INVALID_VALUE;
    *version = CUDA_VERSION;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetCount(int* count) {
    LOCKED;
    if (!initialized) return fail(CUDA_ERROR_NOT_INITIALIZED, "cuDeviceGetCount: cuInit was not called");
    *count = 1;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGet(CUdevice* device, int ordinal) {
    LOCKED;
    if (!initialized) return fail(CUDA_ERROR_NOT_INITIALIZED, "cuDeviceGet: cuInit was not called");
    if (ordinal != 0) return fail(CUDA_ERROR_INVALID_DEVICE, "cuDeviceGet: the simulator has one device, 0");
    *device = 0;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetName(char* name, int len, CUdevice dev) {
    if (dev != 0 || !name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    std::snprintf(name, len, "predcode CUDA simulator (host)");
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext* ctx, CUdevice dev) {
    LOCKED;
    if (!initialized) return fail(CUDA_ERROR_NOT_INITIALIZED, "cuDevicePrimaryCtxRetain: cuInit was not called");
    if (dev != 0) return fail(CUDA_ERROR_INVALID_DEVICE, "cuDevicePrimaryCtxRetain: no such device");
    { CUresult s; if (injected("cuDevicePrimaryCtxRetain", &s)) return s; }
    primaryRefs++;
    *ctx = &primary;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice dev) {
    LOCKED;
    if (dev != 0 || primaryRefs == 0) return fail(CUDA_ERROR_INVALID_CONTEXT, "cuDevicePrimaryCtxRelease: not retained");
    if (--primaryRefs == 0) sticky = CUDA_SUCCESS;  // the context is destroyed; a new one starts clean
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSetCurrent(CUcontext ctx) {
    LOCKED;
    if (ctx != nullptr && (ctx != &primary || primaryRefs == 0)) return fail(CUDA_ERROR_INVALID_CONTEXT, "cuCtxSetCurrent: not a live context");
    current = ctx;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemGetInfo(size_t* free, size_t* totalBytes) {
    ENTER("cuMemGetInfo");
    *free = total - used;
    *totalBytes = total;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemAlloc(CUdeviceptr* dptr, size_t bytes) {
    ENTER("cuMemAlloc");
    if (bytes == 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemAlloc: 0 bytes");
    if (anyGlobalCapture()) return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuMemAlloc: not permitted during a global-mode capture");
    if (bytes > total - used) return fail(CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc: " + std::to_string(bytes) + " bytes, " + std::to_string(total - used) + " free");
    void* p = allocate(bytes, false);
    if (!p) return fail(CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc: host allocation failed");
    *dptr = reinterpret_cast<CUdeviceptr>(p);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemFree(CUdeviceptr dptr) {
    ENTER("cuMemFree");
    void* p = reinterpret_cast<void*>(dptr);
    auto it = allocations.find(dptr);
    if (it == allocations.end() || it->second.host) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemFree: " + pointerName(p) + " is not a live device allocation");
    if (anyGlobalCapture()) return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuMemFree: not permitted during a global-mode capture");
    release(p);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemAllocHost(void** pp, size_t bytes) {
    ENTER("cuMemAllocHost");
    void* p = allocate(bytes == 0 ? 1 : bytes, true);
    if (!p) return fail(CUDA_ERROR_OUT_OF_MEMORY, "cuMemAllocHost: host allocation failed");
    *pp = p;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemFreeHost(void* p) {
    ENTER("cuMemFreeHost");
    auto it = allocations.find(reinterpret_cast<std::uintptr_t>(p));
    if (it == allocations.end() || !it->second.host) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemFreeHost: not page-locked memory from cuMemAllocHost");
    release(p);
    return CUDA_SUCCESS;
}

static CUresult copy(const char* call, void* dst, const void* src, size_t bytes, CUstream s, bool dstDevice, bool srcDevice) {
    if (!validStream(s)) return fail(CUDA_ERROR_INVALID_HANDLE, std::string(call) + ": not a stream");
    if (dstDevice && !device(dst, bytes)) return fail(CUDA_ERROR_INVALID_VALUE, std::string(call) + ": destination " + pointerName(dst) + " + " + std::to_string(bytes) + " bytes is not inside one device allocation");
    if (srcDevice && !device(src, bytes)) return fail(CUDA_ERROR_INVALID_VALUE, std::string(call) + ": source " + pointerName(src) + " + " + std::to_string(bytes) + " bytes is not inside one device allocation");
    bool pinned = (dstDevice || find(dst, bytes)) && (srcDevice || find(src, bytes));
    if (s != nullptr && s->capturing && !pinned) return refuseInCapture(s, call);  // pageable host memory cannot be captured
    if (s != nullptr && s->capturing) {
        Node n(Node::COPY);
        n.dst = dst;
        n.src = src;
        n.bytes = bytes;
        return issue(s, std::move(n));
    }
    submissions++;
    std::memmove(dst, src, bytes);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemcpyHtoDAsync(CUdeviceptr dst, const void* src, size_t bytes, CUstream s) {
    ENTER("cuMemcpyHtoDAsync");
    return copy("cuMemcpyHtoDAsync", reinterpret_cast<void*>(dst), src, bytes, s, true, false);
}

CUresult CUDAAPI cuMemcpyDtoHAsync(void* dst, CUdeviceptr src, size_t bytes, CUstream s) {
    ENTER("cuMemcpyDtoHAsync");
    return copy("cuMemcpyDtoHAsync", dst, reinterpret_cast<const void*>(src), bytes, s, false, true);
}

CUresult CUDAAPI cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s) {
    ENTER("cuMemcpyDtoDAsync");
    return copy("cuMemcpyDtoDAsync", reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), bytes, s, true, true);
}

CUresult CUDAAPI cuMemsetD32Async(CUdeviceptr dst, unsigned int value, size_t count, CUstream s) {
    ENTER("cuMemsetD32Async");
    if (!validStream(s)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuMemsetD32Async: not a stream");
    if (dst % 4 != 0 || !device(reinterpret_cast<void*>(dst), count * 4))
        return fail(CUDA_ERROR_INVALID_VALUE, "cuMemsetD32Async: " + std::to_string(count) + " words at " + pointerName(reinterpret_cast<void*>(dst)) + " are not inside one device allocation");
    Node n(Node::SET32);
    n.dst = reinterpret_cast<void*>(dst);
    n.bytes = count * 4;
    n.value = value;
    return issue(s, std::move(n));
}

CUresult CUDAAPI cuModuleLoadData(CUmodule* module, const void* image) {
    ENTER("cuModuleLoadData");
    std::uint32_t magic;
    std::memcpy(&magic, image, 4);
    if (magic != 0xBA55ED50u) return fail(CUDA_ERROR_INVALID_IMAGE, "cuModuleLoadData: not a fatbin (the simulator runs predcode.cu's host build, but still checks the image)");
    static CUmod_st module_;
    *module = &module_;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleGetFunction(CUfunction* f, CUmodule, const char* name) {
    ENTER("cuModuleGetFunction");
    const Kernel* k = cusim::findKernel(name);
    if (!k) return fail(CUDA_ERROR_NOT_FOUND, std::string("cuModuleGetFunction: no kernel ") + name + " in predcode.cu");
    CUfunc_st*& fn = functions[name];
    if (!fn) fn = new CUfunc_st{k};
    *f = fn;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                                unsigned sharedMemBytes, CUstream s, void** params, void** extra) {
    ENTER("cuLaunchKernel");
    if (f == nullptr) return fail(CUDA_ERROR_INVALID_HANDLE, "cuLaunchKernel: null function");
    const Kernel* k = f->kernel;
    std::string name = k->name;
    if (!validStream(s)) return fail(CUDA_ERROR_INVALID_HANDLE, name + ": not a stream");
    if (gx == 0 || gy == 0 || gz == 0 || gx > 0x7fffffffu || gy > 65535 || gz > 65535)
        return fail(CUDA_ERROR_INVALID_VALUE, name + ": grid " + std::to_string(gx) + "x" + std::to_string(gy) + "x" + std::to_string(gz) + " is outside the device's limits");
    if (bx == 0 || by == 0 || bz == 0 || bx > 1024 || by > 1024 || bz > 64 || static_cast<unsigned long long>(bx) * by * bz > 1024)
        return fail(CUDA_ERROR_INVALID_VALUE, name + ": block " + std::to_string(bx) + "x" + std::to_string(by) + "x" + std::to_string(bz) + " is outside the device's limits");
    if (sharedMemBytes > 48 * 1024) return fail(CUDA_ERROR_INVALID_VALUE, name + ": too much dynamic shared memory");
    if (extra != nullptr) return fail(CUDA_ERROR_INVALID_VALUE, name + ": the simulator supports kernelParams only, not extra");
    if (k->arity > 0 && params == nullptr) return fail(CUDA_ERROR_INVALID_VALUE, name + ": no kernelParams");
    int given = 0;
    while (given <= k->arity && params[given] != nullptr) given++;
    if (given != k->arity)
        return fail(CUDA_ERROR_INVALID_VALUE, name + ": " + (given > k->arity ? "more than " + std::to_string(k->arity) : std::to_string(given))
                    + " arguments given (the list ends with NULL), the kernel takes " + std::to_string(k->arity));
    Node n(Node::KERNEL);
    n.kernel = k;
    for (int i = 0; i < k->arity; i++) {
        auto* p = static_cast<unsigned char*>(params[i]);
        n.args.emplace_back(p, p + k->size[i]);  // copied now, as the driver does
    }
    unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
    std::copy(grid, grid + 3, n.grid);
    std::copy(block, block + 3, n.block);
    return issue(s, std::move(n));
}

CUresult CUDAAPI cuStreamCreate(CUstream* s, unsigned int flags) {
    ENTER("cuStreamCreate");
    if (flags > 1) return fail(CUDA_ERROR_INVALID_VALUE, "cuStreamCreate: unknown flags");
    *s = new CUstream_st();
    streams.insert(*s);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamDestroy(CUstream s) {
    ENTER("cuStreamDestroy");
    if (!streams.count(s)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamDestroy: not a stream");
    if (s->capturing && s->origin == s) {
        leaveCapture(s);
        delete s->graph;
    }
    streams.erase(s);
    delete s;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamSynchronize(CUstream s) {
    ENTER("cuStreamSynchronize");
    if (!validStream(s)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamSynchronize: not a stream");
    if (s != nullptr && s->capturing) return refuseInCapture(s, "cuStreamSynchronize");
    if (anyGlobalCapture()) return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuStreamSynchronize: not permitted during a global-mode capture");
    synchronizations++;
    return CUDA_SUCCESS;  // work ran when it was issued
}

CUresult CUDAAPI cuEventCreate(CUevent* e, unsigned int flags) {
    ENTER("cuEventCreate");
    if (flags & ~0xFu) return fail(CUDA_ERROR_INVALID_VALUE, "cuEventCreate: unknown flags");
    *e = new CUevent_st();
    events.insert(*e);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventDestroy(CUevent e) {
    ENTER("cuEventDestroy");
    if (!events.erase(e)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventDestroy: not an event");
    delete e;
    return CUDA_SUCCESS;
}

// In a capture the event stands for the stream's tail (what later waits on it depends on); outside one, the work has run.
CUresult CUDAAPI cuEventRecord(CUevent e, CUstream s) {
    ENTER("cuEventRecord");
    if (!events.count(e)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventRecord: not an event");
    if (!validStream(s)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventRecord: not a stream");
    if (s != nullptr && s->capturing) {
        e->capture = s->capture;
        e->deps = s->tail;
    } else {
        e->capture = 0;
        e->deps.clear();
    }
    return CUDA_SUCCESS;
}

// Waiting on an event recorded in a capture joins that capture (a fork), or adds the event's nodes to the stream's tail (a join).
CUresult CUDAAPI cuStreamWaitEvent(CUstream s, CUevent e, unsigned int flags) {
    ENTER("cuStreamWaitEvent");
    if (!events.count(e)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamWaitEvent: not an event");
    if (!validStream(s)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamWaitEvent: not a stream");
    if (flags != 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuStreamWaitEvent: flags must be 0");
    CUstream live = nullptr;  // a stream still in the capture the event was recorded in
    for (CUstream t : streams) if (e->capture != 0 && t->capturing && t->capture == e->capture) live = t;
    bool capturing = s != nullptr && s->capturing;
    if (live == nullptr) {
        if (capturing) {
            s->invalidated = true;
            return fail(CUDA_ERROR_STREAM_CAPTURE_ISOLATION, "cuStreamWaitEvent: a capturing stream waited on an event recorded outside its capture");
        }
        return CUDA_SUCCESS;  // the recorded work has run
    }
    if (!capturing) {
        if (s == nullptr) return fail(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, "cuStreamWaitEvent: the legacy stream cannot join a capture");
        s->capturing = true;
        s->invalidated = false;
        s->mode = live->mode;
        s->graph = live->graph;
        s->origin = live->origin;
        s->capture = e->capture;
        s->tail = e->deps;
        return CUDA_SUCCESS;
    }
    if (s->capture != e->capture) {
        s->invalidated = true;
        return fail(CUDA_ERROR_STREAM_CAPTURE_ISOLATION, "cuStreamWaitEvent: an event of another capture");
    }
    for (int d : e->deps) if (std::find(s->tail.begin(), s->tail.end(), d) == s->tail.end()) s->tail.push_back(d);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamBeginCapture(CUstream s, CUstreamCaptureMode mode) {
    ENTER("cuStreamBeginCapture");
    if (s == nullptr || !streams.count(s)) return fail(CUDA_ERROR_INVALID_VALUE, "cuStreamBeginCapture: the legacy stream cannot be captured");
    if (s->capturing) return fail(CUDA_ERROR_ILLEGAL_STATE, "cuStreamBeginCapture: the stream is already capturing");
    s->capturing = true;
    s->invalidated = false;
    s->mode = mode;
    s->graph = new CUgraph_st();
    s->origin = s;
    s->capture = ++captures;
    s->tail.clear();
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamEndCapture(CUstream s, CUgraph* graph) {
    ENTER("cuStreamEndCapture");
    if (s == nullptr || !streams.count(s)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamEndCapture: not a stream");
    if (!s->capturing) return fail(CUDA_ERROR_ILLEGAL_STATE, "cuStreamEndCapture: the stream is not capturing");
    if (s->origin != s) return fail(CUDA_ERROR_STREAM_CAPTURE_UNMATCHED, "cuStreamEndCapture: the stream joined a capture another stream began");
    // Every stream that joined must have been joined back: its last work is something s's tail waits for.
    std::set<int> reached(s->tail.begin(), s->tail.end());
    for (int i = static_cast<int>(s->graph->nodes.size()) - 1; i >= 0; i--)
        if (reached.count(i)) reached.insert(s->graph->nodes[i].deps.begin(), s->graph->nodes[i].deps.end());
    bool unjoined = false;
    for (CUstream t : joined(s)) {
        s->invalidated |= t->invalidated;
        for (int i : t->tail) unjoined |= !reached.count(i);
    }
    leaveCapture(s);
    s->capturing = false;
    s->origin = nullptr;
    s->tail.clear();
    if (unjoined) {
        delete s->graph;
        s->graph = nullptr;
        *graph = nullptr;
        return fail(CUDA_ERROR_STREAM_CAPTURE_UNJOINED, "cuStreamEndCapture: a stream that joined the capture was not joined back (its last work is not waited for)");
    }
    if (s->invalidated) {
        delete s->graph;
        s->graph = nullptr;
        *graph = nullptr;
        return fail(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "cuStreamEndCapture: the capture was invalidated by an unsupported call");
    }
    graphs.insert(s->graph);
    *graph = s->graph;
    s->graph = nullptr;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphInstantiate(CUgraphExec* exec, CUgraph graph, unsigned long long flags) {
    ENTER("cuGraphInstantiateWithFlags");
    if (!graphs.count(graph)) return fail(CUDA_ERROR_INVALID_VALUE, "cuGraphInstantiateWithFlags: not a graph");
    if (flags & ~static_cast<unsigned long long>(CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH))
        return fail(CUDA_ERROR_INVALID_VALUE, "cuGraphInstantiateWithFlags: flags the simulator does not model");
    *exec = new CUgraphExec_st{graph->nodes};
    execs.insert(*exec);
    lastGraphNodes = static_cast<long>(graph->nodes.size());
    lastGraphDepth = longestChain(graph->nodes, lastGraphChain);
    lastGraphNames = allNames(graph->nodes);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphLaunch(CUgraphExec exec, CUstream s) {
    ENTER("cuGraphLaunch");
    if (!execs.count(exec)) return fail(CUDA_ERROR_INVALID_VALUE, "cuGraphLaunch: not an executable graph");
    if (!validStream(s)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuGraphLaunch: not a stream");
    if (s != nullptr && s->capturing) {  // a child graph: its nodes after the stream's tail, its sinks the new tail
        if (s->invalidated) return CUDA_SUCCESS;
        int base = static_cast<int>(s->graph->nodes.size());
        std::vector<bool> waitedFor(exec->nodes.size());
        for (const Node& n : exec->nodes) {
            Node copy = n;
            for (int& d : copy.deps) { waitedFor[d] = true; d += base; }
            if (n.deps.empty()) copy.deps = s->tail;
            s->graph->nodes.push_back(std::move(copy));
        }
        if (!exec->nodes.empty()) s->tail.clear();
        for (std::size_t i = 0; i < exec->nodes.size(); i++) if (!waitedFor[i]) s->tail.push_back(base + static_cast<int>(i));
        return CUDA_SUCCESS;
    }
    submissions++;
    return runGraph(exec->nodes);
}

CUresult CUDAAPI cuGraphExecDestroy(CUgraphExec exec) {
    ENTER("cuGraphExecDestroy");
    if (!execs.erase(exec)) return fail(CUDA_ERROR_INVALID_VALUE, "cuGraphExecDestroy: not an executable graph");
    delete exec;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphDestroy(CUgraph graph) {
    ENTER("cuGraphDestroy");
    if (!graphs.erase(graph)) return fail(CUDA_ERROR_INVALID_VALUE, "cuGraphDestroy: not a graph");
    delete graph;
    return CUDA_SUCCESS;
}

// ====================================================================== cuBLAS (the prototypes of cublas_api.h)

typedef enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_NOT_INITIALIZED = 1, CUBLAS_STATUS_ALLOC_FAILED = 3, CUBLAS_STATUS_INVALID_VALUE = 7,
               CUBLAS_STATUS_EXECUTION_FAILED = 13 } cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 } cublasOperation_t;
struct cublasContext { CUstream stream; void* workspace; size_t workspaceBytes; };
typedef cublasContext* cublasHandle_t;

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
    LOCKED;
    if (!initialized || current == nullptr) { lastError = "cublasCreate: no current context"; return CUBLAS_STATUS_NOT_INITIALIZED; }
    { CUresult s; if (injected("cublasCreate_v2", &s)) return CUBLAS_STATUS_ALLOC_FAILED; }
    *handle = new cublasContext{nullptr, nullptr, 0};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
    LOCKED;
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

// Setting the stream resets the workspace to cuBLAS's own, as the real library documents.
cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, CUstream stream) {
    LOCKED;
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!validStream(stream)) { lastError = "cublasSetStream: not a stream"; return CUBLAS_STATUS_INVALID_VALUE; }
    handle->stream = stream;
    handle->workspace = nullptr;
    handle->workspaceBytes = 0;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, size_t bytes) {
    LOCKED;
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (bytes > 0 && (!device(workspace, bytes) || reinterpret_cast<std::uintptr_t>(workspace) % 256 != 0)) {
        lastError = "cublasSetWorkspace: not 256-byte aligned device memory of that size";
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    handle->workspace = workspace;
    handle->workspaceBytes = bytes;
    return CUBLAS_STATUS_SUCCESS;
}

// The extent in floats of a column-major rows x cols matrix with leading dimension ld, batch times at stride.
static std::size_t extent(long long rows, long long cols, long long ld, long long stride, long long batch) {
    if (rows == 0 || cols == 0 || batch == 0) return 0;
    return static_cast<std::size_t>((batch - 1) * stride + (cols - 1) * ld + rows);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                                         const float* alpha, const float* A, int lda, long long strideA, const float* B, int ldb,
                                         long long strideB, const float* beta, float* C, int ldc, long long strideC, int batch) {
    LOCKED;
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (sticky != CUDA_SUCCESS) return CUBLAS_STATUS_EXECUTION_FAILED;
    { CUresult s; if (injected("cublasSgemmStridedBatched", &s)) return CUBLAS_STATUS_EXECUTION_FAILED; }
    bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    long long aRows = ta ? k : m, aCols = ta ? m : k, bRows = tb ? n : k, bCols = tb ? k : n;
    auto bad = [&](const std::string& why) { lastError = "cublasSgemmStridedBatched: " + why; return CUBLAS_STATUS_INVALID_VALUE; };
    if (m < 0 || n < 0 || k < 0 || batch < 0) return bad("negative size");
    if (lda < std::max(1LL, aRows) || ldb < std::max(1LL, bRows) || ldc < std::max(1, m)) return bad("leading dimension smaller than the rows");
    if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
    bool readsA = k > 0 && *alpha != 0.f;
    if (readsA && !device(A, 4 * extent(aRows, aCols, lda, strideA, batch))) return bad("A's extent is outside its device allocation");
    if (readsA && !device(B, 4 * extent(bRows, bCols, ldb, strideB, batch))) return bad("B's extent is outside its device allocation");
    if (!device(C, 4 * extent(m, n, ldc, strideC, batch))) return bad("C's extent is outside its device allocation");
    Node node(Node::GEMM);
    node.gemm = {ta, tb, m, n, readsA ? k : 0, lda, strideA, ldb, strideB, ldc, strideC, batch};
    node.alpha = *alpha;  // host pointer mode: read at the call, as cuBLAS does
    node.beta = *beta;
    node.a = A;
    node.b = B;
    node.c = C;
    return issue(handle->stream, std::move(node)) == CUDA_SUCCESS ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

// ====================================================================== the simulator's own calls (tests)

// Marks this library as the simulator (the backend names itself "simulated" when it finds this).
const char* cusimVersion() { return "predcode CUDA simulator 1"; }

// The details of the last failure: what was wrong, where (the driver gives only a status).
const char* cusimLastError() { return lastError.c_str(); }

// Makes the call named fail with the status, once, after it has succeeded skip more times.
void cusimInjectFailure(const char* call, int skip, int status) {
    LOCKED;
    injections.push_back({call, skip, static_cast<CUresult>(status)});
}

void cusimClearFailures() {
    LOCKED;
    injections.clear();
}

// Kernel executions so far (graph replays included): tests see whether work ran.
long cusimLaunches() { return launches.load(); }

// Submissions from the host outside captures so far (see submissions): a step's host-side calls, as a difference.
long cusimSubmissions() { return submissions.load(); }

// Host waits for a stream so far (see synchronizations), as a difference.
long cusimSynchronizations() { return synchronizations.load(); }

// Nodes of the graph instantiated last (kernels, copies, memsets, GEMMs): how much one replay launches.
long cusimLastGraphNodes() {
    LOCKED;
    return lastGraphNodes;
}

// The most nodes on one chain of dependencies in the graph instantiated last: how many run one after another.
long cusimLastGraphDepth() {
    LOCKED;
    return lastGraphDepth;
}

// The named nodes of one longest chain in the graph instantiated last, space-separated (bench/gpu/GraphNodes.java).
const char* cusimLastGraphChain() {
    LOCKED;
    return lastGraphChain.c_str();
}

// The names of every node in the graph instantiated last, in recorded order, space-separated: what one replay runs.
const char* cusimLastGraphNames() {
    LOCKED;
    return lastGraphNames.c_str();
}

// How later graph launches order independent nodes: 0 as recorded, 1 the latest recorded first, 2 alternating (tests).
void cusimSetSchedule(int mode) {
    LOCKED;
    schedule = mode;
}

// Device bytes allocated now.
long long cusimBytesInUse() {
    LOCKED;
    return static_cast<long long>(used);
}

}  // extern "C"

void __syncthreads() {
    if (running == nullptr)
        throw KernelFault{"__syncthreads reached by only some threads of the block (thread 0 finished without it): a divergent barrier"};
    running->barriers++;
    park();
}

void __trap() { throw KernelFault{"trap (an argument the kernel does not accept)"}; }
