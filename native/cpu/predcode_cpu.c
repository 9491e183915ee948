/*
 * predcode's native CPU kernels, bound from Java through FFM (io.predcode.cpu.NativeKernels).
 * kernels.inc is compiled twice, for AVX-512 and for AVX2 + FMA, with each function's name suffixed
 * by its instruction set; pc_simd_width() (baseline code) says which of them this CPU can run: 16, 8,
 * or 0 (then the Java kernels run instead). Built by the predcode-cpu module with gcc; see its pom.
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include <float.h>
#include <math.h>

/* Floats of input and output a kernel's working set aims for: 64K floats = 256 KB, well inside L2. */
#define GROUP_FLOATS (1L << 16)

/*
 * Per-thread scratch buffers, grown on demand and kept for the thread's life: a kernel call
 * allocates nothing once its sizes have been seen. NULL when memory runs out. Slot k is one kernel's
 * k-th buffer; kernels run one at a time on a thread, so they share the slots.
 */
static __thread float *buffers[5];
static __thread long capacity[5];

static float *scratch(int k, long floats) {
    if (floats > capacity[k]) {
        free(buffers[k]);
        long size = (floats * (long) sizeof(float) + 63) / 64 * 64;
        buffers[k] = aligned_alloc(64, size);
        capacity[k] = buffers[k] ? floats : 0;
    }
    return buffers[k];
}

/* A float's bits and back, for selecting by mask in scalar code. */
static inline unsigned bits(float f) { unsigned u; memcpy(&u, &f, sizeof u); return u; }

static inline float from_bits(unsigned u) { float f; memcpy(&f, &u, sizeof f); return f; }

/*
 * Java's Math.max and Math.min on floats (NaN if either is, the first NaN if both; +0 above -0), written as
 * selects so that loops over them vectorise (a chain of branches did not, and ran 4x slower than the JIT's).
 */
static inline float java_max(float a, float b) {
    float m = a > b ? a : b;
    m = a == b && bits(b) >> 31 ? a : m; /* equal: a zero pair, +0 the larger */
    m = b != b ? b : m;
    return a != a ? a : m;
}

static inline float java_min(float a, float b) {
    float m = a < b ? a : b;
    m = a == b && bits(a) >> 31 ? a : m; /* equal: a zero pair, -0 the smaller */
    m = b != b ? b : m;
    return a != a ? a : m;
}

int pc_simd_width(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 16;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 8;
    return 0;
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#define VL 16
#define OB_MAX 8
#define VEC __m512
#define SET1 _mm512_set1_ps
#define LOADU _mm512_loadu_ps
#define STOREU _mm512_storeu_ps
#define FMADD _mm512_fmadd_ps
#define VADD _mm512_add_ps
#define NAME(f) pc_##f##_avx512
#include "kernels.inc"
#pragma GCC pop_options

#undef VL
#undef OB_MAX
#undef VEC
#undef SET1
#undef LOADU
#undef STOREU
#undef FMADD
#undef VADD
#undef NAME
#undef SMOOTH_TILE
#undef NB
#undef POSITIONS
#undef CONV_CASE

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define VL 8
#define OB_MAX 5
#define VEC __m256
#define SET1 _mm256_set1_ps
#define LOADU _mm256_loadu_ps
#define STOREU _mm256_storeu_ps
#define FMADD _mm256_fmadd_ps
#define VADD _mm256_add_ps
#define NAME(f) pc_##f##_avx2
#include "kernels.inc"
#pragma GCC pop_options
