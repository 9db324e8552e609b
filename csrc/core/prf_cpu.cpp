// CPU (OpenMP) kernels of the SipHash-2-4 PRF. Plain C++: no torch headers, so this file compiles in seconds.
#include <stdint.h>

#include "prf.h"
#include "siphash.h"

namespace safework {

namespace {
// Below this many hashes a parallel region costs more than it saves.
constexpr int64_t kParallelThreshold = 1 << 14;
// Suffix work is split into chunks of this many candidates so any number of rows spreads over all threads.
constexpr int64_t kSuffixChunk = 4096;

// The hot loops are compiled twice, for AVX2 and for baseline x86-64, and the loader picks one at run time
// (GCC function multi-versioning): AVX2 hashes four candidates per instruction where the compiler
// vectorises (about 2x on the suffix loop), while the built library still runs on any x86-64 CPU.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SW_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define SW_MULTIVERSION
#endif

SW_MULTIVERSION void rows_block(uint64_t k0, uint64_t k1, const uint64_t* words, int64_t begin, int64_t end,
                                int64_t w, uint64_t* out) {
  for (int64_t i = begin; i < end; ++i) out[i] = siphash24_words(k0, k1, words + i * w, w);
}

SW_MULTIVERSION void suffix_block(SipState base, uint64_t n_words, int64_t j0, int64_t j1,
                                  uint64_t* row_out) {
  for (int64_t j = j0; j < j1; ++j) {
    SipState s = base;
    sip_absorb(s, static_cast<uint64_t>(j));
    row_out[j] = sip_finish(s, n_words);
  }
}
}  // namespace

void siphash24_rows_cpu(const uint64_t* key, const uint64_t* words, int64_t n, int64_t w, uint64_t* out,
                        int threads) {
  const uint64_t k0 = key[0];
  const uint64_t k1 = key[1];
  if (threads < 1) threads = 1;
  constexpr int64_t kRowsChunk = 4096;
  const int64_t chunks = (n + kRowsChunk - 1) / kRowsChunk;
#pragma omp parallel for schedule(static) num_threads(threads) if (n >= kParallelThreshold)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kRowsChunk;
    rows_block(k0, k1, words, begin, begin + kRowsChunk < n ? begin + kRowsChunk : n, w, out);
  }
}

void siphash24_suffix_cpu(const uint64_t* key, const uint64_t* prefix, int64_t rows, int64_t w, int64_t n,
                          uint64_t* out, int threads) {
  const uint64_t k0 = key[0];
  const uint64_t k1 = key[1];
  if (threads < 1) threads = 1;
  const int64_t chunks_per_row = (n + kSuffixChunk - 1) / kSuffixChunk;
  const int64_t total_chunks = rows * chunks_per_row;
  const uint64_t n_words = static_cast<uint64_t>(w) + 1;
#pragma omp parallel for schedule(static) num_threads(threads) if (rows * n >= kParallelThreshold)
  for (int64_t c = 0; c < total_chunks; ++c) {
    const int64_t r = c / chunks_per_row;
    const int64_t j0 = (c % chunks_per_row) * kSuffixChunk;
    const int64_t j1 = (j0 + kSuffixChunk < n) ? j0 + kSuffixChunk : n;
    // The prefix is absorbed once per chunk; each candidate then costs one block + finalisation.
    SipState base = sip_init(k0, k1);
    for (int64_t i = 0; i < w; ++i) sip_absorb(base, prefix[r * w + i]);
    suffix_block(base, n_words, j0, j1, out + r * n);
  }
}

}  // namespace safework
