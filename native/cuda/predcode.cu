// predcode's CUDA kernels: the backend SPI's op set (everything but GEMM, which is cuBLAS).
// Compiled by the Maven build (modules/predcode-cuda) into one fatbin: sm_90 SASS + compute_75 PTX.
// Conventions: float32, row-major, NCHW; sizes as long long; every kernel is grid-stride so any
// launch size is correct. Reductions are deterministic: the same order of additions every call.
#include <float.h>
#include <stdint.h>

#define GRID_STRIDE(i, n) for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); i += (long long)blockDim.x * gridDim.x)

// Activation codes, as io.predcode.spi.Activation.code() gives them; any other code traps (the launch fails).
enum { RELU = 0, LEAKY_RELU = 1, TANH = 2, SIGMOID = 3, GELU = 4, GELU_TANH = 5 };

// GELU_TANH's sqrt(2 / pi) and cubic coefficient: u = GELU_C (x + GELU_A x^3); the float forms round the double ones
// to the same floats as their own literals would.
#define GELU_C_D 0.79788456080286536
#define GELU_A_D 0.044715
#define GELU_C ((float)GELU_C_D)
#define GELU_A ((float)GELU_A_D)

extern "C" __global__ void pc_axpby(long long n, float alpha, const float* x, float beta, float* y) {
    GRID_STRIDE(i, n) y[i] = alpha * x[i] + beta * y[i];
}

extern "C" __global__ void pc_add(long long n, float alpha, const float* a, float beta, const float* b, float* out) {
    GRID_STRIDE(i, n) out[i] = alpha * a[i] + beta * b[i];
}

// The math functions by precision, named so that float calls the float functions on the host simulator too.
__device__ inline float math_tanh(float v) { return tanhf(v); }
__device__ inline double math_tanh(double v) { return tanh(v); }
__device__ inline float math_exp(float v) { return expf(v); }
__device__ inline double math_exp(double v) { return exp(v); }
__device__ inline float math_erfc(float v) { return erfcf(v); }
__device__ inline double math_erfc(double v) { return erfc(v); }

// Each activation once, f(v), in float for every kernel and in double for pc_activation_increment's change; and the
// gradient g f'(.) from the input x or the output y = f(x) (ReLU's gradient is g or 0 g, so that a NaN gradient stays
// NaN, as in PyTorch).
template <class T> __device__ T act_of(int kind, float slope, T v) {
    switch (kind) {
        case RELU: return v < T(0) ? T(0) : v;
        case LEAKY_RELU: return v < T(0) ? v * slope : v;
        case TANH: return math_tanh(v);
        case SIGMOID: return T(1) / (T(1) + math_exp(-v));
        case GELU: return T(0.5) * v * math_erfc(-v * T(0.70710678118654752));
        case GELU_TANH: return T(0.5) * v * (T(1) + math_tanh(T(GELU_C_D) * (v + T(GELU_A_D) * v * v * v)));
        default: __trap();
    }
    return T(0);
}

__device__ float act(int kind, float slope, float v) { return act_of(kind, slope, v); }

// sigmoid(x + h) - sigmoid(x) as a product, sign(h) (1 - e^-|h|) (1 - sigmoid(lo)) sigmoid(hi) with lo and hi the lower
// and higher of x and x + h (Activation.increment): relatively precise where both values saturate, where their
// difference would keep only double's absolute precision.
__device__ double sigmoid_change(double x, double h) {
    double y = x + h, lo = h >= 0 ? x : y, hi = h >= 0 ? y : x;
    double m = -expm1(-fabs(h)) / ((1 + exp(lo)) * (1 + exp(-hi)));
    return h >= 0 ? m : -m;
}

// f(a + h) - f(a) in double; tanh's from sigmoid's (tanh v = 2 sigmoid(2v) - 1).
__device__ double act_change(int kind, float slope, double a, double h) {
    switch (kind) {
        case TANH: return 2 * sigmoid_change(2 * a, 2 * h);
        case SIGMOID: return sigmoid_change(a, h);
        default: return act_of(kind, slope, a + h) - act_of(kind, slope, a);
    }
}

__device__ float act_grad(int kind, float slope, float x, float y, float g) {
    switch (kind) {
        case RELU: return x > 0.f ? g : 0.f * g;
        case LEAKY_RELU: return x > 0.f ? g : g * slope;
        case TANH: return g * (1.f - y * y);
        case SIGMOID: return g * y * (1.f - y);
        case GELU: return g * (0.5f * erfcf(-x * 0.70710678118654752f) + x * expf(-0.5f * x * x) * 0.39894228040143268f);
        case GELU_TANH: {
            float t = tanhf(GELU_C * (x + GELU_A * x * x * x));
            float d = 1.f - t * t; // 0 once tanh saturates, where x^2 may overflow (and 0 inf is NaN)
            return g * (0.5f * (1.f + t) + (d == 0.f ? 0.f : 0.5f * x * d * GELU_C * (1.f + 3.f * GELU_A * x * x)));
        }
        default: __trap();
    }
    return 0.f;
}

