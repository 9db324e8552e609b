// CPU (OpenMP) kernels of the CredID green lists. Plain C++: no torch headers, so this file compiles in
// seconds. The per-element arithmetic is credid_math.h, shared with credid_cuda.cu.

// No a*b + c -> fma contraction in this file: the CUDA path never contracts (credid_math.h), and the two must
// round identically. (x86-64 without -mfma cannot contract anyway; aarch64 or -march=native could.)
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <stddef.h>
#include <stdint.h>

#include <vector>

#include "credid.h"
#include "credid_math.h"

namespace safework {
namespace credid {

namespace {
// Below this much work (hashes) a parallel region costs more than it saves.
constexpr int64_t kParallelThreshold = 1 << 14;
// Vocabulary work is split into chunks of this many candidates so a batch of 8 rows spreads over all threads.
constexpr int64_t kVocabChunk = 4096;
// Hashes computed in one (vectorised) loop before the scalar search loop reads them.
constexpr int64_t kBlock = 256;

// As in csrc/core/prf_cpu.cpp: the hashing loops are compiled for AVX2 and for baseline x86-64 and picked at
// load time (GCC function multi-versioning). AVX2 has no fma, and these loops are integer-only anyway.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SWC_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define SWC_MULTIVERSION
#endif

SWC_MULTIVERSION void hash_range(SipState base, uint64_t n_words, int64_t j0, int64_t count, uint64_t* out) {
  for (int64_t i = 0; i < count; ++i) out[i] = hash_last(base, static_cast<uint64_t>(j0 + i), n_words);
}

SWC_MULTIVERSION void hash_ids(SipState base, uint64_t n_words, const int64_t* ids, int64_t count,
                               uint64_t* out) {
  for (int64_t i = 0; i < count; ++i) out[i] = hash_last(base, static_cast<uint64_t>(ids[i]), n_words);
}

struct Entry {
  uint64_t x;
  int64_t id;
  float p;
};

// Sorts by key in O(n) for the hashes seen in practice (uniform): a counting sort on the top bits of x (x <=
// x_max for all entries), then an insertion sort that only fixes the order inside buckets. Same order as any
// other sort (keys are distinct); adversarial hashes just make the insertion sort quadratic.
void sort_entries(std::vector<Entry>& v, std::vector<Entry>& tmp, uint64_t x_max) {
  const size_t n = v.size();
  if (n > 1) {
    constexpr int kBits = 8;
    int shift = 64 - kBits;
    while (shift > 0 && (x_max >> (shift + kBits - 1)) == 0) --shift;  // x_max's top bit is a bucket bit
    uint32_t start[(1 << kBits) + 1] = {};
    for (const Entry& e : v) ++start[(e.x >> shift) + 1];
    for (int b = 0; b < (1 << kBits); ++b) start[b + 1] += start[b];
    tmp.resize(n);
    for (const Entry& e : v) tmp[start[e.x >> shift]++] = e;
    v.swap(tmp);
  }
  for (size_t i = 1; i < n; ++i) {
    const Entry e = v[i];
    size_t j = i;
    for (; j > 0 && key_less(e.x, e.id, v[j - 1].x, v[j - 1].id); --j) v[j] = v[j - 1];
    v[j] = e;
  }
}

// S for one query on its own: only the tops with key <= the query's, sorted, then summed in order. Same bits
// as the table lookup below (a prefix of the same sorted sequence, added in the same order).
double single_sum(const uint64_t* x, const int64_t* ids, const float* probs, int64_t k, uint64_t xq,
                  int64_t iq, std::vector<Entry>& kept, std::vector<Entry>& tmp) {
  kept.resize(static_cast<size_t>(k));
  size_t count = 0;
  for (int64_t i = 0; i < k; ++i) {  // branch-free filter: write always, keep if key <= the query's
    kept[count] = Entry{x[i], ids[i], probs[i]};
    count += key_le(x[i], ids[i], xq, iq);
  }
  kept.resize(count);
  sort_entries(kept, tmp, xq);
  double s = 0.0;
  for (const Entry& e : kept) s = dadd(s, static_cast<double>(e.p));
  return s;
}

// Every row's tops sorted by key (sx, sid), the running sums cs[i] = p_(0) + ... + p_(i) added in that order,
// and a bucket index on the top `bits` bits of x: the entries of bucket h are [start[h], start[h + 1]). A
// query then costs one index load and, on average, under one key comparison instead of a binary search
// (the result is the same count: every entry of a lower bucket has a smaller hash, of a higher one a larger).
struct Tables {
  int64_t k = 0;
  int bits = 0;
  std::vector<uint64_t> x;
  std::vector<int64_t> id;
  std::vector<double> cs;
  std::vector<int32_t> start;

