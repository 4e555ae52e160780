// A GRU layer for float32 CPU tensors with its elementwise work fused into one loop per time step and a hand-written
// backward pass (eeap/kernels/gru.py wraps it in an autograd Function). Same equations as torch.nn.GRU:
//   r = σ(gi_r + gh_r), z = σ(gi_z + gh_z), n = tanh(gi_n + r ⊙ gh_n), h' = (1 − z) ⊙ n + z ⊙ h,
// with gi = W_ih x + b_ih computed by the caller for all steps at once and gh = W_hh h + b_hh here, step by step.
// Rows whose mask is 0 at a step keep their state and output zeros, as packed sequences do.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

using at::Tensor;

namespace {

inline float sigmoid(float x) {
  x = std::min(std::max(x, -80.f), 80.f);  // exp stays finite
  return 1.f / (1.f + std::exp(-x));
}

inline bool kept(const float* mask, int64_t index) { return mask == nullptr || mask[index] != 0.f; }

}  // namespace

// gi (T, B, 3H), mask (T, B) or None, h0 (B, H), w_hh (3H, H), b_hh (3H); reverse runs t = T-1 … 0.
// Returns out (T, B, H), h_T (B, H) and, for the backward pass, gh (T, B, 3H), gates r|z|n (T, B, 3H) and the
// state before each step (T, B, H).
std::vector<Tensor> gru_forward(Tensor gi, c10::optional<Tensor> mask_, Tensor h0, Tensor w_hh, Tensor b_hh,
                                bool reverse) {
  gi = gi.contiguous();
  const int64_t T = gi.size(0), B = gi.size(1), H = h0.size(1);
  auto out = at::empty({T, B, H}, gi.options());
  auto gh = at::empty({T, B, 3 * H}, gi.options());
  auto gates = at::empty({T, B, 3 * H}, gi.options());
  auto before = at::empty({T, B, H}, gi.options());
  Tensor mask = mask_.has_value() ? mask_->contiguous() : Tensor();
  const float* m = mask.defined() ? mask.data_ptr<float>() : nullptr;
  Tensor h = h0.contiguous().clone();
  const Tensor w_hh_t = w_hh.t();
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = reverse ? T - 1 - s : s;
    before[t].copy_(h);
    Tensor gh_t = gh[t];
    at::addmm_out(gh_t, b_hh, h, w_hh_t);  // (B, 3H)
    const float* pgi = gi[t].data_ptr<float>();
    const float* pgh = gh_t.data_ptr<float>();
    float* pgates = gates[t].data_ptr<float>();
    float* ph = h.data_ptr<float>();
    float* pout = out[t].data_ptr<float>();
    for (int64_t b = 0; b < B; ++b) {
      float* o = pout + b * H;
      if (!kept(m, t * B + b)) {
        std::fill(o, o + H, 0.f);
        continue;
      }
      const float* a = pgi + b * 3 * H;
      const float* c = pgh + b * 3 * H;
      float* g = pgates + b * 3 * H;
      float* hb = ph + b * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const float r = sigmoid(a[j] + c[j]);
        const float z = sigmoid(a[H + j] + c[H + j]);
        const float n = 2.f * sigmoid(2.f * (a[2 * H + j] + r * c[2 * H + j])) - 1.f;  // tanh
        g[j] = r;
        g[H + j] = z;
        g[2 * H + j] = n;
        const float next = n + z * (hb[j] - n);
        hb[j] = next;
        o[j] = next;
      }
    }
  }
  return {out, h, gh, gates, before};
}