extern "C" __global__ void pc_activation(int kind, float slope, long long n, const float* x, float* y) {
    GRID_STRIDE(i, n) y[i] = act(kind, slope, x[i]);
}

// The activation at x = x0 + dx (x, y = f(x) and f'(x) where not null) and the change f(x0 + dx) - f(x0), less minus
// where not null, without rounding x0 + dx to float: the sum of two floats is exact (or nearly) in double, and double's
// rounding of f is far below float32's, so the change keeps its own precision however small dx is. Where delta is not
// null also delta = change f'(x) as the backward pass makes it (by d where d is asked for, else as pc_activation_backward):
// the VJP a STRICT sweep's feedback starts from.
// change and delta may be dx (each element is read before it is written).
extern "C" __global__ void pc_activation_increment(int kind, float slope, long long n, const float* x0, const float* dx, float* x, float* y, float* d,
                                                   const float* minus, float* change, float* delta) {
    GRID_STRIDE(i, n) {
        float moved = x0[i] + dx[i], v = 0.f, grad = 0.f;
        double c = act_change(kind, slope, x0[i], dx[i]);
        if (x) x[i] = moved;
        if (y || d || delta) {
            v = act(kind, slope, moved);
            if (y) y[i] = v;
            if (d) d[i] = grad = act_grad(kind, slope, moved, v, 1.f);
        }
        float out = (float)(minus ? c - minus[i] : c);
        change[i] = out;
        if (delta) delta[i] = d ? out * grad : act_grad(kind, slope, moved, v, out); // as pc_multiply by d, or pc_activation_backward
    }
}

extern "C" __global__ void pc_activation_backward(int kind, float slope, long long n, const float* x, const float* y, const float* dy, float* dx) {
    GRID_STRIDE(i, n) dx[i] = act_grad(kind, slope, x[i], y[i], dy[i]);
}

// y = f(x) and d = f'(x) (the gradient of a gradient of ones), for backward passes that multiply by d.
extern "C" __global__ void pc_activation_with_derivative(int kind, float slope, long long n, const float* x, float* y, float* d) {
    GRID_STRIDE(i, n) {
        float v = x[i], fv = act(kind, slope, v);
        y[i] = fv;
        d[i] = act_grad(kind, slope, v, fv, 1.f);
    }
}

// z[i] plus its channel's bias where there is one, written back to z: pc_add_bias's one element, for the kernels that
// finish a linear layer's GEMM.
__device__ float add_bias_at(float* z, const float* bias, int channels, long long i) {
    float v = z[i];
    if (bias) {
        v += bias[channels ? i % channels : i]; // channels 0: an offset per element (Backend.linear's offset form)
        z[i] = v;
    }
    return v;
}

// add_bias_at where the GEMM's product is z + addend (addend not null: PC's Gram form, whose two products ran
// beside each other; Backend.pcPredictionErrorFromProducts): z = (z + addend) + bias, pc_add's bits and then the bias's.
__device__ float add_products_at(float* z, const float* addend, const float* bias, int channels, long long i) {
    if (!addend) return add_bias_at(z, bias, channels, i);
    float v = z[i] + addend[i];
    if (bias) v += bias[channels ? i % channels : i];
    z[i] = v;
    return v;
}

// A linear layer's bias and activation after its GEMM, in one pass (Backend.linearActivation): z += bias where there
// is one, y = f(z), and where d is not null d = f'(z); the bits of pc_add_bias, then pc_activation (_with_derivative).
extern "C" __global__ void pc_bias_activation(int kind, float slope, long long n, float* z, const float* bias, int channels, float* y, float* d) {
    GRID_STRIDE(i, n) {
        float v = add_bias_at(z, bias, channels, i);
        float fv = act(kind, slope, v);
        y[i] = fv;
        if (d) d[i] = act_grad(kind, slope, v, fv, 1.f);
    }
}

// A displacement's folded SGD step from d and the error e (BeliefStep): d + momentum (d - previous) + eta e, or
// d + eta e without previous; rounded as the CPU rounds it, term by term, not contracted into FMAs.
__device__ float belief_step(float d, float e, float eta, float momentum, const float* previous, long long i) {
    float base = previous ? __fadd_rn(d, __fmul_rn(momentum, __fsub_rn(d, previous[i]))) : d;
    return __fadd_rn(base, __fmul_rn(eta, e));
}

