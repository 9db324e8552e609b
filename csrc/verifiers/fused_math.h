// The arithmetic of the fused verifier scoring op, written once for host and device so that the CPU and the
// CUDA paths produce the same bits (DESIGN §7).
//
// Why this header avoids <cmath> / CUDA math functions and spells every operation out:
//   * expf differs between glibc and CUDA's libdevice in the last ulp for some inputs, so the softmax uses
//     its own exp (Cody-Waite reduction + degree-7 Taylor polynomial, < 2 ulp on the x <= 0 it is used for).
//   * nvcc contracts a*b + c into one fma by default and a host compiler may too (aarch64, -march=native):
//     on the device every operation therefore goes through the __f*_rn / __d*_rn intrinsics, which are never
//     contracted, and fused_score_cpu.cpp switches contraction off for its whole translation unit, so plain
//     operators there are single IEEE operations with one rounding each.
//   * Every reduction runs sequentially in a fixed order (labels, verifiers, group members by item index).
// Group statistics are accumulated in double: a float sum of 64k rewards loses ~4 digits, and a z-score of
// nearly-equal rewards amplifies any error in the mean.
//
// Plain C++ plus <stdint.h>; compiled into fused_score_cpu.cpp and, through SWF_HD, fused_score_cuda.cu.
#pragma once

#include <stdint.h>

#include "../core/rounded.h"
#include "fused_score.h"

#if defined(__CUDACC__)
#define SWF_HD __host__ __device__ __forceinline__
#else
#define SWF_HD inline
#endif

