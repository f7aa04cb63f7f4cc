// The LSTM recurrence for the CPU, forward and backward, one call per layer and direction.
//
// textrnn.models.fast_lstm compiles this file on first use (g++ -O3 -march=native) and calls it through ctypes;
// PyTorch does the large matmuls (every step's input projection, the weight and input gradients) and this code
// does what must run step by step: the recurrent matmul and the gate arithmetic, fused, with the batch's rows
// split between threads for the whole sequence (rows never interact, so the threads never wait for each other
// and a row's arithmetic does not depend on how the batch was split).
//
// Layouts (row-major, float32, batch-major as PyTorch's batch_first):
//   gates  (B, T, 4H)  in: x_t W_ih^T; out: the activated gates i, f, g, o (PyTorch's order)
//   bias   (4H)        b_ih + b_hh
//   cell, out  (B, T, H)
//   out_before (B, T, H + 1): at each position, the state the step that read it started from, then a 1: the
//              weight-gradient matmul over it gives dW_hh and, from the column of ones, the bias's gradient
//   w_t    (H, 4H)     W_hh transposed, for the forward;  w (4H, H): W_hh as PyTorch keeps it, for the backward
//   grad_out (B, T, H) or null (zeros): dLoss/dh_t from above;  grad_cell_last (B, H) or null: dLoss/dc_T
//   final_step (B): the step after which each row's state is its final one (the step it is read at, not the
//                   position);  final, grad_final (B, H), rows state_stride apart: that state and its gradient
//   grad_gates (B, T, 4H) out: dLoss/d(pre-activation gates)
//   lengths (B) or null: null, each row is read first to last; else row b reads its first lengths[b] positions
//            last to first, then its padding in order (a bidirectional layer's backward direction)
// The two directions of a bidirectional layer share these buffers, interleaved: the strides say how many floats
// lie from one (row, position) to the next, and the caller offsets each pointer to its direction's first column.
// H must be a multiple of 16 (the caller checks).

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>

namespace {

constexpr int W = 16;  // floats per vector
typedef float vf __attribute__((vector_size(64)));
typedef float vfu __attribute__((vector_size(64), aligned(4)));  // unaligned access
typedef int32_t vi __attribute__((vector_size(64)));

inline vf load(const float* p) { return *reinterpret_cast<const vfu*>(p); }
inline void store(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }
inline vf splat(float x) { return vf{} + x; }

#ifdef __AVX512F__
inline __m512 m(vf v) { return reinterpret_cast<__m512>(v); }
inline vf v(__m512 x) { return reinterpret_cast<vf>(x); }
inline vf vmin(vf a, vf b) { return v(_mm512_min_ps(m(a), m(b))); }
inline vf vmax(vf a, vf b) { return v(_mm512_max_ps(m(a), m(b))); }
inline vf times_two_to(vf p, vf n) { return v(_mm512_scalef_ps(m(p), m(n))); }  // p * 2^n, n integral
#else
inline vf vmin(vf a, vf b) { return a < b ? a : b; }
inline vf vmax(vf a, vf b) { return a > b ? a : b; }
inline vf times_two_to(vf p, vf n) {
    vi e = (__builtin_convertvector(n, vi) + 127) << 23;
    vf scale;
    memcpy(&scale, &e, sizeof scale);
    return p * scale;
}
#endif

// exp for float vectors (Cephes' expf polynomial, relative error about 2e-7 on the clamped range)
inline vf vexp(vf x) {
    x = vmax(vmin(x, splat(88.3762626647949f)), splat(-87.3365478515625f));
    const vf magic = splat(12582912.0f);  // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer
    vf n = (x * splat(1.44269504088896341f) + magic) - magic;
    vf r = x - n * splat(0.693359375f) - n * splat(-2.12194440e-4f);
    vf p = splat(1.9875691500e-4f);
    p = p * r + splat(1.3981999507e-3f);
    p = p * r + splat(8.3334519073e-3f);
    p = p * r + splat(4.1665795894e-2f);
    p = p * r + splat(1.6666665459e-1f);
    p = p * r + splat(5.0000001201e-1f);
    p = p * r * r + r + splat(1.0f);
    return times_two_to(p, n);
}

// 1 / d for d >= 1: AVX-512's 14-bit reciprocal and one Newton step (within about 1e-7 of the division; as
// fast as it here, measured in the whole step)
inline vf reciprocal(vf d) {
#ifdef __AVX512F__
    vf r = reinterpret_cast<vf>(_mm512_rcp14_ps(reinterpret_cast<__m512>(d)));
    return r * (splat(2.0f) - d * r);
#else
    return splat(1.0f) / d;
#endif
}

inline vf vsigmoid(vf x) { return reciprocal(splat(1.0f) + vexp(-x)); }
inline vf vtanh(vf x) { return splat(2.0f) * reciprocal(splat(1.0f) + vexp(splat(-2.0f) * x)) - splat(1.0f); }

// c[r] += a[r][0:K] @ b[0:K, 16 NV columns] for R rows (`a` and `c` hold each row's address); b's rows ldb apart
template <int R, int NV>
inline void matmul_block(const float* const* a, const float* b, int ldb, int K, float* const* c, int col) {
    vf acc[R][NV];
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v) acc[r][v] = load(c[r] + col + v * W);
    for (int k = 0; k < K; ++k) {
        vf bv[NV];
        for (int v = 0; v < NV; ++v) bv[v] = load(b + static_cast<size_t>(k) * ldb + col + v * W);
        for (int r = 0; r < R; ++r) {
            vf s = splat(a[r][k]);
            for (int v = 0; v < NV; ++v) acc[r][v] += s * bv[v];
        }
    }
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v) store(c[r] + col + v * W, acc[r][v]);
}