// A belief step written into next, and where copy is not null into copy too (BeliefStep.copy: PC's Gram form reads
// the terms in a GEMM beside the feedback GEMM that adds onto next).
__device__ void write_belief_step(float* next, float* copy, float d, float e, float eta, float momentum, const float* previous, long long i) {
    float s = belief_step(d, e, eta, momentum, previous, i);
    next[i] = s;
    if (copy) copy[i] = s;
}

// pc_bias_activation with f', then the prediction error of the layer above and its delta (pc_prediction_error), in one
// pass and with their bits (Backend.pcLinearPredictionError): each step of PC's relaxation, a kernel fewer in a row.
// Where next is not null, also the displacement's step (write_belief_step). Where addend is not null, the product is
// z + addend (add_products_at; with no GEMM before it, Backend.pcPredictionErrorFromProducts).
extern "C" __global__ void pc_bias_activation_error(int kind, float slope, long long n, float* z, const float* addend, const float* bias, int channels,
                                                    float* y, float* d, const float* vhat, const float* disp, float* err, float* delta,
                                                    float* next, float eta, float momentum, const float* previous, float* copy) {
    GRID_STRIDE(i, n) {
        float v = add_products_at(z, addend, bias, channels, i);
        float fv = act(kind, slope, v), dv = act_grad(kind, slope, v, fv, 1.f);
        y[i] = fv;
        d[i] = dv;
        float dd = disp[i], e = (fv - vhat[i]) - dd;
        err[i] = e;
        delta[i] = e * dv;
        if (next) write_belief_step(next, copy, dd, e, eta, momentum, previous, i);
    }
}

extern "C" __global__ void pc_multiply(long long n, const float* a, const float* b, float* out) {
    GRID_STRIDE(i, n) out[i] = a[i] * b[i];
}

// Block-wide sum in double, deterministic; the result is valid in thread 0.
__device__ double block_sum(double v) {
    __shared__ double part[256];
    part[threadIdx.x] = v;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    double r = part[0];
    __syncthreads();
    return r;
}

// The doubles of a lane's partials buffer (Kernels.PARTIALS); after them, the count of a reduction's blocks done.
#define PARTIALS 1024

// A reduction's block sum, called by every thread of every block: with one block, the reduction's result itself
// (scale * sum into out[index]). With more, block b writes its partial sum to partials[b], and the block that finishes
// last (the count after the partials tells) adds them all, in index order, strided over its threads as one block
// would: the same bits whichever block is last, and one kernel where a second to add the partials made two in a row.
// The fence makes a block's partial visible before its count; the last block reads them past its cache (volatile)
// and sets the count back to 0 for the lane's next reduction.
__device__ void reduce_out(double sum, double* partials, double scale, float* out, long long index) {
    if (gridDim.x == 1) {
        if (threadIdx.x == 0) out[index] = (float)(scale * sum);
        return;
    }
    __shared__ bool last;
    unsigned int* done = (unsigned int*)(partials + PARTIALS);
    if (threadIdx.x == 0) {
        partials[blockIdx.x] = sum;
        __threadfence();
        last = atomicAdd(done, 1u) == gridDim.x - 1;
    }
    __syncthreads();
    if (!last) return;
    const volatile double* all = partials;
    double s = 0;
    for (unsigned int i = threadIdx.x; i < gridDim.x; i += blockDim.x) s += all[i];
    double total = block_sum(s);
    if (threadIdx.x == 0) {
        out[index] = (float)(scale * total);
        *done = 0;
    }
}

// An output block's bias after its GEMM, then its error against the target, in one pass with the bits of pc_add_bias
// and pc_add(1, output, -1, target) (Backend.pcLinearOutputError); where sq is not null, also the error's energy
// scale * sum of err^2 with pc_sum_squares's bits (launched as that reduction: one block, or partials to finish).
// Where addend is not null, the product is out + addend (add_products_at; Backend.pcOutputErrorFromProducts).
extern "C" __global__ void pc_bias_error(long long n, float* out, const float* addend, const float* bias, int channels, const float* target, float* err,
                                         double* partials, double scale, float* sq, long long index) {
    double s = 0;
    GRID_STRIDE(i, n) {
        float u = add_products_at(out, addend, bias, channels, i);
        float e = u - target[i];  // pc_add's 1 u + -1 t: both products exact, one rounding
        err[i] = e;
        s += (double)e * e;
    }
    if (sq) reduce_out(block_sum(s), partials, scale, sq, index);
}

extern "C" __global__ void pc_add_bias(float* y, const float* bias, long long n, int channels, int inner) {
    GRID_STRIDE(i, n) y[i] += bias[(i / inner) % channels];
}

