// torch binding of the "fused_score" op (module safework_fused_score_<hash>, see builder.py). The only file
// seeing torch: it checks tensors, allocates outputs, sorts arbitrary group ids on CUDA, picks the device
// path and hands raw pointers to fused_score_cpu.cpp / fused_score_cuda.cu.
// The Python dispatcher (safework.verifiers.fused) validates first with friendlier errors; these TORCH_CHECKs
// are the last line of defence for direct callers.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/python.h>

#include <cstdint>
#include <vector>

#include "fused_score.h"

#ifdef SAFEWORK_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace {

void check(const at::Tensor& t, at::ScalarType dtype, std::vector<int64_t> shape, const at::Tensor& ref,
           const char* what) {
  TORCH_CHECK(t.scalar_type() == dtype, what, " must be ", dtype, ", got ", t.scalar_type());
  TORCH_CHECK(t.sizes() == at::IntArrayRef(shape), what, " must have shape ", at::IntArrayRef(shape), ", got ",
              t.sizes());
  TORCH_CHECK(t.is_contiguous(), what, " must be contiguous (call .contiguous())");
  TORCH_CHECK(t.device() == ref.device(), what, " is on ", t.device(), " but logits are on ", ref.device());
}

#ifdef SAFEWORK_WITH_CUDA
void check_cuda(int code) {
  TORCH_CHECK(code == 0, "safework CUDA kernel launch failed: ", safework_fused_cuda_error_string(code));
}
#endif

// Returns [probabilities (N, V, L) or an empty tensor, scores (N, V), rewards (N,), advantages (N,)].
// per_item (CPU only, for tests): score with the per-item code the CUDA kernels run instead of the vectorised
// block code; the results must be identical.
std::vector<at::Tensor> fused_score(const at::Tensor& logits, const at::Tensor& label_counts,
                                    const at::Tensor& score_maps, const at::Tensor& weights,
                                    const at::Tensor& format_rewards, const at::Tensor& format_weights,
                                    const at::Tensor& available, const at::Tensor& group_ids, int64_t group_size,
                                    double eps, bool unbiased, bool with_probabilities, bool per_item) {
  TORCH_CHECK(logits.dim() == 3, "logits must be 3-D (items, verifiers, labels), got ", logits.dim(), "-D");
  const int64_t n = logits.size(0);
  const int64_t v = logits.size(1);
  const int64_t l = logits.size(2);
  check(logits, at::kFloat, {n, v, l}, logits, "logits");
  check(label_counts, at::kLong, {v}, logits, "label_counts");
  check(score_maps, at::kFloat, {v, l}, logits, "score_maps");
  check(weights, at::kFloat, {n, v}, logits, "weights");
  check(format_rewards, at::kFloat, {n}, logits, "format_rewards");
  check(format_weights, at::kFloat, {n}, logits, "format_weights");
  TORCH_CHECK(available.scalar_type() == at::kBool || available.scalar_type() == at::kByte,
              "available must be bool or uint8, got ", available.scalar_type());
  check(available, available.scalar_type(), {n, v}, logits, "available");
  TORCH_CHECK(group_size >= 0, "group_size must be >= 0 (0: use group_ids), got ", group_size);
  if (group_size > 0) {
    TORCH_CHECK(n % group_size == 0, "N=", n, " items do not split into groups of ", group_size);
  } else {
    check(group_ids, at::kLong, {n}, logits, "group_ids");
  }
  TORCH_CHECK(eps >= 0.0, "eps must be >= 0, got ", eps);

  const auto opts = logits.options();
  at::Tensor probabilities = at::empty({with_probabilities ? n : 0, v, l}, opts);
  at::Tensor scores = at::empty({n, v}, opts);
  at::Tensor rewards = at::empty({n}, opts);
  at::Tensor advantages = at::empty({n}, opts);
  if (n == 0) return {probabilities, scores, rewards, advantages};

  safework::FusedScoreArgs args{};
  args.logits = logits.data_ptr<float>();
  args.label_counts = label_counts.data_ptr<int64_t>();
  args.score_maps = score_maps.data_ptr<float>();
  args.weights = weights.data_ptr<float>();
  args.format_rewards = format_rewards.data_ptr<float>();
  args.format_weights = format_weights.data_ptr<float>();
  args.available = static_cast<const uint8_t*>(available.data_ptr());  // bool is one byte, 0 or 1
  args.n = n;
  args.v = v;
  args.l = l;
  args.probabilities = with_probabilities ? probabilities.data_ptr<float>() : nullptr;
  args.scores = scores.data_ptr<float>();
  args.rewards = rewards.data_ptr<float>();
  args.advantages = advantages.data_ptr<float>();
  args.eps = eps;
  args.unbiased = unbiased ? 1 : 0;

  if (logits.is_cuda()) {
#ifdef SAFEWORK_WITH_CUDA
    const c10::cuda::CUDAGuard guard(logits.device());
    at::Tensor sorted_ids;
    at::Tensor order;
    if (group_size == 0) {
      // Stable: members of one group keep their index order, the order the CPU path visits them in.
      auto sorted = at::sort(group_ids, /*stable=*/true, /*dim=*/0, /*descending=*/false);
      sorted_ids = std::get<0>(sorted).contiguous();
      order = std::get<1>(sorted).contiguous();
    }
    check_cuda(safework_fused_score_cuda(&args, group_size == 0 ? sorted_ids.data_ptr<int64_t>() : nullptr,
                                         group_size == 0 ? order.data_ptr<int64_t>() : nullptr, group_size,
                                         c10::cuda::getCurrentCUDAStream().stream()));
    return {probabilities, scores, rewards, advantages};
#else
    TORCH_CHECK(false,
                "this safework fused_score build has no CUDA; rebuild on a machine with CUDA torch and nvcc");
#endif
  }
  TORCH_CHECK(logits.is_cpu(), "unsupported device ", logits.device());
  const int64_t* counts = args.label_counts;
  for (int64_t i = 0; i < v; ++i) {
    TORCH_CHECK(counts[i] >= 1 && counts[i] <= l, "label_counts[", i, "]=", counts[i], " must be in [1, ", l,
                "]");
  }
  const int64_t* ids = group_size == 0 ? group_ids.data_ptr<int64_t>() : nullptr;
  const int threads = at::get_num_threads();
  {
    pybind11::gil_scoped_release no_gil;
    safework::fused_score_cpu(args, ids, group_size, threads, per_item);
  }
  return {probabilities, scores, rewards, advantages};
}

bool with_cuda() {
#ifdef SAFEWORK_WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "safework fused verifier scoring; see safework.verifiers.fused for the contract";
  m.def("fused_score", &fused_score,
        "logits -> label probabilities -> mapped scores -> recipe reward -> group z-score advantage",
        pybind11::arg("logits"), pybind11::arg("label_counts"), pybind11::arg("score_maps"),
        pybind11::arg("weights"), pybind11::arg("format_rewards"), pybind11::arg("format_weights"),
        pybind11::arg("available"), pybind11::arg("group_ids"), pybind11::arg("group_size"),
        pybind11::arg("eps"), pybind11::arg("unbiased"), pybind11::arg("with_probabilities"),
        pybind11::arg("per_item") = false);
  m.def("with_cuda", &with_cuda, "whether this build contains the CUDA kernels");
}
