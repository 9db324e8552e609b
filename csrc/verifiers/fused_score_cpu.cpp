// CPU (OpenMP) path of the fused verifier scoring op. Plain C++: no torch headers, so this file compiles in
// seconds. The arithmetic lives in fused_math.h and is shared, operation for operation, with the CUDA path.

// No a*b + c -> fma contraction in this file: the CUDA path never contracts (see fused_math.h), and the two
// must round identically. (x86-64 without -mfma cannot contract anyway; aarch64 or -march=native could.)
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <stdint.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "fused_math.h"
#include "fused_score.h"

namespace safework {

namespace {
// Below this many logits a parallel region costs more than it saves.
constexpr int64_t kParallelThreshold = 1 << 15;
// Items scored together: the inner loops run across the items of a block, so they vectorise.
constexpr int64_t kBlock = 64;

// Compiled for AVX2 and for baseline x86-64, picked at load time (GCC function multi-versioning), as in
// csrc/core/prf_cpu.cpp. AVX2 has no fma, so nothing is contracted either way.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SWF_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define SWF_MULTIVERSION
#endif

// Rewards (and scores, probabilities) of items [n0, n0 + count). The same operations, in the same order
// per item, as fused::item_reward (what the CUDA path runs), only interleaved across items: same bits.
// Unlike the per-item version it also computes, then discards, unavailable entries (logits may be garbage).
SWF_MULTIVERSION void score_block(const FusedScoreArgs& a, int64_t n0, int64_t count) {
  float reward[kBlock], m[kBlock], sum[kBlock], score[kBlock];
  // The block's logits of one verifier, transposed: label i of item j at t[i * kBlock + j].
  constexpr int64_t kStackLabels = 32;
  float stack[kStackLabels * kBlock];
  std::vector<float> heap(a.l > kStackLabels ? static_cast<size_t>(a.l * kBlock) : 0);
  float* xt = a.l > kStackLabels ? heap.data() : stack;
  const int64_t stride = a.v * a.l;
  for (int64_t j = 0; j < count; ++j) {
    reward[j] = fused::fmul(a.format_rewards[n0 + j], a.format_weights[n0 + j]);
  }
  for (int64_t v = 0; v < a.v; ++v) {
    int64_t labels = a.label_counts[v];
    labels = labels < 1 ? 1 : (labels > a.l ? a.l : labels);
    const float* x = a.logits + n0 * stride + v * a.l;
    const float* map = a.score_maps + v * a.l;
    for (int64_t j = 0; j < count; ++j) {
      for (int64_t i = 0; i < labels; ++i) xt[i * kBlock + j] = x[j * stride + i];
    }
    const float* t = xt;
    for (int64_t j = 0; j < count; ++j) m[j] = t[j];
    for (int64_t i = 1; i < labels; ++i) {
      for (int64_t j = 0; j < count; ++j) {
        const float xi = t[i * kBlock + j];
        m[j] = fused::fselect((xi > m[j]) | (xi != xi), xi, m[j]);
      }
    }
    for (int64_t j = 0; j < count; ++j) sum[j] = 0.0f;
    for (int64_t i = 0; i < labels; ++i) {
      for (int64_t j = 0; j < count; ++j) {
        sum[j] = fused::fadd(sum[j], fused::exp_nonpositive(fused::fadd(t[i * kBlock + j], -m[j])));
      }
    }
    for (int64_t j = 0; j < count; ++j) score[j] = 0.0f;
    for (int64_t i = 0; i < labels; ++i) {
      const float mi = map[i];
      for (int64_t j = 0; j < count; ++j) {
        const float p = fused::fdiv(fused::exp_nonpositive(fused::fadd(t[i * kBlock + j], -m[j])), sum[j]);
        score[j] = fused::fadd(score[j], fused::fmul(p, mi));
      }
    }
    for (int64_t j = 0; j < count; ++j) {
      const int64_t nv = (n0 + j) * a.v + v;
      const bool available = a.available[nv] != 0;
      const float s = available ? score[j] : 1.0f;
      a.scores[nv] = s;
      reward[j] = fused::fadd(reward[j], fused::fmul(a.weights[nv], s));
      if (a.probabilities != nullptr) {
        float* probs = a.probabilities + nv * a.l;
        for (int64_t i = 0; i < a.l; ++i) {
          probs[i] = available && i < labels
                         ? fused::fdiv(fused::exp_nonpositive(fused::fadd(t[i * kBlock + j], -m[j])), sum[j])
                         : 0.0f;
        }
      }
    }
  }
  for (int64_t j = 0; j < count; ++j) a.rewards[n0 + j] = reward[j];
}
}  // namespace

void fused_score_cpu(const FusedScoreArgs& a, const int64_t* group_ids, int64_t group_size, int threads,
                     bool per_item) {
  const int64_t n = a.n;
  if (n <= 0) return;
  if (threads < 1) threads = 1;
  const bool parallel = n * (a.v > 0 ? a.v : 1) * (a.l > 0 ? a.l : 1) >= kParallelThreshold;

  if (per_item) {
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel)
    for (int64_t i = 0; i < n; ++i) a.rewards[i] = fused::item_reward(a, i);
  } else {
    const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t n0 = b * kBlock;
      score_block(a, n0, n - n0 < kBlock ? n - n0 : kBlock);
    }
  }

  if (group_size > 0) {
    const int64_t groups = n / group_size;
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel)
    for (int64_t g = 0; g < groups; ++g) {
      fused::group_advantages(a.rewards, nullptr, g * group_size, group_size, a.eps, a.unbiased,
                              a.advantages);
    }
    return;
  }

  // Arbitrary ids: visit each group's members in item-index order, like the CUDA path's stable sort. Ids
  // that are already non-decreasing (the usual layout: samples of one prompt side by side) need no sort.
  std::vector<int64_t> order;
  if (!std::is_sorted(group_ids, group_ids + n)) {
    std::vector<std::pair<int64_t, int64_t>> keyed(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) keyed[static_cast<size_t>(i)] = {group_ids[i], i};
    std::sort(keyed.begin(), keyed.end());  // (id, index) pairs are unique: this is a stable sort by id
    order.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = keyed[static_cast<size_t>(i)].second;
  }
  const int64_t* ord = order.empty() ? nullptr : order.data();
  std::vector<int64_t> starts;
  int64_t previous = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t id = group_ids[ord != nullptr ? ord[i] : i];
    if (i == 0 || id != previous) starts.push_back(i);
    previous = id;
  }
  starts.push_back(n);
  const int64_t groups = static_cast<int64_t>(starts.size()) - 1;
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel)
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t begin = starts[static_cast<size_t>(g)];
    fused::group_advantages(a.rewards, ord, begin, starts[static_cast<size_t>(g) + 1] - begin, a.eps,
                            a.unbiased, a.advantages);
  }
}

}  // namespace safework