// y = x * scale[c] (+ shift[c]) per channel: the product rounded before the sum, as the CPU backend's Java does.
extern "C" __global__ void pc_scale_channels(const float* x, const float* scale, const float* shift, float* y, long long n, int channels, int inner) {
    GRID_STRIDE(i, n) {
        int c = (int) ((i / inner) % channels);
        float v = __fmul_rn(x[i], scale[c]);
        // With a shift (the normalize op's forward), a NaN is a missing value: the mean, 0 once standardized.
        y[i] = !shift ? v : x[i] != x[i] ? 0.0f : __fadd_rn(v, shift[c]);
    }
}

// The bias gradient db[c] = beta * db[c] + alpha * (sum over outer, inner of dy[o, c, i]), in blocks of
// (channel, chunk): block b sums chunk b % chunks of channel b / chunks, its threads visiting the
// channel's elements e = chunk * blockDim + t, then every chunks * blockDim further, stepping (o, i)
// without a division per element. With one chunk it writes db directly; with more it writes
// partials[b], and pc_bias_grad_finish adds each channel's chunks in order.
// Channel c's bias gradient from its sum: db[c] = alpha * sum, plus beta * db[c] where beta is not 0 (db's old
// contents are not read then, so they may be anything).
__device__ void bias_grad_out(float* db, int c, double sum, float alpha, float beta) {
    db[c] = (float)(beta == 0.f ? alpha * sum : beta * db[c] + alpha * sum);
}

extern "C" __global__ void pc_bias_grad(const float* dy, float* db, double* partials, long long outer, int channels, int inner, int chunks, float alpha, float beta) {
    int c = blockIdx.x / chunks, chunk = blockIdx.x % chunks;
    long long stride = (long long)chunks * blockDim.x, e = (long long)chunk * blockDim.x + threadIdx.x;
    long long stepO = stride / inner, o = e / inner;
    int stepI = (int)(stride % inner), i = (int)(e % inner);
    double s = 0;
    while (o < outer) {
        s += dy[(o * channels + c) * inner + i];
        o += stepO;
        i += stepI;
        if (i >= inner) { i -= inner; o++; }
    }
    double sum = block_sum(s);
    if (threadIdx.x != 0) return;
    if (chunks > 1) partials[blockIdx.x] = sum;
    else bias_grad_out(db, c, sum, alpha, beta);
}

extern "C" __global__ void pc_bias_grad_finish(const double* partials, float* db, int chunks, float alpha, float beta) {
    int c = blockIdx.x;
    double s = 0;
    for (int k = threadIdx.x; k < chunks; k += blockDim.x) s += partials[(long long)c * chunks + k];
    double sum = block_sum(s);
    if (threadIdx.x == 0) bias_grad_out(db, c, sum, alpha, beta);
}

// col[n, (c*kh + ki)*kw + kj, oy*ow + ox] = x[n, c, oy*sh - ph + ki, ox*sw - pw + kj] or 0.
extern "C" __global__ void pc_im2col(const float* x, float* col, int images, int C, int H, int W, int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
    long long p = (long long)oh * ow, patch = (long long)C * kh * kw, total = images * patch * p;
    GRID_STRIDE(idx, total) {
        long long pix = idx % p, row = (idx / p) % patch, n = idx / (p * patch);
        int oy = pix / ow, ox = pix % ow, kj = row % kw, ki = (row / kw) % kh, c = row / (kw * kh);
        int iy = oy * sh - ph + ki, ix = ox * sw - pw + kj;
        col[idx] = (iy < 0 || iy >= H || ix < 0 || ix >= W) ? 0.f : x[((n * C + c) * H + iy) * W + ix];
    }
}

// Gather form of col2im: each input pixel sums the col entries that read it (no atomics, deterministic).
extern "C" __global__ void pc_col2im(const float* col, float* dx, int images, int C, int H, int W, int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
    long long p = (long long)oh * ow, patch = (long long)C * kh * kw, total = (long long)images * C * H * W;
    GRID_STRIDE(idx, total) {
        int ix = idx % W, iy = (idx / W) % H, c = (idx / ((long long)W * H)) % C;
        long long n = idx / ((long long)W * H * C);
        float s = 0.f;
        for (int ki = 0; ki < kh; ki++) {
            int ty = iy + ph - ki;
            if (ty < 0 || ty % sh != 0) continue;
            int oy = ty / sh;
            if (oy >= oh) continue;
            for (int kj = 0; kj < kw; kj++) {
                int tx = ix + pw - kj;
                if (tx < 0 || tx % sw != 0) continue;
                int ox = tx / sw;
                if (ox >= ow) continue;
                s += col[(n * patch + ((long long)c * kh + ki) * kw + kj) * p + (long long)oy * ow + ox];
            }
        }
        dx[idx] = s;
    }
}

