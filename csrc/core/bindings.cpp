// torch binding of the "prf" op (module safework_prf_<hash>, see builder.py). The only file seeing torch: it
// checks tensors, picks the device path and hands raw pointers to prf_cpu.cpp / prf_cuda.cu.
// The Python dispatcher (safework.core.ops.prf) validates first with friendlier errors; these TORCH_CHECKs
// are the last line of defence for direct callers.
// ATen + the pybind layer only: torch/extension.h would also parse the whole C++ frontend (nn, optim),
// about 40% more compile time for nothing this file uses.
#include <ATen/ATen.h>
#include <torch/python.h>

#include <ATen/Parallel.h>

#include <cstdint>

#include "prf.h"

#ifdef SAFEWORK_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#endif

namespace {

void check_int64_2d(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.scalar_type() == at::kLong, what, " must be int64, got ", t.scalar_type());
  TORCH_CHECK(t.dim() == 2, what, " must be 2-D, got ", t.dim(), "-D");
  TORCH_CHECK(t.is_contiguous(), what, " must be contiguous (call .contiguous())");
}

void check_key(const at::Tensor& key, const at::Tensor& data) {
  TORCH_CHECK(key.scalar_type() == at::kLong && key.dim() == 1 && key.size(0) == 2 && key.is_contiguous(),
              "key must be a contiguous int64 tensor of shape (2,)");
  TORCH_CHECK(key.device() == data.device(), "key is on ", key.device(), " but the data is on ",
              data.device());
}

const uint64_t* u64(const at::Tensor& t) { return reinterpret_cast<const uint64_t*>(t.data_ptr<int64_t>()); }
uint64_t* u64_mut(at::Tensor& t) { return reinterpret_cast<uint64_t*>(t.data_ptr<int64_t>()); }

#ifdef SAFEWORK_WITH_CUDA
void check_cuda(int code) {
  TORCH_CHECK(code == 0, "safework CUDA kernel launch failed: ", safework_cuda_error_string(code));
}
#endif

at::Tensor siphash24(const at::Tensor& key, const at::Tensor& words) {
  check_int64_2d(words, "words");
  check_key(key, words);
  const int64_t n = words.size(0);
  const int64_t w = words.size(1);
  auto out = at::empty({n}, words.options());
  if (words.is_cuda()) {
#ifdef SAFEWORK_WITH_CUDA
    const c10::cuda::CUDAGuard guard(words.device());
    check_cuda(safework_siphash24_rows_cuda(u64(key), u64(words), n, w, u64_mut(out),
                                            c10::cuda::getCurrentCUDAStream().stream()));
    return out;
#else
    TORCH_CHECK(false, "this safework prf build has no CUDA; rebuild on a machine with CUDA torch and nvcc");
#endif
  }
  TORCH_CHECK(words.is_cpu(), "unsupported device ", words.device());
  const uint64_t* k = u64(key);
  const uint64_t* src = u64(words);
  uint64_t* dst = u64_mut(out);
  const int threads = at::get_num_threads();
  {
    pybind11::gil_scoped_release no_gil;
    safework::siphash24_rows_cpu(k, src, n, w, dst, threads);
  }
  return out;
}

at::Tensor siphash24_suffix(const at::Tensor& key, const at::Tensor& prefix, int64_t n) {
  check_int64_2d(prefix, "prefix");
  check_key(key, prefix);
  TORCH_CHECK(n >= 0, "n must be >= 0, got ", n);
  const int64_t rows = prefix.size(0);
  const int64_t w = prefix.size(1);
  auto out = at::empty({rows, n}, prefix.options());
  if (prefix.is_cuda()) {
#ifdef SAFEWORK_WITH_CUDA
    const c10::cuda::CUDAGuard guard(prefix.device());
    check_cuda(safework_siphash24_suffix_cuda(u64(key), u64(prefix), rows, w, n, u64_mut(out),
                                              c10::cuda::getCurrentCUDAStream().stream()));
    return out;
#else
    TORCH_CHECK(false, "this safework prf build has no CUDA; rebuild on a machine with CUDA torch and nvcc");
#endif
  }
  TORCH_CHECK(prefix.is_cpu(), "unsupported device ", prefix.device());
  const uint64_t* k = u64(key);
  const uint64_t* src = u64(prefix);
  uint64_t* dst = u64_mut(out);
  const int threads = at::get_num_threads();
  {
    pybind11::gil_scoped_release no_gil;
    safework::siphash24_suffix_cpu(k, src, rows, w, n, dst, threads);
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
  m.doc() = "safework core native ops (SipHash-2-4 PRF); see safework.core.ops.prf for the contract";
  m.def("siphash24", &siphash24, "SipHash-2-4 of each row of an (N, W) int64 tensor", pybind11::arg("key"),
        pybind11::arg("words"));
  m.def("siphash24_suffix", &siphash24_suffix, "SipHash-2-4 of [prefix row..., j] for j < n",
        pybind11::arg("key"), pybind11::arg("prefix"), pybind11::arg("n"));
  m.def("with_cuda", &with_cuda, "whether this build contains the CUDA kernels");
}