// c[r][0:N] += a[r][0:K] @ b[0:K, 0:N] for R rows; N a multiple of 16
template <int R>
void matmul_rows(const float* const* a, const float* b, int ldb, int K, int N, float* const* c) {
    int col = 0;
    for (; col + 4 * W <= N; col += 4 * W) matmul_block<R, 4>(a, b, ldb, K, c, col);
    for (; col < N; col += W) matmul_block<R, 1>(a, b, ldb, K, c, col);
}

constexpr int ROWS = 4;  // rows per register block: 4 x 4 accumulators, 4 weight vectors, 1 broadcast

// rows (1..ROWS) x N of c += a @ b, b's rows N apart
template <int R = ROWS>
void matmul(int rows, const float* const* a, const float* b, int K, int N, float* const* c) {
    if constexpr (R > 1) {
        if (rows < R) return matmul<R - 1>(rows, a, b, K, N, c);
    }
    matmul_rows<R>(a, b, N, K, N, c);
}

struct Shape {
    int T, B, H;
    int gate_stride, state_stride, before_stride;  // floats from one (row, position) to the next in the gates,
                                                   // the states and out_before
    const int* lengths;  // null: every row reads its steps in order; else row b reads its first lengths[b] steps
                         // last to first, then its padding in order
    // the position row b reads at step t
    int at(int b, int t) const { return lengths && t < lengths[b] ? lengths[b] - 1 - t : t; }
    size_t gate(int b, int t) const { return (static_cast<size_t>(b) * T + at(b, t)) * gate_stride; }
    size_t state(int b, int t) const { return (static_cast<size_t>(b) * T + at(b, t)) * state_stride; }
    size_t before(int b, int t) const { return (static_cast<size_t>(b) * T + at(b, t)) * before_stride; }
};

// row b of an initial state (B, H), or null where there is none
inline const float* initial(const float* state, int b, int H) {
    return state ? state + static_cast<size_t>(b) * H : nullptr;
}

struct ForwardArgs {
    Shape s;
    const float *w_t, *bias;
    const float *h0, *c0;  // (B, H) each, or null: the state before the first step (zeros when null)
    const int* final_step;
    float *gates, *cell, *out, *final;
    float* out_before;  // (B, T, H + 1): at each position, the state the step that read it started from, and a 1
    int b0, b1;
};

