package io.predcode.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/** The CUDA driver API (libcuda.so.1) through FFM: the calls the backend needs, each checked. */
final class CudaDriver {
    private final MethodHandle cuInit, cuDriverGetVersion, cuDeviceGetCount, cuDeviceGet, cuDeviceGetName, cuPrimaryCtxRetain, cuPrimaryCtxRelease, cuCtxSetCurrent,
            cuMemAlloc, cuMemFree, cuMemAllocHost, cuMemFreeHost, cuMemcpyHtoDAsync, cuMemcpyDtoHAsync, cuMemcpyDtoDAsync, cuMemsetD32Async,
            cuModuleLoadData, cuModuleGetFunction, cuLaunchKernel, cuStreamCreate, cuStreamDestroy, cuStreamSynchronize, cuGetErrorName;
    /** Stream capture and graphs (CUDA 11.4+); null where the driver lacks them, and graphs are then off. */
    private final MethodHandle cuStreamBeginCapture, cuStreamEndCapture, cuGraphInstantiate, cuGraphLaunch, cuGraphExecDestroy, cuGraphDestroy;
    private final MethodHandle cuMemGetInfo;
    /** Events, for forking a stream's work into others and joining it back (see CudaBackend's branches); null where the driver lacks one. */
    private final MethodHandle cuEventCreate, cuEventDestroy, cuEventRecord, cuStreamWaitEvent;
    /** The host simulator's own calls (native/cuda/sim); null on a real driver. */
    private final MethodHandle simulatorVersion, simulatorLastError;
    final Path path;

