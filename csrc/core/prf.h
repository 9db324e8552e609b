// Raw-pointer entry points of the PRF kernels, shared by the CPU file, the CUDA file and the torch binding.
// Keeping torch out of these signatures is what lets `nvcc -c prf_cuda.cu` compile anywhere.
//
// All pointers address uint64 words (the binding reinterprets int64 tensors). `key` points at 2 words
// (k0, k1) in the same memory space as the data, so the CUDA path never has to copy the key to the host.
#pragma once

#include <stdint.h>

namespace safework {

// out[i] = SipHash-2-4(key, words[i*w .. i*w+w-1]) for i < n.
void siphash24_rows_cpu(const uint64_t* key, const uint64_t* words, int64_t n, int64_t w, uint64_t* out,
                        int threads);

// out[r*n + j] = SipHash-2-4(key, prefix[r*w .. r*w+w-1] ++ [j]) for r < rows, j < n.
void siphash24_suffix_cpu(const uint64_t* key, const uint64_t* prefix, int64_t rows, int64_t w, int64_t n,
                          uint64_t* out, int threads);

}  // namespace safework

// CUDA launchers (defined in prf_cuda.cu, linked only when the build has CUDA). They return a cudaError_t
// as int (0 = success) and enqueue on `stream` (a cudaStream_t passed as void*).
extern "C" int safework_siphash24_rows_cuda(const uint64_t* key, const uint64_t* words, int64_t n, int64_t w,
                                            uint64_t* out, void* stream);
extern "C" int safework_siphash24_suffix_cuda(const uint64_t* key, const uint64_t* prefix, int64_t rows,
                                              int64_t w, int64_t n, uint64_t* out, void* stream);
extern "C" const char* safework_cuda_error_string(int code);