void forward_rows(const ForwardArgs& a) {
    const Shape& s = a.s;
    const int H = s.H;
    for (int b = a.b0; b < a.b1; b += ROWS) {
        for (int t = 0; t < s.T; ++t) {
            const int rows = std::min(ROWS, a.b1 - b);
            float* g[ROWS];
            const float* h_prev[ROWS];
            for (int r = 0; r < rows; ++r) {
                g[r] = a.gates + s.gate(b + r, t);
                h_prev[r] = t > 0 ? a.out + s.state(b + r, t - 1) : initial(a.h0, b + r, H);
            }
            if (h_prev[0]) matmul(rows, h_prev, a.w_t, H, 4 * H, g);
            for (int r = 0; r < rows; ++r) {
                float* gr = g[r];
                const float* prev = t > 0 ? a.cell + s.state(b + r, t - 1) : initial(a.c0, b + r, H);
                float* c = a.cell + s.state(b + r, t);
                float* h = a.out + s.state(b + r, t);
                float* final = t == a.final_step[b + r] ? a.final + static_cast<size_t>(b + r) * s.state_stride
                                                        : nullptr;
                float* h_next = t + 1 < s.T ? a.out_before + s.before(b + r, t + 1) : nullptr;
                if (h_next) h_next[H] = 1.0f;
                if (t == 0) {
                    float* first = a.out_before + s.before(b + r, 0);
                    if (h_prev[r])
                        memcpy(first, h_prev[r], H * sizeof(float));
                    else
                        memset(first, 0, H * sizeof(float));
                    first[H] = 1.0f;
                }
                for (int j = 0; j < H; j += W) {
                    const float* bj = a.bias + j;
                    vf i = vsigmoid(load(gr + j) + load(bj)), f = vsigmoid(load(gr + H + j) + load(bj + H));
                    vf gg = vtanh(load(gr + 2 * H + j) + load(bj + 2 * H));
                    vf o = vsigmoid(load(gr + 3 * H + j) + load(bj + 3 * H));
                    vf cn = i * gg;
                    if (prev) cn += f * load(prev + j);
                    vf tcn = vtanh(cn);
                    store(gr + j, i), store(gr + H + j, f), store(gr + 2 * H + j, gg), store(gr + 3 * H + j, o);
                    store(c + j, cn), store(h + j, o * tcn);
                    if (final) store(final + j, o * tcn);
                    if (h_next) store(h_next + j, o * tcn);
                }
            }
        }
    }
}

struct BackwardArgs {
    Shape s;
    const float *w, *gates, *cell, *grad_out, *grad_cell_last;
    const int* final_step;
    const float* grad_final;
    const float* c0;  // (B, H) or null, as in the forward: given, the initial state's gradients are computed too
    float* grad_gates;
    float *dh, *dc;  // (B, H): the gradient reaching h_t from step t + 1, and dc_{t+1} * f_{t+1}; after the
                     // call, the initial state's gradients (with c0)
    int b0, b1;
};

