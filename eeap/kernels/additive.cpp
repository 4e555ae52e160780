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
std::vector<Tensor> additive_backward(Tensor grad, Tensor t, Tensor v) {
  grad = grad.contiguous();
  const int64_t B = t.size(0), Tq = t.size(1), S = t.size(2), A = t.size(3);
  auto d_pre = at::empty({B, Tq, S, A}, t.options());  // the gradient of q + k
  const float* pg = grad.data_ptr<float>();
  const float* pt = t.data_ptr<float>();
  const float* pv = v.contiguous().data_ptr<float>();
  float* pd = d_pre.data_ptr<float>();
  at::parallel_for(0, B * Tq * S, 64, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const float g = pg[row];
      const float* trow = pt + row * A;
      float* drow = pd + row * A;
#pragma omp simd
      for (int64_t j = 0; j < A; ++j) drow[j] = g * pv[j] * (1.f - trow[j] * trow[j]);
    }
  });
  Tensor d_q = d_pre.sum(2);                                             // (B, Tq, A)
  Tensor d_k = d_pre.sum(1);                                             // (B, S, A)
  Tensor d_v = grad.view({1, B * Tq * S}).mm(t.view({B * Tq * S, A})).view({A});  // Σ grad · t
  return {d_q, d_k, d_v};
}
