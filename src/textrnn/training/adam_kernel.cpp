// FastAdam's per-step work (textrnn.training.optim) in one call each, for the CPU.
//
// textrnn.native compiles this file on first use (g++ -O3 -march=native) and optim.py calls it through ctypes.
// With the lesson's batches of 8-16 short texts a training step lasts about a millisecond, and FastAdam's work
// on the embedding rows was some twenty small PyTorch operators (unique, index_select, index_add_, index_copy_,
// coalesce, ...) each costing microseconds of dispatch for a few kilobytes of arithmetic: a third of the step.
// The arithmetic is exactly optim.py's (see its docstring for what it means); only the operators are fused.
//
// Layouts (row-major): table (rows, dim) float32; moments (rows, 2, dim) float32, a row's first and second moment
// side by side; row_step (rows) int64, the step each row was last brought up to date at; catch_up_sums, log_keep
// (float64, indexed by step) and eps_after (float32, indexed by step) are FastAdam's tables of the same names.
//
// Threads: a call splits its rows between PyTorch's OpenMP threads by row number (row % threads), so no two
// threads touch one row, repeated rows need no locks, and a row's arithmetic does not depend on the split.

#include <math.h>
#include <omp.h>
#include <stdint.h>

namespace {

constexpr int64_t PARALLEL_FLOATS = 1 << 16;  // below this much work a call stays on one thread

// Run work(part, parts) on `parts` threads of PyTorch's OpenMP pool, or on this thread alone when `floats` is too
// little work to pay for waking the others (an OpenMP region costs microseconds even on one thread).
template <typename Work>
void run(int64_t floats, int threads, Work work) {
    if (floats < PARALLEL_FLOATS || threads <= 1) {
        work(0, 1);
        return;
    }
#pragma omp parallel num_threads(threads)
    work(omp_get_thread_num(), omp_get_num_threads());
}

}  // namespace

extern "C" {

int textrnn_adam_abi() { return 3; }

// Bring the rows rows[0..n) (repeats allowed) up to date at step `steps`: apply dense Adam's zero-gradient moves
// each has missed since row_step[row] (optim.py's FastAdam._catch_up). Rows already up to date are skipped (the
// operators would move them by exactly 0). log_keep null: no weight decay. The rows are token ids not yet checked
// by the embedding (this runs before its forward): if one is not in [0, table_rows), nothing is written and its
// position is returned; else -1.
int64_t textrnn_adam_catch_up(int64_t n, const int64_t* rows, int64_t table_rows, int dim, int64_t steps,
                              float* table, float* moments, int64_t* row_step, const double* catch_up_sums,
                              const double* log_keep, const float* eps_after, double beta1, double beta2,
                              int threads) {
    for (int64_t i = 0; i < n; ++i)
        if (rows[i] < 0 || rows[i] >= table_rows) return i;
    run(n * dim, threads, [=](int64_t part, int64_t parts) {
        for (int64_t i = 0; i < n; ++i) {
            const int64_t row = rows[i];
            const int64_t last = row_step[row];
            if (row % parts != part || last >= steps) continue;
            double factor = catch_up_sums[last];  // minus the sum of the missed steps' sizes
            float keep = 1.0f;
            if (log_keep) {  // the row and its missed moves shrink by the decay of steps last+1..now
                const double kept = exp(log_keep[steps] - log_keep[last]);
                factor *= kept;
                keep = (float)kept;
            }
            const float f = (float)factor, eps = eps_after[last];
            const double missed = (double)(steps - last);
            const float decay1 = (float)pow(beta1, missed), decay2 = (float)pow(beta2, missed);
            float* __restrict w = table + row * dim;
            float* __restrict m = moments + row * 2 * dim;
            float* __restrict v = m + dim;
            if (log_keep) {
                for (int j = 0; j < dim; ++j) w[j] = w[j] * keep + m[j] / (sqrtf(v[j]) + eps) * f;
            } else {
                for (int j = 0; j < dim; ++j) w[j] += m[j] / (sqrtf(v[j]) + eps) * f;
            }
            for (int j = 0; j < dim; ++j) {
                m[j] *= decay1;
                v[j] *= decay2;
            }
            row_step[row] = steps;
        }
    });
    return -1;
}

// Sum the gradient's values of repeated indices (what a sparse tensor's coalesce does): writes each distinct row
// once, in the order of its first occurrence, to rows_out, and its summed values to values_out (rows_out's order);
// returns how many. slot (table rows, int32) must hold -1 everywhere, and does again on return.
int64_t textrnn_adam_coalesce(int64_t n, const int64_t* indices, const float* values, int dim, int32_t* slot,
                              int64_t* rows_out, float* values_out) {
    int64_t distinct = 0;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t row = indices[i];
        const float* g = values + i * dim;
        if (slot[row] < 0) {
            slot[row] = (int32_t)distinct;
            rows_out[distinct] = row;
            float* out = values_out + distinct * dim;
            for (int j = 0; j < dim; ++j) out[j] = g[j];
            ++distinct;
        } else {
            float* out = values_out + (int64_t)slot[row] * dim;
            for (int j = 0; j < dim; ++j) out[j] += g[j];
        }
    }
    for (int64_t k = 0; k < distinct; ++k) slot[rows_out[k]] = -1;
    return distinct;
}

// Adam's step for distinct rows rows[0..n) with gradients grads (n, dim) (already clipped, where clipping is on):
// the moments, then the weights (shrunk by `keep` = 1 - lr * weight_decay first), and row_step[row] = steps.
// w1 = 1 - beta1 and w2 = 1 - beta2 come from the caller, rounded from double as PyTorch's operators round them
// (1.0f - 0.999f is 4.7e-5 of itself away from 0.001f).
void textrnn_adam_rows(int64_t n, const int64_t* rows, const float* grads, int dim, int64_t steps, float* table,
                       float* moments, int64_t* row_step, float w1, float beta2, float w2, float step_size,
                       float sqrt_bias2, float eps, float keep, int threads) {
    run(n * dim, threads, [=](int64_t part, int64_t parts) {
        for (int64_t i = n * part / parts; i < n * (part + 1) / parts; ++i) {
            const int64_t row = rows[i];
            const float* __restrict g = grads + i * dim;
            float* __restrict w = table + row * dim;
            float* __restrict m = moments + row * 2 * dim;
            float* __restrict v = m + dim;
            for (int j = 0; j < dim; ++j) {
                const float gj = g[j];
                m[j] += w1 * (gj - m[j]);
                v[j] = v[j] * beta2 + w2 * gj * gj;
                w[j] = w[j] * keep - step_size * (m[j] / (sqrtf(v[j]) / sqrt_bias2 + eps));
            }
            row_step[row] = steps;
        }
    });
}

// Adam's step for the flat buffer of every other parameter (n floats): the same arithmetic as a row's.
void textrnn_adam_dense(int64_t n, float* params, const float* grads, float* exp_avg, float* exp_avg_sq,
                        float w1, float beta2, float w2, float step_size, float sqrt_bias2, float eps, float keep,
                        int threads) {
    run(n, threads, [=](int64_t part, int64_t parts) {
        for (int64_t i = n * part / parts; i < n * (part + 1) / parts; ++i) {
            const float g = grads[i];
            const float m = exp_avg[i] + w1 * (g - exp_avg[i]);
            const float v = exp_avg_sq[i] * beta2 + w2 * g * g;
            exp_avg[i] = m;
            exp_avg_sq[i] = v;
            params[i] = params[i] * keep - step_size * (m / (sqrtf(v) / sqrt_bias2 + eps));
        }
    });
}

}  // extern "C"