    CudaDriver(Path path) {
        this.path = path;
        Native lib = new Native(path);
        cuInit = lib.fn("cuInit", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        cuDriverGetVersion = lib.fn("cuDriverGetVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuDeviceGetCount = lib.fn("cuDeviceGetCount", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuDeviceGet = lib.fn("cuDeviceGet", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuDeviceGetName = lib.fn("cuDeviceGetName", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        cuPrimaryCtxRetain = lib.fn("cuDevicePrimaryCtxRetain", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuPrimaryCtxRelease = lib.fn("cuDevicePrimaryCtxRelease_v2", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        cuCtxSetCurrent = lib.fn("cuCtxSetCurrent", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        cuMemAlloc = lib.fn("cuMemAlloc_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        cuMemFree = lib.fn("cuMemFree_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        cuMemAllocHost = lib.fn("cuMemAllocHost_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        cuMemFreeHost = lib.fn("cuMemFreeHost", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        cuMemcpyHtoDAsync = lib.fn("cuMemcpyHtoDAsync_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG, JAVA_LONG));
        cuMemcpyDtoHAsync = lib.fn("cuMemcpyDtoHAsync_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        cuMemcpyDtoDAsync = lib.fn("cuMemcpyDtoDAsync_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        cuMemsetD32Async = lib.fn("cuMemsetD32Async", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG));
        cuModuleLoadData = lib.fn("cuModuleLoadData", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cuModuleGetFunction = lib.fn("cuModuleGetFunction", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS));
        cuLaunchKernel = lib.fn("cuLaunchKernel", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS));
        cuStreamCreate = lib.fn("cuStreamCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuStreamDestroy = lib.fn("cuStreamDestroy_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        cuStreamSynchronize = lib.fn("cuStreamSynchronize", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        cuGetErrorName = lib.fn("cuGetErrorName", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        cuStreamBeginCapture = lib.optionalFn("cuStreamBeginCapture_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT));
        cuStreamEndCapture = lib.optionalFn("cuStreamEndCapture", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
        cuGraphInstantiate = lib.optionalFn("cuGraphInstantiateWithFlags", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
        cuGraphLaunch = lib.optionalFn("cuGraphLaunch", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
        cuGraphExecDestroy = lib.optionalFn("cuGraphExecDestroy", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        cuGraphDestroy = lib.optionalFn("cuGraphDestroy", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        cuMemGetInfo = lib.fn("cuMemGetInfo_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cuEventCreate = lib.optionalFn("cuEventCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuEventDestroy = lib.optionalFn("cuEventDestroy_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        cuEventRecord = lib.optionalFn("cuEventRecord", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
        cuStreamWaitEvent = lib.optionalFn("cuStreamWaitEvent", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT));
        simulatorVersion = lib.optionalFn("cusimVersion", FunctionDescriptor.of(ADDRESS));
        simulatorLastError = lib.optionalFn("cusimLastError", FunctionDescriptor.of(ADDRESS));
    }

    /** The simulator's name and version when this library is predcode's host simulator of the driver, else null. */
    String simulator() {
        if (simulatorVersion == null) return null;
        try { return ((MemorySegment) simulatorVersion.invokeExact()).reinterpret(256).getString(0); } catch (Throwable t) { throw wrap(t); }
    }

    /** Free device memory in bytes. */
    long freeMemory() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment free = a.allocate(JAVA_LONG), total = a.allocate(JAVA_LONG);
            check((int) cuMemGetInfo.invokeExact(free, total), "cuMemGetInfo");
            return free.get(JAVA_LONG, 0);
        } catch (Throwable t) { throw wrap(t); }
    }

    boolean hasGraphs() {
        return cuStreamBeginCapture != null && cuStreamEndCapture != null && cuGraphInstantiate != null && cuGraphLaunch != null
                && cuGraphExecDestroy != null && cuGraphDestroy != null;
    }

    boolean hasEvents() { return cuEventCreate != null && cuEventDestroy != null && cuEventRecord != null && cuStreamWaitEvent != null; }

    /** An event for ordering streams only (no timing, which makes recording it cheaper). */
    long createEvent() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment e = a.allocate(JAVA_LONG);
            check((int) cuEventCreate.invokeExact(e, 2 /* CU_EVENT_DISABLE_TIMING */), "cuEventCreate");
            return e.get(JAVA_LONG, 0);
        } catch (Throwable t) { throw wrap(t); }
    }

    void destroyEvent(long event) { try { check((int) cuEventDestroy.invokeExact(event), "cuEventDestroy"); } catch (Throwable t) { throw wrap(t); } }

    /** Marks the point the stream's queued work has reached; in a capture, the nodes recorded so far. */
    void record(long event, long stream) { try { check((int) cuEventRecord.invokeExact(event, stream), "cuEventRecord"); } catch (Throwable t) { throw wrap(t); } }

    /** Makes the stream's later work wait for the event's point; in a capture this forks the stream into it, or joins it back. */
    void waitFor(long stream, long event) { try { check((int) cuStreamWaitEvent.invokeExact(stream, event, 0), "cuStreamWaitEvent"); } catch (Throwable t) { throw wrap(t); } }

    /**
     * Starts recording the stream's work instead of running it. Relaxed mode: other threads' CUDA
     * calls (another backend in the same process) do not invalidate the capture.
     */
    void beginCapture(long stream) {
        try { check((int) cuStreamBeginCapture.invokeExact(stream, 2 /* CU_STREAM_CAPTURE_MODE_RELAXED */), "cuStreamBeginCapture"); } catch (Throwable t) { throw wrap(t); }
    }

    /**
     * Ends the recording and returns an executable graph (the recorded graph itself is freed). Memory
     * that the graph's nodes allocate (cuBLAS may add such nodes) is freed before each relaunch.
     */
    long endCapture(long stream) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment g = a.allocate(JAVA_LONG), e = a.allocate(JAVA_LONG);
            check((int) cuStreamEndCapture.invokeExact(stream, g), "cuStreamEndCapture");
            long graph = g.get(JAVA_LONG, 0);
            try {
                check((int) cuGraphInstantiate.invokeExact(e, graph, 1L /* CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH */), "cuGraphInstantiateWithFlags");
            } finally {
                int ignored = (int) cuGraphDestroy.invokeExact(graph);
            }
            return e.get(JAVA_LONG, 0);
        } catch (Throwable t) { throw wrap(t); }
    }

    /** Ends a capture that went wrong, whatever state it is in, so the stream runs work again. */
    void abortCapture(long stream) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment g = a.allocate(JAVA_LONG);
            int status = (int) cuStreamEndCapture.invokeExact(stream, g);
            long graph = g.get(JAVA_LONG, 0);
            if (status == 0 && graph != 0) { int ignored = (int) cuGraphDestroy.invokeExact(graph); }
        } catch (Throwable ignored) {
            // best effort: the capture may already have ended
        }
    }

    void launchGraph(long exec, long stream) { try { check((int) cuGraphLaunch.invokeExact(exec, stream), "cuGraphLaunch"); } catch (Throwable t) { throw wrap(t); } }

    void destroyGraph(long exec) { try { check((int) cuGraphExecDestroy.invokeExact(exec), "cuGraphExecDestroy"); } catch (Throwable t) { throw wrap(t); } }

    /** Throws naming the call and CUDA's error name when {@code status} is not CUDA_SUCCESS. */
    void check(int status, String call) {
        if (status == 0) return;
        String name = "error " + status;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            if ((int) cuGetErrorName.invokeExact(status, p) == 0) name = p.get(ADDRESS, 0).reinterpret(128).getString(0);
        } catch (Throwable ignored) {
            // keep the number
        }
        throw new CudaException(call + " failed: " + name + " (" + status + ")" + simulatorDetail(), status);
    }

    /** What the simulator knows about the last failure (the real driver gives only the status). */
    private String simulatorDetail() {
        if (simulatorLastError == null) return "";
        try {
            String detail = ((MemorySegment) simulatorLastError.invokeExact()).reinterpret(4096).getString(0);
            return detail.isEmpty() ? "" : " [simulator: " + detail + "]";
        } catch (Throwable t) {
            return "";
        }
    }

    private static RuntimeException wrap(Throwable t) { return t instanceof RuntimeException r ? r : new IllegalStateException(t); }

    void init() { try { check((int) cuInit.invokeExact(0), "cuInit"); } catch (Throwable t) { throw wrap(t); } }

    int driverVersion() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            check((int) cuDriverGetVersion.invokeExact(v), "cuDriverGetVersion");
            return v.get(JAVA_INT, 0);
        } catch (Throwable t) { throw wrap(t); }
    }

    int deviceCount() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(JAVA_INT);
            check((int) cuDeviceGetCount.invokeExact(n), "cuDeviceGetCount");
            return n.get(JAVA_INT, 0);
        } catch (Throwable t) { throw wrap(t); }
    }

    int device(int ordinal) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment d = a.allocate(JAVA_INT);
            check((int) cuDeviceGet.invokeExact(d, ordinal), "cuDeviceGet(" + ordinal + ")");
            return d.get(JAVA_INT, 0);
        } catch (Throwable t) { throw wrap(t); }
    }

    String deviceName(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(JAVA_BYTE, 256);
            check((int) cuDeviceGetName.invokeExact(s, 256, device), "cuDeviceGetName");
            return s.getString(0);
        } catch (Throwable t) { throw wrap(t); }
    }

    long retainPrimaryContext(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment c = a.allocate(JAVA_LONG);
            check((int) cuPrimaryCtxRetain.invokeExact(c, device), "cuDevicePrimaryCtxRetain");
            long ctx = c.get(JAVA_LONG, 0);
            check((int) cuCtxSetCurrent.invokeExact(ctx), "cuCtxSetCurrent");
            return ctx;
        } catch (Throwable t) { throw wrap(t); }
    }

    void setCurrent(long ctx) { try { check((int) cuCtxSetCurrent.invokeExact(ctx), "cuCtxSetCurrent"); } catch (Throwable t) { throw wrap(t); } }

    void releasePrimaryContext(int device) { try { check((int) cuPrimaryCtxRelease.invokeExact(device), "cuDevicePrimaryCtxRelease"); } catch (Throwable t) { throw wrap(t); } }

    long malloc(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(JAVA_LONG);
            check((int) cuMemAlloc.invokeExact(p, Math.max(bytes, 4L)), "cuMemAlloc(" + bytes + " bytes)");
            return p.get(JAVA_LONG, 0);
        } catch (Throwable t) { throw wrap(t); }
    }

    void free(long ptr) { try { check((int) cuMemFree.invokeExact(ptr), "cuMemFree"); } catch (Throwable t) { throw wrap(t); } }

    /** Page-locked host memory (for fast, asynchronous uploads and downloads). */
    MemorySegment mallocHost(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check((int) cuMemAllocHost.invokeExact(p, bytes), "cuMemAllocHost(" + bytes + " bytes)");
            return p.get(ADDRESS, 0).reinterpret(bytes);
        } catch (Throwable t) { throw wrap(t); }
    }

    void freeHost(MemorySegment p) { try { check((int) cuMemFreeHost.invokeExact(p.address()), "cuMemFreeHost"); } catch (Throwable t) { throw wrap(t); } }

    void copyHtoD(long dst, MemorySegment src, long bytes, long stream) {
        try { check((int) cuMemcpyHtoDAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyHtoDAsync"); } catch (Throwable t) { throw wrap(t); }
    }

    void copyDtoH(MemorySegment dst, long src, long bytes, long stream) {
        try { check((int) cuMemcpyDtoHAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyDtoHAsync"); } catch (Throwable t) { throw wrap(t); }
    }

    void copyDtoD(long dst, long src, long bytes, long stream) {
        try { check((int) cuMemcpyDtoDAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyDtoDAsync"); } catch (Throwable t) { throw wrap(t); }
    }

    void memsetD32(long dst, int value, long count, long stream) {
        try { check((int) cuMemsetD32Async.invokeExact(dst, value, count, stream), "cuMemsetD32Async"); } catch (Throwable t) { throw wrap(t); }
    }

    long loadModule(MemorySegment image) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment m = a.allocate(JAVA_LONG);
            check((int) cuModuleLoadData.invokeExact(m, image), "cuModuleLoadData (the kernels need a driver for CUDA 13 on sm_90, or PTX for compute_75+)");
            return m.get(JAVA_LONG, 0);
        } catch (Throwable t) { throw wrap(t); }
    }

    long function(long module, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment f = a.allocate(JAVA_LONG);
            check((int) cuModuleGetFunction.invokeExact(f, module, a.allocateFrom(name)), "cuModuleGetFunction(" + name + ")");
            return f.get(JAVA_LONG, 0);
        } catch (Throwable t) { throw wrap(t); }
    }

    void launch(long function, int grid, int block, long stream, MemorySegment params, String name) {
        try {
            check((int) cuLaunchKernel.invokeExact(function, grid, 1, 1, block, 1, 1, 0, stream, params, MemorySegment.NULL), "cuLaunchKernel(" + name + ")");
        } catch (Throwable t) { throw wrap(t); }
    }

    long createStream() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(JAVA_LONG);
            check((int) cuStreamCreate.invokeExact(s, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate");
            return s.get(JAVA_LONG, 0);
        } catch (Throwable t) { throw wrap(t); }
    }

    void destroyStream(long s) { try { check((int) cuStreamDestroy.invokeExact(s), "cuStreamDestroy"); } catch (Throwable t) { throw wrap(t); } }

    void synchronize(long s) { try { check((int) cuStreamSynchronize.invokeExact(s), "cuStreamSynchronize"); } catch (Throwable t) { throw wrap(t); } }
}
