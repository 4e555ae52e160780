// Additive attention scores (Bahdanau et al. 2015) for float32 CPU tensors, fused: score = v · tanh(q + k), summed
// over the hidden size without materialising q + k for the caller, and a hand-written backward pass
// (eeap/kernels/additive.py wraps it in an autograd Function).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

using at::Tensor;

namespace {

inline float fast_tanh(float x) {
  x = std::min(std::max(x, -40.f), 40.f);
  return 2.f / (1.f + std::exp(-2.f * x)) - 1.f;
}

}  // namespace

// q (B, Tq, A) the projected queries, k (B, S, A) the projected keys, v (A) -> scores (B, Tq, S) and the tanh values
// (B, Tq, S, A) for the backward pass.
std::vector<Tensor> additive_forward(Tensor q, Tensor k, Tensor v) {
  q = q.contiguous();
  k = k.contiguous();
  v = v.contiguous();
  const int64_t B = q.size(0), Tq = q.size(1), S = k.size(1), A = q.size(2);
  auto scores = at::empty({B, Tq, S}, q.options());
  auto t = at::empty({B, Tq, S, A}, q.options());
  const float* pq = q.data_ptr<float>();
  const float* pk = k.data_ptr<float>();
  const float* pv = v.data_ptr<float>();
  float* ps = scores.data_ptr<float>();
  float* pt = t.data_ptr<float>();
  at::parallel_for(0, B * Tq, 1, [&](int64_t begin, int64_t end) {
    for (int64_t bt = begin; bt < end; ++bt) {
      const int64_t b = bt / Tq;
      const float* qrow = pq + bt * A;
      for (int64_t s = 0; s < S; ++s) {
        const float* krow = pk + (b * S + s) * A;
        float* trow = pt + (bt * S + s) * A;
        float sum = 0.f;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < A; ++j) {
          const float value = fast_tanh(qrow[j] + krow[j]);
          trow[j] = value;
          sum += pv[j] * value;
        }
        ps[bt * S + s] = sum;
      }
    }
  });
  return {scores, t};
}

// grad (B, Tq, S), t (B, Tq, S, A), v (A) -> the gradients of q (B, Tq, A), k (B, S, A) and v (A).
// One pass over t per batch row: d(q + k) = grad · v · (1 − t²) goes straight into d_q and d_k, and each row's share
// of d_v = Σ grad · t into its own slot, summed at the end (the rows run in parallel).
std::vector<Tensor> additive_backward(Tensor grad, Tensor t, Tensor v) {
  grad = grad.contiguous();
  t = t.contiguous();
  const int64_t B = t.size(0), Tq = t.size(1), S = t.size(2), A = t.size(3);
  auto d_q = at::zeros({B, Tq, A}, t.options());
  auto d_k = at::zeros({B, S, A}, t.options());
  auto d_v_rows = at::zeros({B, A}, t.options());
  const float* pg = grad.data_ptr<float>();
  const float* pt = t.data_ptr<float>();
  const float* pv = v.contiguous().data_ptr<float>();
  float* pdq = d_q.data_ptr<float>();
  float* pdk = d_k.data_ptr<float>();
  float* pdv = d_v_rows.data_ptr<float>();
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      float* dv = pdv + b * A;
      for (int64_t i = 0; i < Tq; ++i) {
        float* dq = pdq + (b * Tq + i) * A;
        for (int64_t s = 0; s < S; ++s) {
          const int64_t row = (b * Tq + i) * S + s;
          const float g = pg[row];
          if (g == 0.f) continue;  // masked keys and padded queries get no gradient
          const float* trow = pt + row * A;
          float* dk = pdk + (b * S + s) * A;
#pragma omp simd
          for (int64_t j = 0; j < A; ++j) {
            const float d = g * pv[j] * (1.f - trow[j] * trow[j]);
            dq[j] += d;
            dk[j] += d;
            dv[j] += g * trow[j];
          }
        }
      }
    }
  });
  return {d_q, d_k, d_v_rows.sum(0)};
}