  int64_t buckets() const { return int64_t{1} << bits; }

  double sum(int64_t r, uint64_t xq, int64_t iq) const {
    const int32_t* st = &start[r * (buckets() + 1)];
    const int64_t h = static_cast<int64_t>(xq >> (64 - bits));
    int64_t i = st[h];
    const int64_t end = st[h + 1];
    const uint64_t* sx = &x[r * k];
    const int64_t* sid = &id[r * k];
    while (i < end && key_le(sx[i], sid[i], xq, iq)) ++i;
    return i > 0 ? cs[r * k + i - 1] : 0.0;
  }
};

// The tables of all rows, from given hashes x_top or (x_top == nullptr) hashing prefix ++ [id].
Tables build_tables(const uint64_t* key, const uint64_t* prefix, int64_t w, const uint64_t* x_top, Tops tops,
                    int threads) {
  const int64_t k = tops.k;
  Tables t;
  t.k = k;
  t.bits = 4;
  while (t.bits < 16 && t.buckets() < 4 * k) ++t.bits;  // about 4 buckets per top
  t.x.resize(static_cast<size_t>(tops.rows * k));
  t.id.resize(t.x.size());
  t.cs.resize(t.x.size());
  t.start.resize(static_cast<size_t>(tops.rows * (t.buckets() + 1)));
#pragma omp parallel num_threads(threads) if (tops.rows * k >= kParallelThreshold)
  {
    std::vector<Entry> entries;
    std::vector<Entry> tmp;
    std::vector<uint64_t> xbuf(static_cast<size_t>(k));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < tops.rows; ++r) {
      const int64_t* ids = tops.ids + r * k;
      const float* probs = tops.probs + r * k;
      const uint64_t* x = x_top != nullptr ? x_top + r * k : xbuf.data();
      if (x_top == nullptr) {
        const SipState base = absorb_prefix(key[0], key[1], prefix + r * w, w);
        hash_ids(base, static_cast<uint64_t>(w) + 1, ids, k, xbuf.data());
      }
      entries.resize(static_cast<size_t>(k));
      for (int64_t i = 0; i < k; ++i) entries[i] = Entry{x[i], ids[i], probs[i]};
      sort_entries(entries, tmp, ~uint64_t{0});
      double s = 0.0;
      for (int64_t i = 0; i < k; ++i) {
        t.x[r * k + i] = entries[i].x;
        t.id[r * k + i] = entries[i].id;
        s = dadd(s, static_cast<double>(entries[i].p));
        t.cs[r * k + i] = s;
      }
      int32_t* st = &t.start[r * (t.buckets() + 1)];
      int64_t i = 0;
      for (int64_t h = 0; h <= t.buckets(); ++h) {
        while (i < k && static_cast<int64_t>(t.x[r * k + i] >> (64 - t.bits)) < h) ++i;
        st[h] = static_cast<int32_t>(i);
      }
    }
  }
  return t;
}
}  // namespace

void green_vocab_cpu(const uint64_t* key, const uint64_t* prefix, int64_t w, Tops tops, int64_t n, double tau,
                     uint8_t* mask, float* logits, float delta, int threads) {
  if (tops.rows <= 0 || n <= 0) return;
  if (threads < 1) threads = 1;
  const Tables tb = build_tables(key, prefix, w, nullptr, tops, threads);
  const int64_t chunks_per_row = (n + kVocabChunk - 1) / kVocabChunk;
  const uint64_t n_words = static_cast<uint64_t>(w) + 1;
#pragma omp parallel for schedule(static) num_threads(threads) if (tops.rows * n >= kParallelThreshold)
  for (int64_t c = 0; c < tops.rows * chunks_per_row; ++c) {
    const int64_t r = c / chunks_per_row;
    const int64_t j0 = (c % chunks_per_row) * kVocabChunk;
    const int64_t j1 = j0 + kVocabChunk < n ? j0 + kVocabChunk : n;
    const SipState base = absorb_prefix(key[0], key[1], prefix + r * w, w);
    const double rest = tops.rest[r];
    uint64_t buf[kBlock];
    for (int64_t b0 = j0; b0 < j1; b0 += kBlock) {
      const int64_t count = j1 - b0 < kBlock ? j1 - b0 : kBlock;
      hash_range(base, n_words, b0, count, buf);
      for (int64_t i = 0; i < count; ++i) {
        const int64_t v = b0 + i;
        const bool green = is_green(tb.sum(r, buf[i], v), rest, buf[i], tau);
        if (mask != nullptr) {
          mask[r * n + v] = static_cast<uint8_t>(green);
        } else if (green) {
          logits[r * n + v] = fadd(logits[r * n + v], delta);
        }
      }
    }
  }
}

void green_table_cpu(const uint64_t* key, const uint64_t* context, int64_t w, const int64_t* tokens,
                     Tops tops, int64_t p, double tau, uint8_t* table, int threads) {
  const int64_t units = tops.rows * p;
  if (units <= 0) return;
  if (threads < 1) threads = 1;
  const int64_t k = tops.k;
  const uint64_t n_words = static_cast<uint64_t>(w) + 2;
#pragma omp parallel num_threads(threads) if (units * (k + 1) >= kParallelThreshold)
  {
    std::vector<Entry> kept;
    std::vector<Entry> tmp;
    std::vector<uint64_t> xbuf(static_cast<size_t>(k));
#pragma omp for schedule(static)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t t = u / p;
      SipState base = absorb_prefix(key[0], key[1], context + t * w, w);
      sip_absorb(base, static_cast<uint64_t>(u % p));
      const int64_t* ids = tops.ids + t * k;
      hash_ids(base, n_words, ids, k, xbuf.data());
      const uint64_t xq = hash_last(base, static_cast<uint64_t>(tokens[t]), n_words);
      const double s = single_sum(xbuf.data(), ids, tops.probs + t * k, k, xq, tokens[t], kept, tmp);
      table[u] = static_cast<uint8_t>(is_green(s, tops.rest[t], xq, tau));
    }
  }
}

