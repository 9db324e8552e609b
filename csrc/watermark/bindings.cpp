// torch binding of the "credid" op (module safework_credid_<hash>, see builder.py). The only file seeing
// torch: it checks tensors, allocates outputs and scratch, picks the device path and hands raw pointers to
// credid_cpu.cpp / credid_cuda.cu.
// The Python dispatcher (safework.watermark.kernels) validates first, values included (id ranges, distinct
// tops, finite masses), with friendlier errors; these TORCH_CHECKs (shapes, dtypes, devices) are the last
// line of defence for direct callers. Out-of-range slots are skipped by the kernels, never written.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/python.h>

#include <cstdint>
#include <vector>

#include "credid.h"

#ifdef SAFEWORK_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace {

using safework::credid::Tops;

void check(const at::Tensor& t, at::ScalarType dtype, std::vector<int64_t> shape, const at::Tensor& ref,
           const char* what) {
  TORCH_CHECK(t.scalar_type() == dtype, what, " must be ", dtype, ", got ", t.scalar_type());
  TORCH_CHECK(t.sizes() == at::IntArrayRef(shape), what, " must have shape ", at::IntArrayRef(shape),
              ", got ", t.sizes());
  TORCH_CHECK(t.is_contiguous(), what, " must be contiguous (call .contiguous())");
  TORCH_CHECK(t.device() == ref.device(), what, " is on ", t.device(), " but the inputs are on ",
              ref.device());
}

const uint64_t* u64(const at::Tensor& t) { return reinterpret_cast<const uint64_t*>(t.data_ptr<int64_t>()); }

// Checks the tops of `rows` rows and returns their raw view.
Tops tops_of(const at::Tensor& ids, const at::Tensor& probs, const at::Tensor& rest, int64_t rows,
             const at::Tensor& ref) {
  TORCH_CHECK(ids.dim() == 2, "top_ids must be 2-D (rows, K), got ", ids.dim(), "-D");
  const int64_t k = ids.size(1);
  TORCH_CHECK(k >= 1, "K (top_ids.shape[1]) must be >= 1");
  check(ids, at::kLong, {rows, k}, ref, "top_ids");
  check(probs, at::kFloat, {rows, k}, ref, "top_probs");
  check(rest, at::kDouble, {rows}, ref, "rest");
  return Tops{ids.data_ptr<int64_t>(), probs.data_ptr<float>(), rest.data_ptr<double>(), rows, k};
}

void check_key(const at::Tensor& key, const at::Tensor& ref) { check(key, at::kLong, {2}, ref, "key"); }

void check_words(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.scalar_type() == at::kLong && t.dim() == 2, what, " must be a 2-D int64 tensor");
  TORCH_CHECK(t.is_contiguous(), what, " must be contiguous (call .contiguous())");
  TORCH_CHECK(t.is_cpu() || t.is_cuda(), "unsupported device ", t.device());
}

#ifdef SAFEWORK_WITH_CUDA
void check_cuda(int code, const char* what) {
  TORCH_CHECK(code == 0, "safework credid CUDA kernel (", what,
              ") failed: ", safework_credid_cuda_error_string(code));
}
void* stream_of(const at::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.device().index()).stream(); }
at::Tensor scratch_for(const at::Tensor& ref, int64_t rows, int64_t k) {
  return at::empty({safework::credid::table_scratch_words(rows, k)}, ref.options().dtype(at::kLong));
}
uint64_t* u64_mut(at::Tensor& t) { return reinterpret_cast<uint64_t*>(t.data_ptr<int64_t>()); }
#else
#define SWC_NO_CUDA_BUILD                                                                         \
  TORCH_CHECK(false,                                                                              \
              "this safework credid build has no CUDA; rebuild on a machine with CUDA torch and " \
              "nvcc")
#endif

