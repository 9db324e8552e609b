// Raw-pointer entry points of the CredID green-list kernels, shared by credid_cpu.cpp, credid_cuda.cu and
// the torch binding. No torch here, so `nvcc -c credid_cuda.cu` compiles anywhere.
//
// The contract (safework.watermark.kernels repeats it): for a row with prefix words `prefix`, top tokens
// `ids[0..k)` (distinct) with float32 probabilities `probs` and float64 rest mass `rest`,
//   x(v)   = SipHash-2-4(key, prefix ++ [v])            (uint64; csrc/core/siphash.h)
//   key(v) = (x(v), v)                                  (lexicographic: unsigned hash, then id)
//   S(v)   = sum of double(probs[i]) over tops with key(ids[i]) <= key(v), added one by one in ascending
//            key order starting from 0.0
//   cum(v) = S(v) + rest * ((x(v) >> 11) * 2^-53)       (one multiply, then one add; never an fma)
//   green(v) = cum(v) > tau
// All pointers address memory of one device; int64 tensors are read as uint64 words where they are hashed.
#pragma once

#include <stdint.h>

namespace safework {
namespace credid {

// The top tokens of `rows` rows: row r owns ids/probs[r*k .. r*k+k-1] and rest[r].
struct Tops {
  const int64_t* ids;
  const float* probs;
  const double* rest;
  int64_t rows;
  int64_t k;
};

// green(v) for v < n of each row, prefix = prefix[r*w .. r*w+w-1]. Exactly one output: mask (rows, n) gets
// 0/1, or (mask == nullptr) logits (rows, n) get `delta` added where green, in place.
void green_vocab_cpu(const uint64_t* key, const uint64_t* prefix, int64_t w, Tops tops, int64_t n, double tau,
                     uint8_t* mask, float* logits, float delta, int threads);

// table[t*p + r] = green(tokens[t]) for the row with prefix context[t] ++ [r] (w + 1 words) and tops t.
void green_table_cpu(const uint64_t* key, const uint64_t* context, int64_t w, const int64_t* tokens,
                     Tops tops, int64_t p, double tau, uint8_t* table, int threads);

// counts[slots[t]*c + m] += green[t*p + (SipHash(key, index_context[t] ++ [m]) mod p)] for m < c and every t
// with 0 <= slots[t] < j (others are skipped). `counts` (j, c) must be zeroed by the caller.
void candidate_counts_cpu(const uint64_t* key, const uint64_t* index_context, int64_t t, int64_t w,
                          const uint8_t* green, int64_t p, const int64_t* slots, int64_t j, int64_t c,
                          int64_t* counts, int threads);

// The ordering and summation alone, on given hashes (tests: hash ties cannot be provoked through SipHash).
// Query (r, i) has hash x_query[r*m + i] and id query_ids[r*m + i]; row r's tops have hashes x_top[r*k ..].
// per_query = false runs green_vocab's code (sorted table + lookup), true green_table's (per-query
// filter + sort); both must give the same bits.
void green_from_hashes_cpu(const uint64_t* x_top, Tops tops, const uint64_t* x_query,
                           const int64_t* query_ids, int64_t m, double tau, bool per_query, uint8_t* out,
                           int threads);

// Words of device scratch the CUDA green_vocab / green_from_hashes(per_query = false) need.
inline int64_t table_scratch_words(int64_t rows, int64_t k) { return 4 * rows * k; }

}  // namespace credid
}  // namespace safework

// CUDA launchers (credid_cuda.cu, linked only when the build has CUDA): same arguments as the CPU functions
// (device pointers; `tops` is a host struct holding device pointers) plus `scratch` of table_scratch_words
// uint64 words where noted. They return a cudaError_t as int (0 = success) and enqueue on `stream` (a
// cudaStream_t passed as void*).
extern "C" int safework_credid_green_vocab_cuda(const uint64_t* key, const uint64_t* prefix, int64_t w,
                                                safework::credid::Tops tops, int64_t n, double tau,
                                                uint8_t* mask, float* logits, float delta, uint64_t* scratch,
                                                void* stream);
extern "C" int safework_credid_green_table_cuda(const uint64_t* key, const uint64_t* context, int64_t w,
                                                const int64_t* tokens, safework::credid::Tops tops, int64_t p,
                                                double tau, uint8_t* table, void* stream);
extern "C" int safework_credid_candidate_counts_cuda(const uint64_t* key, const uint64_t* index_context,
                                                     int64_t t, int64_t w, const uint8_t* green, int64_t p,
                                                     const int64_t* slots, int64_t j, int64_t c,
                                                     int64_t* counts, void* stream);
extern "C" int safework_credid_green_from_hashes_cuda(const uint64_t* x_top, safework::credid::Tops tops,
                                                      const uint64_t* x_query, const int64_t* query_ids,
                                                      int64_t m, double tau, bool per_query, uint8_t* out,
                                                      uint64_t* scratch, void* stream);
extern "C" const char* safework_credid_cuda_error_string(int code);