// grad_out (T, B, H), grad_h (B, H): the gradients of out and h_T. Returns the gradients of gi (T, B, 3H), h0 (B, H),
// w_hh (3H, H) and b_hh (3H).
std::vector<Tensor> gru_backward(Tensor grad_out, Tensor grad_h, c10::optional<Tensor> mask_, Tensor w_hh, Tensor gh,
                                 Tensor gates, Tensor before, bool reverse) {
  grad_out = grad_out.contiguous();
  const int64_t T = gh.size(0), B = gh.size(1), H = before.size(2);
  auto d_gi = at::empty({T, B, 3 * H}, gh.options());
  auto d_gh = at::empty({T, B, 3 * H}, gh.options());
  Tensor mask = mask_.has_value() ? mask_->contiguous() : Tensor();
  const float* m = mask.defined() ? mask.data_ptr<float>() : nullptr;
  Tensor dh = grad_h.contiguous().clone();  // the gradient reaching the state after step t
  for (int64_t s = T - 1; s >= 0; --s) {
    const int64_t t = reverse ? T - 1 - s : s;
    const float* pgo = grad_out[t].data_ptr<float>();
    const float* pgates = gates[t].data_ptr<float>();
    const float* pgh = gh[t].data_ptr<float>();
    const float* pbefore = before[t].data_ptr<float>();
    float* pdgi = d_gi[t].data_ptr<float>();
    float* pdgh = d_gh[t].data_ptr<float>();
    float* pdh = dh.data_ptr<float>();
    for (int64_t b = 0; b < B; ++b) {
      float* dgi = pdgi + b * 3 * H;
      float* dgh = pdgh + b * 3 * H;
      if (!kept(m, t * B + b)) {  // the state passed through unchanged
        std::fill(dgi, dgi + 3 * H, 0.f);
        std::fill(dgh, dgh + 3 * H, 0.f);
        continue;
      }
      const float* g = pgates + b * 3 * H;
      const float* c = pgh + b * 3 * H;
      const float* hb = pbefore + b * H;
      const float* go = pgo + b * H;
      float* dhb = pdh + b * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const float r = g[j], z = g[H + j], n = g[2 * H + j];
        const float d = dhb[j] + go[j];
        const float dn = d * (1.f - z) * (1.f - n * n);   // through tanh
        const float dz = d * (hb[j] - n) * z * (1.f - z);  // through σ
        const float dr = dn * c[2 * H + j] * r * (1.f - r);
        dgi[j] = dr;
        dgi[H + j] = dz;
        dgi[2 * H + j] = dn;
        dgh[j] = dr;
        dgh[H + j] = dz;
        dgh[2 * H + j] = dn * r;
        dhb[j] = d * z;  // the direct path; the path through W_hh is added below
      }
    }
    dh.addmm_(d_gh[t], w_hh);  // (B, H)
  }
  const Tensor d_gh_flat = d_gh.view({T * B, 3 * H});
  Tensor d_w_hh = d_gh_flat.t().mm(before.view({T * B, H}));  // summed over all steps in one product
  Tensor d_b_hh = d_gh_flat.sum(0);
  return {d_gi, dh, d_w_hh, d_b_hh};
}

// Both directions of a bidirectional layer (or one), each on its own thread: direction d runs reversed when d = 1.
// The inputs are lists with one entry per direction; the results are those of gru_forward, direction after direction.
std::vector<Tensor> gru_forward_directions(std::vector<Tensor> gi, c10::optional<Tensor> mask, std::vector<Tensor> h0,
                                           std::vector<Tensor> w_hh, std::vector<Tensor> b_hh) {
  const int64_t D = static_cast<int64_t>(gi.size());
  std::vector<std::vector<Tensor>> results(D);
  at::parallel_for(0, D, 1, [&](int64_t begin, int64_t end) {
    for (int64_t d = begin; d < end; ++d) results[d] = gru_forward(gi[d], mask, h0[d], w_hh[d], b_hh[d], d == 1);
  });
  std::vector<Tensor> flat;
  for (auto& r : results) flat.insert(flat.end(), r.begin(), r.end());
  return flat;
}

// The backward pass of gru_forward_directions; the saved tensors are lists with one entry per direction.
std::vector<Tensor> gru_backward_directions(std::vector<Tensor> grad_out, std::vector<Tensor> grad_h,
                                            c10::optional<Tensor> mask, std::vector<Tensor> w_hh,
                                            std::vector<Tensor> gh, std::vector<Tensor> gates,
                                            std::vector<Tensor> before) {
  const int64_t D = static_cast<int64_t>(gh.size());
  std::vector<std::vector<Tensor>> results(D);
  at::parallel_for(0, D, 1, [&](int64_t begin, int64_t end) {
    for (int64_t d = begin; d < end; ++d)
      results[d] = gru_backward(grad_out[d], grad_h[d], mask, w_hh[d], gh[d], gates[d], before[d], d == 1);
  });
  std::vector<Tensor> flat;
  for (auto& r : results) flat.insert(flat.end(), r.begin(), r.end());
  return flat;
}