// mask (B, n) when logits is undefined, else adds delta to logits in place and returns it.
at::Tensor green_vocab(const at::Tensor& key, const at::Tensor& prefix, const at::Tensor& top_ids,
                       const at::Tensor& top_probs, const at::Tensor& rest, int64_t n, double tau,
                       const c10::optional<at::Tensor>& logits, double delta) {
  check_words(prefix, "prefix");
  check_key(key, prefix);
  TORCH_CHECK(n >= 1, "n must be >= 1, got ", n);
  const int64_t rows = prefix.size(0);
  const Tops tops = tops_of(top_ids, top_probs, rest, rows, prefix);
  const bool bias = logits.has_value();
  at::Tensor out = bias ? *logits : at::empty({rows, n}, prefix.options().dtype(at::kBool));
  if (bias) check(out, at::kFloat, {rows, n}, prefix, "logits");
  uint8_t* mask = bias ? nullptr : static_cast<uint8_t*>(out.data_ptr());
  float* lg = bias ? out.data_ptr<float>() : nullptr;
  const float d = static_cast<float>(delta);
  if (prefix.is_cuda()) {
#ifdef SAFEWORK_WITH_CUDA
    const c10::cuda::CUDAGuard guard(prefix.device());
    at::Tensor scratch = scratch_for(prefix, rows, tops.k);
    check_cuda(safework_credid_green_vocab_cuda(u64(key), u64(prefix), prefix.size(1), tops, n, tau, mask, lg,
                                                d, u64_mut(scratch), stream_of(prefix)),
               "green_vocab");
    return out;
#else
    SWC_NO_CUDA_BUILD;
#endif
  }
  const int threads = at::get_num_threads();
  {
    pybind11::gil_scoped_release no_gil;
    safework::credid::green_vocab_cpu(u64(key), u64(prefix), prefix.size(1), tops, n, tau, mask, lg, d,
                                      threads);
  }
  return out;
}

at::Tensor green_mask(const at::Tensor& key, const at::Tensor& prefix, const at::Tensor& top_ids,
                      const at::Tensor& top_probs, const at::Tensor& rest, int64_t n, double tau) {
  return green_vocab(key, prefix, top_ids, top_probs, rest, n, tau, c10::nullopt, 0.0);
}

void green_bias(const at::Tensor& key, const at::Tensor& prefix, const at::Tensor& top_ids,
                const at::Tensor& top_probs, const at::Tensor& rest, const at::Tensor& logits, double tau,
                double delta) {
  TORCH_CHECK(logits.dim() == 2, "logits must be 2-D (B, n)");
  green_vocab(key, prefix, top_ids, top_probs, rest, logits.size(1), tau, logits, delta);
}

at::Tensor green_table(const at::Tensor& key, const at::Tensor& context, const at::Tensor& tokens,
                       const at::Tensor& top_ids, const at::Tensor& top_probs, const at::Tensor& rest,
                       int64_t p, double tau) {
  check_words(context, "context");
  check_key(key, context);
  TORCH_CHECK(p >= 1, "P must be >= 1, got ", p);
  const int64_t t = context.size(0);
  check(tokens, at::kLong, {t}, context, "tokens");
  const Tops tops = tops_of(top_ids, top_probs, rest, t, context);
  at::Tensor out = at::empty({t, p}, context.options().dtype(at::kBool));
  auto* table = static_cast<uint8_t*>(out.data_ptr());
  if (context.is_cuda()) {
#ifdef SAFEWORK_WITH_CUDA
    const c10::cuda::CUDAGuard guard(context.device());
    check_cuda(
        safework_credid_green_table_cuda(u64(key), u64(context), context.size(1), tokens.data_ptr<int64_t>(),
                                         tops, p, tau, table, stream_of(context)),
        "green_table; it keeps 32*K bytes of shared memory per row, so a huge K can exceed the device");
    return out;
#else
    SWC_NO_CUDA_BUILD;
#endif
  }
  const int threads = at::get_num_threads();
  {
    pybind11::gil_scoped_release no_gil;
    safework::credid::green_table_cpu(u64(key), u64(context), context.size(1), tokens.data_ptr<int64_t>(),
                                      tops, p, tau, table, threads);
  }
  return out;
}

