// The Python bindings of EEAP's CPU kernels (eeap/kernels/__init__.py builds them into one extension).
#include <torch/extension.h>

#include <vector>

using torch::Tensor;

std::vector<Tensor> gru_forward_directions(std::vector<Tensor> gi, c10::optional<Tensor> mask, std::vector<Tensor> h0,
                                           std::vector<Tensor> w_hh, std::vector<Tensor> b_hh);
std::vector<Tensor> gru_backward_directions(std::vector<Tensor> grad_out, std::vector<Tensor> grad_h,
                                            c10::optional<Tensor> mask, std::vector<Tensor> w_hh,
                                            std::vector<Tensor> gh, std::vector<Tensor> gates,
                                            std::vector<Tensor> before);
std::vector<Tensor> additive_forward(Tensor q, Tensor k, Tensor v);
std::vector<Tensor> additive_backward(Tensor grad, Tensor t, Tensor v);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("gru_forward_directions", &gru_forward_directions, "GRU layer forward, directions in parallel");
  m.def("gru_backward_directions", &gru_backward_directions, "GRU layer backward, directions in parallel");
  m.def("additive_forward", &additive_forward, "additive attention scores (float32, CPU)");
  m.def("additive_backward", &additive_backward, "additive attention scores, backward (float32, CPU)");
}