void backward_rows(const BackwardArgs& a) {
    const Shape& s = a.s;
    const int H = s.H;
    for (int b = a.b0; b < a.b1; ++b) {
        memset(a.dh + static_cast<size_t>(b) * H, 0, H * sizeof(float));
        if (a.grad_cell_last)
            memcpy(a.dc + static_cast<size_t>(b) * H, a.grad_cell_last + static_cast<size_t>(b) * H, H * sizeof(float));
        else
            memset(a.dc + static_cast<size_t>(b) * H, 0, H * sizeof(float));
    }
    for (int b = a.b0; b < a.b1; b += ROWS) {
        for (int t = s.T - 1; t >= 0; --t) {
            const int rows = std::min(ROWS, a.b1 - b);
            const float* dg_rows[ROWS];
            float* dh_rows[ROWS];
            for (int r = 0; r < rows; ++r) {
                const float* g = a.gates + s.gate(b + r, t);
                const float* prev = t > 0 ? a.cell + s.state(b + r, t - 1) : initial(a.c0, b + r, H);
                const float* c = a.cell + s.state(b + r, t);
                const float* up = a.grad_out ? a.grad_out + s.state(b + r, t) : nullptr;
                const float* from_final = a.grad_final && t == a.final_step[b + r]
                                              ? a.grad_final + static_cast<size_t>(b + r) * s.state_stride
                                              : nullptr;
                float* dh = a.dh + static_cast<size_t>(b + r) * H;
                float* dc = a.dc + static_cast<size_t>(b + r) * H;
                float* dgr = a.grad_gates + s.gate(b + r, t);
                dg_rows[r] = dgr, dh_rows[r] = dh;
                for (int j = 0; j < H; j += W) {
                    vf i = load(g + j), f = load(g + H + j), gg = load(g + 2 * H + j), o = load(g + 3 * H + j);
                    vf tcv = vtanh(load(c + j)), one = splat(1.0f);  // recomputed: cheaper than storing and reading it
                    vf dhv = load(dh + j);
                    if (up) dhv += load(up + j);
                    if (from_final) dhv += load(from_final + j);
                    vf dcv = load(dc + j) + dhv * o * (one - tcv * tcv);
                    vf cp = prev ? load(prev + j) : vf{};
                    store(dgr + j, dcv * gg * i * (one - i));
                    store(dgr + H + j, dcv * cp * f * (one - f));
                    store(dgr + 2 * H + j, dcv * i * (one - gg * gg));
                    store(dgr + 3 * H + j, dhv * tcv * o * (one - o));
                    store(dc + j, dcv * f);
                    store(dh + j, vf{});
                }
            }
            // the gradient reaching h_{t-1} through the recurrence: grad_gates_t @ W_hh
            if (t > 0 || a.c0) matmul(rows, dg_rows, a.w, 4 * H, H, dh_rows);
        }
    }
}

// Split rows [0, B) into one range (a multiple of ROWS) per thread of PyTorch's own OpenMP pool (libgomp is
// loaded once per process, so these are the threads that just ran PyTorch's matmuls: no second pool spins
// beside the first) and run `work` on each.
template <typename Args>
void run_split(const Args& base, int threads, void (*work)(const Args&)) {
    const int B = base.s.B;
    const int blocks = (B + ROWS - 1) / ROWS;
    threads = std::max(1, std::min(threads, blocks));
#pragma omp parallel num_threads(threads)
    {
        const int k = omp_get_thread_num(), n = omp_get_num_threads();
        Args part = base;
        part.b0 = std::min(B, blocks * k / n * ROWS);
        part.b1 = std::min(B, blocks * (k + 1) / n * ROWS);
        work(part);
    }
}

}  // namespace

extern "C" {

int textrnn_lstm_abi() { return 8; }

void textrnn_lstm_forward(int T, int B, int H, int gate_stride, int state_stride, int before_stride,
                          const int* lengths, const int* final_step, const float* w_t, const float* bias,
                          const float* h0, const float* c0, float* gates, float* cell, float* out,
                          float* out_before, float* final, int threads) {
    ForwardArgs a{{T, B, H, gate_stride, state_stride, before_stride, lengths},
                  w_t, bias, h0, c0, final_step, gates, cell, out, final, out_before, 0, B};
    run_split(a, threads, forward_rows);
}

void textrnn_lstm_backward(int T, int B, int H, int gate_stride, int state_stride, const int* lengths,
                           const int* final_step, const float* w, const float* gates, const float* cell,
                           const float* grad_out, const float* grad_cell_last, const float* grad_final,
                           const float* c0, float* grad_gates, float* dh, float* dc, int threads) {
    BackwardArgs a{{T, B, H, gate_stride, state_stride, 0, lengths},
                   w, gates, cell, grad_out, grad_cell_last, final_step, grad_final, c0, grad_gates, dh, dc, 0, B};
    run_split(a, threads, backward_rows);
}

}  // extern "C"