// Index in the plane of the window's maximum, as PyTorch's CPU kernel picks: move to any greater
// value or any NaN (ties keep the first maximum; with NaNs the last NaN wins).
__device__ int window_argmax(const float* plane, int W, int kh, int kw, int sh, int sw, int oy, int ox) {
    int best = oy * sh * W + ox * sw;
    float bv = -INFINITY;
    for (int i = 0; i < kh; i++)
        for (int j = 0; j < kw; j++) {
            int at = (oy * sh + i) * W + ox * sw + j;
            float v = plane[at];
            if (v > bv || isnan(v)) { best = at; bv = v; }
        }
    return best;
}

extern "C" __global__ void pc_max_pool(const float* x, float* y, long long planes, int H, int W, int kh, int kw, int sh, int sw, int oh, int ow) {
    GRID_STRIDE(o, planes * oh * ow) {
        long long pl = o / ((long long)oh * ow);
        int r = o % ((long long)oh * ow), oy = r / ow, ox = r % ow;
        const float* plane = x + pl * H * W;
        y[o] = plane[window_argmax(plane, W, kh, kw, sh, sw, oy, ox)];
    }
}

// out = max(x + dx) - max(x) per window without rounding x + dx: (x_k + dx_k) - x_m in double, k the maximum of
// x + dx and m that of x (window_argmax's pick), so that a small change keeps its own precision.
extern "C" __global__ void pc_max_pool_increment(const float* x, const float* dx, float* out, long long planes, int H, int W, int kh, int kw, int sh, int sw,
                                                 int oh, int ow) {
    GRID_STRIDE(o, planes * oh * ow) {
        long long pl = o / ((long long)oh * ow);
        int r = o % ((long long)oh * ow), oy = r / ow, ox = r % ow;
        const float* plane = x + pl * H * W;
        const float* change = dx + pl * H * W;
        int m = window_argmax(plane, W, kh, kw, sh, sw, oy, ox), k = m;
        double best = -INFINITY;
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) {
                int at = (oy * sh + i) * W + ox * sw + j;
                double moved = (double)plane[at] + change[at];
                if (moved > best || isnan(moved)) { best = moved; k = at; }
            }
        out[o] = (float)((double)plane[k] + change[k] - plane[m]);
    }
}

// Gather form: each input pixel sums dy over the windows whose maximum it is.
extern "C" __global__ void pc_max_pool_backward(const float* x, const float* dy, float* dx, long long planes, int H, int W, int kh, int kw, int sh, int sw, int oh, int ow) {
    GRID_STRIDE(idx, planes * H * W) {
        long long pl = idx / ((long long)H * W);
        int at = idx % ((long long)H * W), iy = at / W, ix = at % W;
        const float* plane = x + pl * H * W;
        float s = 0.f;
        int oy0 = iy - kh + 1 < 0 ? 0 : (iy - kh + 1 + sh - 1) / sh, ox0 = ix - kw + 1 < 0 ? 0 : (ix - kw + 1 + sw - 1) / sw;
        for (int oy = oy0; oy < oh && oy * sh <= iy; oy++)
            for (int ox = ox0; ox < ow && ox * sw <= ix; ox++)
                if (window_argmax(plane, W, kh, kw, sh, sw, oy, ox) == at) s += dy[pl * oh * ow + (long long)oy * ow + ox];
        dx[idx] = s;
    }
}

extern "C" __global__ void pc_avg_pool(const float* x, float* y, long long planes, int H, int W, int kh, int kw, int sh, int sw, int oh, int ow) {
    GRID_STRIDE(o, planes * oh * ow) {
        long long pl = o / ((long long)oh * ow);
        int r = o % ((long long)oh * ow), oy = r / ow, ox = r % ow;
        const float* plane = x + pl * H * W;
        float s = 0.f;
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) s += plane[(oy * sh + i) * W + ox * sw + j];
        y[o] = s * (1.f / (kh * kw));
    }
}

extern "C" __global__ void pc_avg_pool_backward(const float* dy, float* dx, long long planes, int H, int W, int kh, int kw, int sh, int sw, int oh, int ow) {
    GRID_STRIDE(idx, planes * H * W) {
        long long pl = idx / ((long long)H * W);
        int at = idx % ((long long)H * W), iy = at / W, ix = at % W;
        float s = 0.f;
        int oy0 = iy - kh + 1 < 0 ? 0 : (iy - kh + 1 + sh - 1) / sh, ox0 = ix - kw + 1 < 0 ? 0 : (ix - kw + 1 + sw - 1) / sw;
        for (int oy = oy0; oy < oh && oy * sh <= iy; oy++)
            for (int ox = ox0; ox < ow && ox * sw <= ix; ox++) s += dy[pl * oh * ow + (long long)oy * ow + ox];
        dx[idx] = s * (1.f / (kh * kw));
    }
}