at::Tensor candidate_counts(const at::Tensor& key, const at::Tensor& index_context, const at::Tensor& green,
                            const at::Tensor& slots, int64_t j, int64_t c) {
  check_words(index_context, "index_context");
  check_key(key, index_context);
  const int64_t t = index_context.size(0);
  TORCH_CHECK(green.dim() == 2 && green.size(1) >= 1, "green must be 2-D (T, P) with P >= 1");
  const int64_t p = green.size(1);
  check(green, at::kBool, {t, p}, index_context, "green");
  check(slots, at::kLong, {t}, index_context, "slots");
  TORCH_CHECK(j >= 1 && c >= 1, "n_slots and n_candidates must be >= 1, got ", j, " and ", c);
  at::Tensor counts = at::zeros({j, c}, index_context.options());
  const auto* g = static_cast<const uint8_t*>(green.data_ptr());
  if (index_context.is_cuda()) {
#ifdef SAFEWORK_WITH_CUDA
    const c10::cuda::CUDAGuard guard(index_context.device());
    check_cuda(safework_credid_candidate_counts_cuda(u64(key), u64(index_context), t, index_context.size(1),
                                                     g, p, slots.data_ptr<int64_t>(), j, c,
                                                     counts.data_ptr<int64_t>(), stream_of(index_context)),
               "candidate_counts");
    return counts;
#else
    SWC_NO_CUDA_BUILD;
#endif
  }
  const int threads = at::get_num_threads();
  {
    pybind11::gil_scoped_release no_gil;
    safework::credid::candidate_counts_cpu(u64(key), u64(index_context), t, index_context.size(1), g, p,
                                           slots.data_ptr<int64_t>(), j, c, counts.data_ptr<int64_t>(),
                                           threads);
  }
  return counts;
}

at::Tensor green_from_hashes(const at::Tensor& x_top, const at::Tensor& top_ids, const at::Tensor& top_probs,
                             const at::Tensor& rest, const at::Tensor& x_query, const at::Tensor& query_ids,
                             double tau, bool per_query) {
  check_words(x_query, "x_query");
  const int64_t rows = x_query.size(0);
  const int64_t m = x_query.size(1);
  const Tops tops = tops_of(top_ids, top_probs, rest, rows, x_query);
  check(x_top, at::kLong, {rows, tops.k}, x_query, "x_top");
  check(query_ids, at::kLong, {rows, m}, x_query, "query_ids");
  at::Tensor out = at::empty({rows, m}, x_query.options().dtype(at::kBool));
  auto* o = static_cast<uint8_t*>(out.data_ptr());
  if (x_query.is_cuda()) {
#ifdef SAFEWORK_WITH_CUDA
    const c10::cuda::CUDAGuard guard(x_query.device());
    at::Tensor scratch = scratch_for(x_query, rows, tops.k);
    check_cuda(
        safework_credid_green_from_hashes_cuda(u64(x_top), tops, u64(x_query), query_ids.data_ptr<int64_t>(),
                                               m, tau, per_query, o, u64_mut(scratch), stream_of(x_query)),
        "green_from_hashes");
    return out;
#else
    SWC_NO_CUDA_BUILD;
#endif
  }
  const int threads = at::get_num_threads();
  {
    pybind11::gil_scoped_release no_gil;
    safework::credid::green_from_hashes_cpu(u64(x_top), tops, u64(x_query), query_ids.data_ptr<int64_t>(), m,
                                            tau, per_query, o, threads);
  }
  return out;
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
  namespace py = pybind11;
  m.doc() = "safework CredID green-list kernels; see safework.watermark.kernels for the contract";
  m.def("green_mask", &green_mask, "green(v) for v < n of each row -> (B, n) bool", py::arg("key"),
        py::arg("prefix"), py::arg("top_ids"), py::arg("top_probs"), py::arg("rest"), py::arg("n"),
        py::arg("tau"));
  m.def("green_bias", &green_bias, "logits[b, v] += delta where green, in place", py::arg("key"),
        py::arg("prefix"), py::arg("top_ids"), py::arg("top_probs"), py::arg("rest"), py::arg("logits"),
        py::arg("tau"), py::arg("delta"));
  m.def("green_table", &green_table, "green(tokens[t]) under context[t] ++ [r] for r < P -> (T, P) bool",
        py::arg("key"), py::arg("context"), py::arg("tokens"), py::arg("top_ids"), py::arg("top_probs"),
        py::arg("rest"), py::arg("p"), py::arg("tau"));
  m.def("candidate_counts", &candidate_counts, "per-slot green counts of each candidate -> (J, C) int64",
        py::arg("key"), py::arg("index_context"), py::arg("green"), py::arg("slots"), py::arg("n_slots"),
        py::arg("n_candidates"));
  m.def("green_from_hashes", &green_from_hashes, "the ordering and summation on given hashes (tests)",
        py::arg("x_top"), py::arg("top_ids"), py::arg("top_probs"), py::arg("rest"), py::arg("x_query"),
        py::arg("query_ids"), py::arg("tau"), py::arg("per_query"));
  m.def("with_cuda", &with_cuda, "whether this build contains the CUDA kernels");
}