void candidate_counts_cpu(const uint64_t* key, const uint64_t* index_context, int64_t t, int64_t w,
                          const uint8_t* green, int64_t p, const int64_t* slots, int64_t j, int64_t c,
                          int64_t* counts, int threads) {
  if (t <= 0 || c <= 0 || p <= 0) return;
  if (threads < 1) threads = 1;
  // Each thread owns a range of candidates (columns of counts), so no two threads add to one cell: integer
  // sums in any order, no atomics.
  int64_t width = (c + threads - 1) / threads;
  width = width < 16 ? 16 : (width > kBlock ? kBlock : width);
  const int64_t n_chunks = (c + width - 1) / width;
  const uint64_t n_words = static_cast<uint64_t>(w) + 1;
  const uint64_t pu = static_cast<uint64_t>(p);
#pragma omp parallel for schedule(static) num_threads(threads) if (t * c >= kParallelThreshold)
  for (int64_t ch = 0; ch < n_chunks; ++ch) {
    const int64_t m0 = ch * width;
    const int64_t count = c - m0 < width ? c - m0 : width;
    uint64_t buf[kBlock];
    for (int64_t i = 0; i < t; ++i) {
      const int64_t slot = slots[i];
      if (slot < 0 || slot >= j) continue;
      hash_range(absorb_prefix(key[0], key[1], index_context + i * w, w), n_words, m0, count, buf);
      const uint8_t* g = green + i * p;
      int64_t* row = counts + slot * c + m0;
      for (int64_t m = 0; m < count; ++m) row[m] += g[buf[m] % pu];
    }
  }
}

void green_from_hashes_cpu(const uint64_t* x_top, Tops tops, const uint64_t* x_query,
                           const int64_t* query_ids, int64_t m, double tau, bool per_query, uint8_t* out,
                           int threads) {
  const int64_t units = tops.rows * m;
  if (units <= 0) return;
  if (threads < 1) threads = 1;
  const int64_t k = tops.k;
  if (!per_query) {
    const Tables tb = build_tables(nullptr, nullptr, 0, x_top, tops, threads);
#pragma omp parallel for schedule(static) num_threads(threads) if (units >= kParallelThreshold)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t r = u / m;
      const double s = tb.sum(r, x_query[u], query_ids[u]);
      out[u] = static_cast<uint8_t>(is_green(s, tops.rest[r], x_query[u], tau));
    }
    return;
  }
#pragma omp parallel num_threads(threads) if (units * k >= kParallelThreshold)
  {
    std::vector<Entry> kept;
    std::vector<Entry> tmp;
#pragma omp for schedule(static)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t r = u / m;
      const double s = single_sum(x_top + r * k, tops.ids + r * k, tops.probs + r * k, k, x_query[u],
                                  query_ids[u], kept, tmp);
      out[u] = static_cast<uint8_t>(is_green(s, tops.rest[r], x_query[u], tau));
    }
  }
}

}  // namespace credid
}  // namespace safework