namespace safework {
namespace fused {

// The rounded operations of ../core/rounded.h, callable as fused::fadd etc. by the kernel files.
using safework::dadd;
using safework::ddiv;
using safework::dmul;
using safework::dsqrt;
using safework::fadd;
using safework::fdiv;
using safework::fmul;

SWF_HD float pow2(int k) {  // 2^k for -126 <= k <= 127, built from its exponent bits
  const int32_t bits = (k + 127) << 23;
#ifdef __CUDA_ARCH__
  return __int_as_float(bits);
#else
  float out;
  __builtin_memcpy(&out, &bits, sizeof(out));
  return out;
#endif
}

// c ? a : b. On the host as integer bit masks: a float ?: whose operands are computed is something GCC will
// not turn into a vector blend under -ftrapping-math (the default), so the CPU loops would stay scalar.
SWF_HD float fselect(bool c, float a, float b) {
#ifdef __CUDA_ARCH__
  return c ? a : b;
#else
  uint32_t ua, ub;
  __builtin_memcpy(&ua, &a, sizeof(ua));
  __builtin_memcpy(&ub, &b, sizeof(ub));
  const uint32_t mask = 0u - static_cast<uint32_t>(c);
  const uint32_t bits = (ua & mask) | (ub & ~mask);
  float out;
  __builtin_memcpy(&out, &bits, sizeof(out));
  return out;
#endif
}

// exp(x) for x <= 0 (a logit minus the row maximum). NaN stays NaN; results below ~2^-149 flush to 0.
// Selects instead of early returns, so the CPU path can vectorise it across items.
SWF_HD float exp_nonpositive(float x) {
  const bool nan = x != x;
  const bool tiny = x < -104.0f;  // also -inf; exp(-104) < 2^-150 rounds to 0 anyway
  const float xc = fselect(nan | tiny, 0.0f, x);
  const float kLog2e = 1.44269504088896341f;
  const float kLn2Hi = 0.693145751953125f;  // 2^-1 * 0x1.62e4p0: few mantissa bits, so k * kLn2Hi is exact
  const float kLn2Lo = 1.42860676533018732e-06f;
  // k = round(x / ln 2) in [-150, 0]; x <= 0, so truncating x/ln2 - 0.5 rounds to nearest (ties away).
  const int k = static_cast<int>(fadd(fmul(xc, kLog2e), -0.5f));
  const float kf = static_cast<float>(k);
  float r = fadd(xc, -fmul(kf, kLn2Hi));
  r = fadd(r, -fmul(kf, kLn2Lo));  // |r| <= ~0.347
  float p = 1.0f / 5040.0f;
  p = fadd(fmul(p, r), 1.0f / 720.0f);
  p = fadd(fmul(p, r), 1.0f / 120.0f);
  p = fadd(fmul(p, r), 1.0f / 24.0f);
  p = fadd(fmul(p, r), 1.0f / 6.0f);
  p = fadd(fmul(p, r), 0.5f);
  p = fadd(fmul(p, r), 1.0f);
  p = fadd(fmul(p, r), 1.0f);
  // 2^k directly while it is a normal float; below, scale by 2^(k+64) (exact) and round once by 2^-64.
  const bool normal = k >= -126;
  const float scaled = fmul(fmul(p, pow2(normal ? k : k + 64)), pow2(normal ? 0 : -64));
  return fselect(nan, x, fselect(tiny, 0.0f, scaled));
}

// Softmax over the first `count` of `x`, then sum_l p_l * map[l]. Writes the probabilities (padding 0) to
// `probs` unless it is nullptr. NaN logits give NaN; +inf or an all -inf row gives NaN (as torch.softmax).
SWF_HD float label_score(const float* x, int64_t count, int64_t l, const float* map, float* probs) {
  if (count < 1) count = 1;
  if (count > l) count = l;
  float m = x[0];
  for (int64_t i = 1; i < count; ++i) {
    const float xi = x[i];
    if (xi > m || xi != xi) m = xi;
  }
  // The first kCached exponentials are kept; any further ones are recomputed (same bits either way).
  constexpr int64_t kCached = 16;
  float cached[kCached];
  float sum = 0.0f;
  for (int64_t i = 0; i < count; ++i) {
    const float e = exp_nonpositive(fadd(x[i], -m));
    if (i < kCached) cached[i] = e;
    sum = fadd(sum, e);
  }
  float score = 0.0f;
  for (int64_t i = 0; i < count; ++i) {
    const float e = i < kCached ? cached[i] : exp_nonpositive(fadd(x[i], -m));
    const float p = fdiv(e, sum);
    if (probs != nullptr) probs[i] = p;
    score = fadd(score, fmul(p, map[i]));
  }
  if (probs != nullptr) {
    for (int64_t i = count; i < l; ++i) probs[i] = 0.0f;
  }
  return score;
}

// Item n: writes its probabilities (if requested) and mapped scores and returns its reward
// format * format_weight + weight_0 * score_0 + weight_1 * score_1 + ... (in verifier order).
SWF_HD float item_reward(const FusedScoreArgs& a, int64_t n) {
  float reward = fmul(a.format_rewards[n], a.format_weights[n]);
  for (int64_t v = 0; v < a.v; ++v) {
    const int64_t nv = n * a.v + v;
    float* probs = a.probabilities != nullptr ? a.probabilities + nv * a.l : nullptr;
    float score;
    if (a.available[nv] != 0) {
      score = label_score(a.logits + nv * a.l, a.label_counts[v], a.l, a.score_maps + v * a.l, probs);
    } else {
      score = 1.0f;  // spec §4: a component whose verifier is not loaded contributes 1.0 * weight
      if (probs != nullptr) {
        for (int64_t i = 0; i < a.l; ++i) probs[i] = 0.0f;
      }
    }
    a.scores[nv] = score;
    reward = fadd(reward, fmul(a.weights[nv], score));
  }
  return reward;
}

// Z-score of one group: members are rewards[idx(j)] for j < count, idx(j) = order ? order[begin + j] :
// begin + j; writes advantages[idx(j)]. Groups of one, and groups whose rewards are all equal, get 0.
SWF_HD void group_advantages(const float* rewards, const int64_t* order, int64_t begin, int64_t count,
                             double eps, int unbiased, float* advantages) {
  if (count <= 0) return;
  if (count == 1) {
    advantages[order != nullptr ? order[begin] : begin] = 0.0f;
    return;
  }
  double sum = 0.0;
  for (int64_t j = 0; j < count; ++j) {
    const int64_t i = order != nullptr ? order[begin + j] : begin + j;
    sum = dadd(sum, static_cast<double>(rewards[i]));
  }
  const double mean = ddiv(sum, static_cast<double>(count));
  double squares = 0.0;
  for (int64_t j = 0; j < count; ++j) {
    const int64_t i = order != nullptr ? order[begin + j] : begin + j;
    const double d = dadd(static_cast<double>(rewards[i]), -mean);
    squares = dadd(squares, dmul(d, d));
  }
  const double var = ddiv(squares, static_cast<double>(unbiased ? count - 1 : count));
  const double sd = dsqrt(var);
  const double denom = dadd(sd, eps);
  for (int64_t j = 0; j < count; ++j) {
    const int64_t i = order != nullptr ? order[begin + j] : begin + j;
    const double d = dadd(static_cast<double>(rewards[i]), -mean);
    advantages[i] = sd == 0.0 ? 0.0f : static_cast<float>(ddiv(d, denom));
  }
}

}  // namespace fused
}  // namespace safework
