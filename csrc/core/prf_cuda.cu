// CUDA kernels of the SipHash-2-4 PRF. Only CUDA headers and <stdint.h>, raw pointers, extern "C" launchers:
// `nvcc -std=c++17 -c prf_cuda.cu` compiles it with no torch around; bindings.cpp calls the launchers.
#include <cuda_runtime.h>
#include <stdint.h>

#include "prf.h"
#include "siphash.h"

namespace {

constexpr int kThreads = 256;
// Candidates per thread in the suffix kernel: the prefix is absorbed once and reused this many times.
constexpr int kItemsPerThread = 8;

__global__ void rows_kernel(const uint64_t* __restrict__ key, const uint64_t* __restrict__ words, int64_t n,
                            int64_t w, uint64_t* __restrict__ out) {
  const uint64_t k0 = key[0];
  const uint64_t k1 = key[1];
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[i] = safework::siphash24_words(k0, k1, words + i * w, w);
  }
}

// grid.x covers candidates (kThreads * kItemsPerThread per block), grid.y strides over rows.
__global__ void suffix_kernel(const uint64_t* __restrict__ key, const uint64_t* __restrict__ prefix,
                              int64_t rows, int64_t w, int64_t n, uint64_t* __restrict__ out) {
  const uint64_t k0 = key[0];
  const uint64_t k1 = key[1];
  const uint64_t n_words = static_cast<uint64_t>(w) + 1;
  const int64_t block_start = static_cast<int64_t>(blockIdx.x) * blockDim.x * kItemsPerThread;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    safework::SipState base = safework::sip_init(k0, k1);
    for (int64_t i = 0; i < w; ++i) safework::sip_absorb(base, prefix[r * w + i]);
    uint64_t* row_out = out + r * n;
#pragma unroll
    for (int item = 0; item < kItemsPerThread; ++item) {
      // Consecutive threads write consecutive candidates: coalesced stores.
      const int64_t j = block_start + static_cast<int64_t>(item) * blockDim.x + threadIdx.x;
      if (j < n) {
        safework::SipState s = base;
        safework::sip_absorb(s, static_cast<uint64_t>(j));
        row_out[j] = safework::sip_finish(s, n_words);
      }
    }
  }
}

}  // namespace

extern "C" int safework_siphash24_rows_cuda(const uint64_t* key, const uint64_t* words, int64_t n, int64_t w,
                                            uint64_t* out, void* stream) {
  if (n <= 0) return 0;
  int64_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks > 65535 * 32) blocks = 65535 * 32;  // the grid-stride loop covers the rest
  rows_kernel<<<static_cast<unsigned int>(blocks), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      key, words, n, w, out);
  return static_cast<int>(cudaGetLastError());
}

extern "C" int safework_siphash24_suffix_cuda(const uint64_t* key, const uint64_t* prefix, int64_t rows,
                                              int64_t w, int64_t n, uint64_t* out, void* stream) {
  if (rows <= 0 || n <= 0) return 0;
  const int64_t per_block = static_cast<int64_t>(kThreads) * kItemsPerThread;
  const int64_t blocks_x = (n + per_block - 1) / per_block;
  if (blocks_x > 0x7fffffffLL) return static_cast<int>(cudaErrorInvalidValue);
  const int64_t blocks_y = rows < 65535 ? rows : 65535;
  dim3 grid(static_cast<unsigned int>(blocks_x), static_cast<unsigned int>(blocks_y));
  suffix_kernel<<<grid, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(key, prefix, rows, w, n, out);
  return static_cast<int>(cudaGetLastError());
}

extern "C" const char* safework_cuda_error_string(int code) {
  return cudaGetErrorString(static_cast<cudaError_t>(code));
}
