// The SimpleRNN (tanh) recurrence for the CPU, forward and backward, one call per layer.
//
// textrnn.native compiles this file on first use (g++ -O3 -march=native) and textrnn.models.simple_rnn calls it
// through ctypes. PyTorch does the matmuls over all steps at once (the input projection; the weight and input
// gradients); this code does what must run step by step, h_t = tanh(xw_t + W_hh h_{t-1}) and its gradient. With
// the lesson's 16 units and titles of 7 tokens a step of it is a few hundred multiply-adds: written as PyTorch
// operators, each step was two or three dispatcher calls costing more than their arithmetic.
//
// Layouts (row-major, float32, batch-major as PyTorch's batch_first; any H, the loops are left to the compiler's
// vectoriser):
//   xw  (B, T, H)  in: x_t W_ih^T + b_ih + b_hh;  out: h_t, every step's state
//   before (B, T, H + 1) out, or null (inference): the state each step started from (zeros for the first), then
//          a 1: one matmul over it gives dW_hh and, from the column of ones, the bias's gradient
//   w_t (H, H): W_hh transposed, for the forward;  w (H, H): W_hh as PyTorch keeps it, for the backward
//   grad_out (B, T, H): dLoss/dh_t from above;  pre (B, T, H) out: dLoss/d(pre-activation) at every step
// Rows never interact, so a call splits them between PyTorch's OpenMP threads for the whole sequence (when there
// is enough work to pay for waking them), and a row's arithmetic does not depend on the split.

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <vector>

namespace {

constexpr int64_t PARALLEL_MACS = 1 << 16;  // below this many multiply-adds a call stays on one thread

inline float as_float(int32_t i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

// exp for x in [-20, 0] (Cephes' expf polynomial, relative error about 2e-7): all tanh needs
inline float exp_nonpositive(float x) {
    x = std::max(x, -20.0f);
    const float magic = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer
    const float n = (x * 1.44269504088896341f + magic) - magic;
    const float r = x - n * 0.693359375f - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * as_float((static_cast<int32_t>(n) + 127) << 23);
}

// tanh as Cephes' tanhf computes it: an odd polynomial below |x| = 0.625 (where (1 - e) / (1 + e) with
// e = exp(-2|x|) would lose a small value's relative precision), that formula above; both are computed and one
// kept, so that the loops over it vectorise. Within about 2e-7 of the true value.
inline float tanh_(float x) {
    const float a = fabsf(x), s = x * x;
    const float small = ((((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s +
                          1.33314422036e-1f) * s - 3.33332819422e-1f) * s * x + x;
    const float e = exp_nonpositive(-2.0f * a);
    const float large = copysignf((1.0f - e) / (1.0f + e), x);
    return a < 0.625f ? small : large;
}

struct Shape {
    int T, B, H;
};

// Run work(b0, b1) on ranges of rows [0, B), one per thread of PyTorch's OpenMP pool, or on this thread alone
// when there is too little work to pay for waking the others (an OpenMP region costs microseconds even on one)
template <typename Work>
void split_rows(const Shape& s, int threads, Work work) {
    const int64_t macs = static_cast<int64_t>(s.B) * s.T * s.H * s.H;
    threads = std::min(threads, s.B);
    if (macs < PARALLEL_MACS || threads <= 1) {
        work(0, s.B);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        const int k = omp_get_thread_num(), n = omp_get_num_threads();
        work(static_cast<int64_t>(s.B) * k / n, static_cast<int64_t>(s.B) * (k + 1) / n);
    }
}

}  // namespace

extern "C" {

int textrnn_rnn_abi() { return 2; }

void textrnn_rnn_forward(int T, int B, int H, const float* w_t, float* xw, float* before, int threads) {
    split_rows({T, B, H}, threads, [=](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
            float* h = xw + b * T * H;  // this row's states, written over its xw step by step
            for (int t = 0; t < T; ++t) {
                float* now = h + static_cast<int64_t>(t) * H;
                if (t > 0) {
                    const float* prev = now - H;
                    for (int k = 0; k < H; ++k) {  // now += W_hh h_{t-1}, a column of W_hh (a row of w_t) at a time
                        const float hk = prev[k];
                        const float* column = w_t + static_cast<int64_t>(k) * H;
                        for (int j = 0; j < H; ++j) now[j] += hk * column[j];
                    }
                }
                if (before) {
                    float* from = before + (b * T + t) * (H + 1);
                    if (t == 0)
                        std::fill(from, from + H, 0.0f);
                    else
                        memcpy(from, now - H, sizeof(float) * H);
                    from[H] = 1.0f;
                }
                for (int j = 0; j < H; ++j) now[j] = tanh_(now[j]);
            }
        }
    });
}

void textrnn_rnn_backward(int T, int B, int H, const float* w, const float* out, const float* grad_out, float* pre,
                          int threads) {
    split_rows({T, B, H}, threads, [=](int64_t b0, int64_t b1) {
        std::vector<float> incoming(H);  // the gradient reaching h_t: from the output and from step t + 1
        for (int64_t b = b0; b < b1; ++b) {
            const int64_t row = b * T * H;
            std::fill(incoming.begin(), incoming.end(), 0.0f);
            for (int t = T - 1; t >= 0; --t) {
                const int64_t at = row + static_cast<int64_t>(t) * H;
                const float* h = out + at;
                const float* g = grad_out + at;
                float* a = pre + at;
                for (int j = 0; j < H; ++j) a[j] = (g[j] + incoming[j]) * (1.0f - h[j] * h[j]);
                if (t == 0) break;
                std::fill(incoming.begin(), incoming.end(), 0.0f);
                for (int i = 0; i < H; ++i) {  // incoming = a W_hh, a row of W_hh at a time
                    const float ai = a[i];
                    const float* wrow = w + static_cast<int64_t>(i) * H;
                    for (int k = 0; k < H; ++k) incoming[k] += ai * wrow[k];
                }
            }
        }
    });
}

}  // extern "C"
