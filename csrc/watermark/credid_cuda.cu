// CUDA kernels of the CredID green lists. Only CUDA headers, <stdint.h> and the local plain headers, raw
// pointers, extern "C" launchers: `nvcc -std=c++17 -c credid_cuda.cu` compiles it with no torch around.
// The arithmetic is credid_math.h, shared with the CPU path, so both give the same bits.
//
// Launch plans:
//   * green_vocab (mask / bias): prepare_kernel, one block per row, hashes the row's tops, sorts them by rank
//     (rank = number of smaller keys; keys are distinct) and writes the running sums; query_kernel then gives
//     each thread candidates, a hash and a binary search each. The tables live in caller-provided scratch.
//   * green_table: one warp per (t, r) row and a slice of shared memory per warp: lanes hash the tops, keep
//     the ones whose key is <= the token's (ballot compaction, deterministic positions), rank them, and lane
//     0 adds their masses in ascending key order. Only about half the tops take part in the O(K^2) ranking.
//   * candidate_counts: one thread per candidate m over a run of rows, local sums per slot flushed with
//     integer atomics (exact in any order).
#include <cuda_runtime.h>
#include <stdint.h>

#include "credid.h"
#include "credid_math.h"

namespace {

namespace cm = safework::credid;
using safework::SipState;
using safework::credid::Tops;

constexpr int kThreads = 256;
constexpr int kItemsPerThread = 4;            // candidates per thread in query_kernel
constexpr int64_t kRowsPerThread = 64;        // rows per thread in candidate_kernel
constexpr int64_t kMaxBlocks = 65535LL * 32;  // grid-stride loops cover the rest
constexpr unsigned kFull = 0xffffffffu;

// Layout of the scratch words: hashes in input order, then sorted hashes, sorted ids, running sums.
struct Table {
  uint64_t* raw;
  uint64_t* x;
  int64_t* id;
  double* cs;
};

Table table_of(uint64_t* scratch, int64_t rows, int64_t k) {
  const int64_t n = rows * k;
  return Table{scratch, scratch + n, reinterpret_cast<int64_t*>(scratch + 2 * n),
               reinterpret_cast<double*>(scratch + 3 * n)};
}

// x_top == nullptr: hash prefix ++ [id] (w + 1 words); else take the given hashes.
__global__ void prepare_kernel(const uint64_t* __restrict__ key, const uint64_t* __restrict__ prefix,
                               int64_t w, const uint64_t* __restrict__ x_top, Tops tops, Table tb) {
  const int64_t k = tops.k;
  for (int64_t r = blockIdx.x; r < tops.rows; r += gridDim.x) {
    const int64_t* ids = tops.ids + r * k;
    uint64_t* raw = tb.raw + r * k;
    if (x_top == nullptr) {
      const SipState base = cm::absorb_prefix(key[0], key[1], prefix + r * w, w);
      for (int64_t i = threadIdx.x; i < k; i += blockDim.x) {
        raw[i] = cm::hash_last(base, static_cast<uint64_t>(ids[i]), static_cast<uint64_t>(w) + 1);
      }
    } else {
      for (int64_t i = threadIdx.x; i < k; i += blockDim.x) raw[i] = x_top[r * k + i];
    }
    __syncthreads();
    for (int64_t i = threadIdx.x; i < k; i += blockDim.x) {
      const uint64_t xi = raw[i];
      const int64_t ii = ids[i];
      int64_t rank = 0;
      for (int64_t j = 0; j < k; ++j) rank += cm::key_less(raw[j], ids[j], xi, ii);
      tb.x[r * k + rank] = xi;
      tb.id[r * k + rank] = ii;
      tb.cs[r * k + rank] = static_cast<double>(tops.probs[r * k + i]);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      double s = 0.0;
      for (int64_t i = 0; i < k; ++i) {
        s = cm::dadd(s, tb.cs[r * k + i]);
        tb.cs[r * k + i] = s;
      }
    }
    __syncthreads();
  }
}

// grid.x covers candidates (kThreads * kItemsPerThread per block), grid.y strides over rows. Queries are
// v < n hashed under prefix (x_query == nullptr), or the given x_query / query_ids (rows, n).
__global__ void query_kernel(const uint64_t* __restrict__ key, const uint64_t* __restrict__ prefix, int64_t w,
                             const uint64_t* __restrict__ x_query, const int64_t* __restrict__ query_ids,
                             Tops tops, int64_t n, double tau, Table tb, uint8_t* __restrict__ mask,
                             float* __restrict__ logits, float delta) {
  const int64_t k = tops.k;
  const int64_t block_start = static_cast<int64_t>(blockIdx.x) * blockDim.x * kItemsPerThread;
  for (int64_t r = blockIdx.y; r < tops.rows; r += gridDim.y) {
    SipState base{0, 0, 0, 0};
    if (x_query == nullptr) base = cm::absorb_prefix(key[0], key[1], prefix + r * w, w);
    const uint64_t* sx = tb.x + r * k;
    const int64_t* sid = tb.id + r * k;
    const double* cs = tb.cs + r * k;
    const double rest = tops.rest[r];
#pragma unroll
    for (int item = 0; item < kItemsPerThread; ++item) {
      const int64_t j = block_start + static_cast<int64_t>(item) * blockDim.x + threadIdx.x;
      if (j >= n) continue;
      const int64_t u = r * n + j;
      const uint64_t xq = x_query != nullptr
                              ? x_query[u]
                              : cm::hash_last(base, static_cast<uint64_t>(j), static_cast<uint64_t>(w) + 1);
      const int64_t iq = x_query != nullptr ? query_ids[u] : j;
      const int64_t pos = cm::count_le(sx, sid, k, xq, iq);
      const bool green = cm::is_green(pos > 0 ? cs[pos - 1] : 0.0, rest, xq, tau);
      if (mask != nullptr) {
        mask[u] = static_cast<uint8_t>(green);
      } else if (green) {
        logits[u] = cm::fadd(logits[u], delta);
      }
    }
  }
}

// One warp per unit u = t * m + r. Hash mode (x_top == nullptr): tops and token tokens[t] hashed under
// context[t] ++ [r]. Given mode: tops x_top[t*k ..], query x_query[u] with id query_ids[u].
// Shared memory per warp: 4 arrays of k words (hashes, ids, compacted masses, sorted masses).
__global__ void single_kernel(const uint64_t* __restrict__ key, const uint64_t* __restrict__ context,
                              int64_t w, const int64_t* __restrict__ tokens,
                              const uint64_t* __restrict__ x_top, const uint64_t* __restrict__ x_query,
                              const int64_t* __restrict__ query_ids, Tops tops, int64_t m, double tau,
                              uint8_t* __restrict__ out) {
  extern __shared__ uint64_t smem[];
  const int64_t k = tops.k;
  const int warps = blockDim.x / 32;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  uint64_t* xs = smem + static_cast<int64_t>(warp) * 4 * k;
  int64_t* sid = reinterpret_cast<int64_t*>(xs + k);
  double* mass = reinterpret_cast<double*>(xs + 2 * k);
  double* sorted = reinterpret_cast<double*>(xs + 3 * k);
  const unsigned lanes_below = (1u << lane) - 1u;
  const int64_t units = tops.rows * m;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * warps;
  for (int64_t u = static_cast<int64_t>(blockIdx.x) * warps + warp; u < units; u += stride) {
    const int64_t t = u / m;
    const int64_t* ids = tops.ids + t * k;
    const float* probs = tops.probs + t * k;
    uint64_t xq;
    int64_t iq;
    if (x_top == nullptr) {
      SipState base = cm::absorb_prefix(key[0], key[1], context + t * w, w);
      safework::sip_absorb(base, static_cast<uint64_t>(u % m));
      const uint64_t n_words = static_cast<uint64_t>(w) + 2;
      for (int64_t i = lane; i < k; i += 32)
        xs[i] = cm::hash_last(base, static_cast<uint64_t>(ids[i]), n_words);
      iq = tokens[t];
      xq = cm::hash_last(base, static_cast<uint64_t>(iq), n_words);
    } else {
      for (int64_t i = lane; i < k; i += 32) xs[i] = x_top[t * k + i];
      iq = query_ids[u];
      xq = x_query[u];
    }
    for (int64_t i = lane; i < k; i += 32) sid[i] = ids[i];
    __syncwarp();
    // Compact the tops with key <= the query's to the front, in index order (positions from ballots). A
    // write lands at an index <= its source, below every entry not yet read.
    int64_t count = 0;
    for (int64_t i0 = 0; i0 < k; i0 += 32) {
      const int64_t i = i0 + lane;
      uint64_t xi = 0;
      int64_t ii = 0;
      bool take = false;
      if (i < k) {
        xi = xs[i];
        ii = sid[i];
        take = cm::key_le(xi, ii, xq, iq);
      }
      const unsigned ballot = __ballot_sync(kFull, take);
      __syncwarp();
      if (take) {
        const int64_t pos = count + __popc(ballot & lanes_below);
        xs[pos] = xi;
        sid[pos] = ii;
        mass[pos] = static_cast<double>(probs[i]);
      }
      count += __popc(ballot);
      __syncwarp();
    }
    // Rank = number of smaller keys among the kept ones (all smaller keys are kept): their sorted position.
    for (int64_t c = lane; c < count; c += 32) {
      const uint64_t xc = xs[c];
      const int64_t ic = sid[c];
      int64_t rank = 0;
      for (int64_t d = 0; d < count; ++d) rank += cm::key_less(xs[d], sid[d], xc, ic);
      sorted[rank] = mass[c];
    }
    __syncwarp();
    if (lane == 0) {
      double s = 0.0;
      for (int64_t c = 0; c < count; ++c) s = cm::dadd(s, sorted[c]);
      out[u] = static_cast<uint8_t>(cm::is_green(s, tops.rest[t], xq, tau));
    }
    __syncwarp();
  }
}

// grid.x covers candidates m, grid.y strides over runs of kRowsPerThread rows.
__global__ void candidate_kernel(const uint64_t* __restrict__ key, const uint64_t* __restrict__ index_context,
                                 int64_t t, int64_t w, const uint8_t* __restrict__ green, int64_t p,
                                 const int64_t* __restrict__ slots, int64_t j, int64_t c,
                                 unsigned long long* __restrict__ counts) {
  const int64_t m = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (m >= c) return;
  const uint64_t n_words = static_cast<uint64_t>(w) + 1;
  const uint64_t pu = static_cast<uint64_t>(p);
  for (int64_t t0 = static_cast<int64_t>(blockIdx.y) * kRowsPerThread; t0 < t;
       t0 += static_cast<int64_t>(gridDim.y) * kRowsPerThread) {
    const int64_t t1 = t0 + kRowsPerThread < t ? t0 + kRowsPerThread : t;
    int64_t current = -1;
    unsigned long long sum = 0;
    for (int64_t i = t0; i < t1; ++i) {
      const int64_t slot = slots[i];
      if (slot < 0 || slot >= j) continue;
      const SipState base = cm::absorb_prefix(key[0], key[1], index_context + i * w, w);
      const uint64_t x = cm::hash_last(base, static_cast<uint64_t>(m), n_words);
      if (slot != current) {
        if (sum != 0) atomicAdd(counts + current * c + m, sum);
        current = slot;
        sum = 0;
      }
      sum += green[i * p + static_cast<int64_t>(x % pu)];
    }
    if (sum != 0) atomicAdd(counts + current * c + m, sum);
  }
}

unsigned int capped(int64_t blocks, int64_t cap) {
  if (blocks > cap) blocks = cap;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned int>(blocks);
}

int launch_vocab(const uint64_t* key, const uint64_t* prefix, int64_t w, const uint64_t* x_top,
                 const uint64_t* x_query, const int64_t* query_ids, Tops tops, int64_t n, double tau,
                 uint8_t* mask, float* logits, float delta, uint64_t* scratch, cudaStream_t stream) {
  if (tops.rows <= 0 || n <= 0) return 0;
  const Table tb = table_of(scratch, tops.rows, tops.k);
  prepare_kernel<<<capped(tops.rows, 65535), kThreads, 0, stream>>>(key, prefix, w, x_top, tops, tb);
  const int code = static_cast<int>(cudaGetLastError());
  if (code != 0) return code;
  const int64_t per_block = static_cast<int64_t>(kThreads) * kItemsPerThread;
  const int64_t blocks_x = (n + per_block - 1) / per_block;
  if (blocks_x > 0x7fffffffLL) return static_cast<int>(cudaErrorInvalidValue);
  const dim3 grid(static_cast<unsigned int>(blocks_x), capped(tops.rows, 65535));
  query_kernel<<<grid, kThreads, 0, stream>>>(key, prefix, w, x_query, query_ids, tops, n, tau, tb, mask,
                                              logits, delta);
  return static_cast<int>(cudaGetLastError());
}

int launch_single(const uint64_t* key, const uint64_t* context, int64_t w, const int64_t* tokens,
                  const uint64_t* x_top, const uint64_t* x_query, const int64_t* query_ids, Tops tops,
                  int64_t m, double tau, uint8_t* out, cudaStream_t stream) {
  const int64_t units = tops.rows * m;
  if (units <= 0) return 0;
  const int64_t per_warp = 4 * tops.k * static_cast<int64_t>(sizeof(uint64_t));
  constexpr int64_t kDefaultShared = 48 * 1024;
  int64_t warps = kDefaultShared / per_warp;
  if (warps > kThreads / 32) warps = kThreads / 32;
  if (warps < 1) {
    // Beyond 48 KiB a kernel must opt in, up to the device's limit (227 KiB on H100: k <= ~7000).
    warps = 1;
    int device = 0;
    int limit = 0;
    cudaGetDevice(&device);
    cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    if (per_warp > limit) return static_cast<int>(cudaErrorInvalidValue);
    const cudaError_t set = cudaFuncSetAttribute(single_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 static_cast<int>(per_warp));
    if (set != cudaSuccess) return static_cast<int>(set);
  }
  const int64_t blocks = (units + warps - 1) / warps;
  single_kernel<<<capped(blocks, kMaxBlocks), static_cast<unsigned int>(warps * 32),
                  static_cast<size_t>(warps * per_warp), stream>>>(key, context, w, tokens, x_top, x_query,
                                                                   query_ids, tops, m, tau, out);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

extern "C" int safework_credid_green_vocab_cuda(const uint64_t* key, const uint64_t* prefix, int64_t w,
                                                safework::credid::Tops tops, int64_t n, double tau,
                                                uint8_t* mask, float* logits, float delta, uint64_t* scratch,
                                                void* stream) {
  return launch_vocab(key, prefix, w, nullptr, nullptr, nullptr, tops, n, tau, mask, logits, delta, scratch,
                      static_cast<cudaStream_t>(stream));
}

extern "C" int safework_credid_green_table_cuda(const uint64_t* key, const uint64_t* context, int64_t w,
                                                const int64_t* tokens, safework::credid::Tops tops, int64_t p,
                                                double tau, uint8_t* table, void* stream) {
  return launch_single(key, context, w, tokens, nullptr, nullptr, nullptr, tops, p, tau, table,
                       static_cast<cudaStream_t>(stream));
}

extern "C" int safework_credid_candidate_counts_cuda(const uint64_t* key, const uint64_t* index_context,
                                                     int64_t t, int64_t w, const uint8_t* green, int64_t p,
                                                     const int64_t* slots, int64_t j, int64_t c,
                                                     int64_t* counts, void* stream) {
  if (t <= 0 || c <= 0 || p <= 0) return 0;
  const int64_t blocks_x = (c + kThreads - 1) / kThreads;
  const int64_t blocks_y = (t + kRowsPerThread - 1) / kRowsPerThread;
  const dim3 grid(capped(blocks_x, 0x7fffffffLL), capped(blocks_y, 65535));
  candidate_kernel<<<grid, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      key, index_context, t, w, green, p, slots, j, c, reinterpret_cast<unsigned long long*>(counts));
  return static_cast<int>(cudaGetLastError());
}

extern "C" int safework_credid_green_from_hashes_cuda(const uint64_t* x_top, safework::credid::Tops tops,
                                                      const uint64_t* x_query, const int64_t* query_ids,
                                                      int64_t m, double tau, bool per_query, uint8_t* out,
                                                      uint64_t* scratch, void* stream) {
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (per_query)
    return launch_single(nullptr, nullptr, 0, nullptr, x_top, x_query, query_ids, tops, m, tau, out, s);
  return launch_vocab(nullptr, nullptr, 0, x_top, x_query, query_ids, tops, m, tau, out, nullptr, 0.0f,
                      scratch, s);
}

extern "C" const char* safework_credid_cuda_error_string(int code) {
  return cudaGetErrorString(static_cast<cudaError_t>(code));
}