// Per row: logsumexp - logit[label] into the partial sums (the loss is their mean); grad (if not
// null) = (softmax - onehot) / divisor (rows for the batch's mean, 1 for each row's own gradient). A label
// that is not a class index gives NaN.
// Where addend or bias is not null, the logits are a linear op's products, added first and written back (add_products_at;
// Backend.softmaxCrossEntropyFromProducts): backprop's output block is its GEMM and this kernel.
extern "C" __global__ void pc_softmax_cross_entropy(float* logits, const float* addend, const float* bias, int channels, const float* labels, double* partials,
                                                    float* grad, int rows, int classes, double divisor, double scale, float* out, long long index) {
    double total = 0;
    GRID_STRIDE(r, rows) {
        if (addend || bias)
            for (int c = 0; c < classes; c++) add_products_at(logits, addend, bias, channels, r * classes + c);
        const float* l = logits + r * classes;
        double mx = -INFINITY, s = 0;
        for (int c = 0; c < classes; c++) mx = fmax(mx, (double)l[c]);
        for (int c = 0; c < classes; c++) s += exp(l[c] - mx);
        double lse = mx + log(s);
        float lv = labels[r];
        int label = (int)lv;
        bool valid = (float)label == lv && label >= 0 && label < classes;
        total += valid ? lse - l[label] : NAN;
        // As the CPU kernels: p = e^(l - max) / sum, and gradients below float's normal range flushed to
        // zero (on x86 they cost ~100 cycles each; here they are flushed so every target agrees).
        if (grad)
            for (int c = 0; c < classes; c++) {
                float g = (float)((exp(l[c] - mx) / s - (c == label ? 1.0 : 0.0)) / divisor);
                grad[r * classes + c] = !valid ? NAN : fabsf(g) < FLT_MIN ? 0.f : g;
            }
    }
    reduce_out(block_sum(total), partials, scale, out, index);
}

// (y - t)^2 into the partial sums (the loss is their mean); dy = 2 (y - t) / n when not null. Where addend or bias is not
// null, y is a linear op's products, added first and written back (add_products_at; Backend.mseFromProducts).
extern "C" __global__ void pc_mse(float* y, const float* addend, const float* bias, int channels, const float* t, double* partials, float* dy, long long n,
                                  double scale, float* out, long long index) {
    double s = 0;
    GRID_STRIDE(i, n) {
        float d = add_products_at(y, addend, bias, channels, i) - t[i];
        s += (double)d * d;
        if (dy) dy[i] = (float)(2.0 / n * d);
    }
    reduce_out(block_sum(s), partials, scale, out, index);
}

// The index of the largest of a row's values, the first of equal ones (torch.argmax).
__device__ int row_argmax(const float* row, int classes) {
    int best = 0;
    for (int k = 1; k < classes; k++) if (row[k] > row[best]) best = k;
    return best;
}

// Rows whose argmax is the label: labels[r] a class index, or with label_rows a row of classes values whose
// own argmax is the class (one-hot targets of squared error; Backend.countArgmaxMatches).
extern "C" __global__ void pc_count_correct(const float* logits, const float* labels, double* partials, int rows, int classes, int label_rows,
                                            double scale, float* out, long long index) {
    double c = 0;
    GRID_STRIDE(r, rows) {
        int best = row_argmax(logits + (long long)r * classes, classes);
        if (label_rows ? best == row_argmax(labels + (long long)r * classes, classes) : (float)best == labels[r]) c += 1;
    }
    reduce_out(block_sum(c), partials, scale, out, index);
}

// A layer's prediction error from its displacement (Backend.pcPredictionError): strict_step's error alone, and
// where deriv is not null delta = error * deriv (pc_multiply's product), the first step of the predicting block's backward.
// Where next is not null, also the displacement's step on the layer's own error term (belief_step, BeliefStep).
extern "C" __global__ void pc_prediction_error(long long n, const float* pred, const float* vhat, const float* disp, float* err,
                                               const float* deriv, float* delta, float* next, float eta, float momentum, const float* previous, float* copy) {
    GRID_STRIDE(i, n) {
        float dd = disp[i], e = (pred[i] - vhat[i]) - dd;
        err[i] = e;
        if (deriv) delta[i] = e * deriv[i];
        if (next) write_belief_step(next, copy, dd, e, eta, momentum, previous, i);
    }
}

// STRICT's update of one element (Backend.pcStrictUpdate), once: returns the error.
__device__ float strict_step(float p, float a, float f, float* disp, float* belief, long long i, float eta) {
    float e = (p - a) - disp[i];
    float d = disp[i] + eta * (e - f);
    disp[i] = d;
    belief[i] = a + d;
    return e;
}

extern "C" __global__ void pc_strict_update(long long n, const float* pred, const float* vhat, const float* fb, float* disp, float* belief, float* err, float eta) {
    GRID_STRIDE(i, n) {
        float e = strict_step(pred[i], vhat[i], fb[i], disp, belief, i, eta);
        if (err) err[i] = e;  // null: nobody reads this layer's error this sweep
    }
}

// PC's belief step by SGD with momentum (Backend.pcMomentumUpdate): the velocity is not read on the first step.
extern "C" __global__ void pc_momentum_update(long long n, const float* pred, const float* vhat, const float* fb, float* disp, float* vel,
                                              float* belief, float* err, float eta, float momentum, int first) {
    GRID_STRIDE(i, n) {
        float a = vhat[i], d = disp[i], e = (pred[i] - a) - d, g = fb[i] - e;
        float m = first ? g : momentum * vel[i] + g;
        vel[i] = m;
        d -= eta * m;
        disp[i] = d;
        belief[i] = a + d;
        if (err) err[i] = e;
    }
}

// PC's belief step by Adam on the displacement (Backend.pcAdamUpdate), its bias corrections folded into step_size and
// bc2_sqrt: the error, the gradient fb - e, Adam's step and the belief in one kernel where they were four in a row.
extern "C" __global__ void pc_adam_update(long long n, const float* pred, const float* vhat, const float* fb, float* disp, float* m, float* s,
                                          float* belief, float* err, float step_size, float bc2_sqrt, float b1, float b2, float eps) {
    GRID_STRIDE(i, n) {
        float a = vhat[i], d = disp[i], e = (pred[i] - a) - d, g = fb[i] - e;
        float mi = b1 * m[i] + (1.f - b1) * g, si = b2 * s[i] + (1.f - b2) * g * g;
        m[i] = mi;
        s[i] = si;
        d -= step_size * mi / (sqrtf(si) / bc2_sqrt + eps);
        disp[i] = d;
        belief[i] = a + d;
        if (err) err[i] = e;
    }
}

// STRICT's step from an error already formed: d += eta (e - fb), v = vhat + d.
extern "C" __global__ void pc_strict_step(long long n, const float* err, const float* vhat, const float* fb, float* disp, float* belief, float eta) {
    GRID_STRIDE(i, n) {
        float d = disp[i] + eta * (err[i] - fb[i]);
        disp[i] = d;
        belief[i] = vhat[i] + d;
    }
}

// out[j] = sum over b of parts[b * size + j] (+ beta out[j]), in batch order: the per-image
// products of the conv weight gradient, summed without atomics.
extern "C" __global__ void pc_sum_batches(const float* parts, float* out, long long batches, long long size, float beta) {
    GRID_STRIDE(j, size) {
        float s = 0.f;
        for (long long b = 0; b < batches; b++) s += parts[b * size + j];
        out[j] = beta == 0.f ? s : beta * out[j] + s;
    }
}

extern "C" __global__ void pc_sum_squares(const float* x, long long n, double* partials, double scale, float* out, long long index) {
    double s = 0;
    GRID_STRIDE(i, n) s += (double)x[i] * x[i];
    reduce_out(block_sum(s), partials, scale, out, index);
}

// One element of an SGD step (torch.optim.SGD's): pc_sgd_step's and pc_sgd_steps's, so both give the same bits.
__device__ void sgd_at(float* p, const float* g, float* buf, long long i, float lr, float momentum, float dampening, float wd, int nesterov, int first) {
    float pv = p[i], d = g[i] + wd * pv;
    if (momentum != 0.f) {
        float b = first ? d : momentum * buf[i] + (1.f - dampening) * d;
        buf[i] = b;
        d = nesterov ? d + momentum * b : b;
    }
    p[i] = pv - lr * d;
}

// One element of an Adam step, the parameter first times decay (AdamW's 1 - lr wd; 1 for none): pc_adam_step's and
// pc_adam_steps's, so both give the same bits.
__device__ void adam_at(float* p, const float* g, float* m, float* v, long long i, float step_size, float bc2_sqrt, float b1, float b2, float eps,
                        float wd, float decay) {
    float pv = decay * p[i], gi = g[i] + wd * pv;
    float mi = b1 * m[i] + (1.f - b1) * gi, vi = b2 * v[i] + (1.f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pv - step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
}

// Whether an optimizer step stops: guard is given and one of its guard_count values (the step's loss, and where the step
// checks them its energy's terms) is not finite. Every thread reads them: a few floats, where a kernel to sum them first
// would be one more on the step's chain.
__device__ inline bool guard_stops(const float* guard, int guard_count) {
    if (!guard) return false;
    for (int i = 0; i < guard_count; i++)
        if (!isfinite(guard[i])) return true;
    return false;
}

// torch.optim.SGD (Backend.sgdStep). Where scalars is not null, lr and the first-step flag come from it; where guard is
// not null, nothing changes unless its guard_count values are finite: as pc_adam_step.
extern "C" __global__ void pc_sgd_step(long long n, float* p, const float* g, float* buf, float lr, float momentum, float dampening, float wd, int nesterov, int first,
                                       const float* scalars, const float* guard, int guard_count) {
    if (guard_stops(guard, guard_count)) return;
    if (scalars) {
        lr = scalars[0];
        first = scalars[1] != 0.f;
    }
    GRID_STRIDE(i, n) sgd_at(p, g, buf, i, lr, momentum, dampening, wd, nesterov, first);
}

// Adam (Backend.adamStep). Where scalars is not null, step_size, bc2_sqrt and decay come from it (a step inside a CUDA
// graph whose host count moves between replays); where guard is not null, nothing changes unless its guard_count values
// (the step's loss, and its energy's terms where the step checks them) are finite.
extern "C" __global__ void pc_adam_step(long long n, float* p, const float* g, float* m, float* v, float step_size, float bc2_sqrt, float b1, float b2, float eps, float wd,
                                        float decay, const float* scalars, const float* guard, int guard_count) {
    if (guard_stops(guard, guard_count)) return;
    if (scalars) {
        step_size = scalars[0];
        bc2_sqrt = scalars[1];
        decay = scalars[2];
    }
    GRID_STRIDE(i, n) adam_at(p, g, m, v, i, step_size, bc2_sqrt, b1, b2, eps, wd, decay);
}

// Up to STEP_TENSORS parameters' optimizer steps in one launch (Backend.adamSteps, sgdSteps), their tensors passed by
// value: parameter k covers the indices [end[k - 1], end[k]) of their concatenation (end[-1] = 0), with its gradient
// and state (Adam: s1 the first moments, s2 the second; SGD: s1 the momentum buffer, or null without momentum).
#define STEP_TENSORS 16
struct StepTensors {
    long long end[STEP_TENSORS];
    float* p[STEP_TENSORS];
    const float* g[STEP_TENSORS];
    float* s1[STEP_TENSORS];
    float* s2[STEP_TENSORS];
};

// The parameter (k, from the last one this thread saw: its indices only grow) and the index j within it of element i.
#define STEP_TENSOR(t, i, k, j) \
    while ((i) >= (t).end[k]) k++; \
    long long j = (i) - ((k) == 0 ? 0 : (t).end[(k) - 1])

// Each element's step is pc_adam_step's (adam_at); scalars and guard as there.
extern "C" __global__ void pc_adam_steps(StepTensors t, int count, float b1, float b2, float eps, float wd, const float* scalars, const float* guard,
                                         int guard_count) {
    if (guard_stops(guard, guard_count)) return;
    float step_size = scalars[0], bc2_sqrt = scalars[1], decay = scalars[2];
    int k = 0;
    GRID_STRIDE(i, t.end[count - 1]) {
        STEP_TENSOR(t, i, k, j);
        adam_at(t.p[k], t.g[k], t.s1[k], t.s2[k], j, step_size, bc2_sqrt, b1, b2, eps, wd, decay);
    }
}

// Each element's step is pc_sgd_step's (sgd_at); scalars and guard as there.
extern "C" __global__ void pc_sgd_steps(StepTensors t, int count, float momentum, float dampening, float wd, int nesterov, const float* scalars, const float* guard,
                                        int guard_count) {
    if (guard_stops(guard, guard_count)) return;
    float lr = scalars[0];
    int first = scalars[1] != 0.f, k = 0;
    GRID_STRIDE(i, t.end[count - 1]) {
        STEP_TENSOR(t, i, k, j);
        sgd_at(t.p[k], t.g[k], t.s1[k], j, lr, momentum, dampening, wd, nesterov, first);
    }
}

// The SPI's counter-based generator (io.predcode.spi.Random): SplitMix64 of (seed, index), 24 bits.
__device__ unsigned long long mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

extern "C" __global__ void pc_random_uniform(float* p, long long n, float lo, float hi, long long seed) {
    GRID_STRIDE(i, n) {
        unsigned long long z = mix64((unsigned long long)seed * 0x9E3779B97F4A7C15ULL + (unsigned long long)i + 0x632BE59BD9B4E019ULL);
        float u = (float)(z >> 40) * 0x1.0p-24f;
        // No FMA contraction: the Java generator rounds the product and the sum separately.
        float r = __fadd_rn(lo, __fmul_rn(__fsub_rn(hi, lo), u));
        p[i] = r < hi ? r : nextafterf(hi, -INFINITY);
    }
}
