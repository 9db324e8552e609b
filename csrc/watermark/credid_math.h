// The arithmetic of the CredID kernels, written once for host and device so CPU and CUDA give the same bits.
//
// Why it is spelled out:
//   * nvcc contracts a*b + c into an fma by default: cum = S + rest * u would then round once instead of
//     twice. On the device every float operation goes through __d*_rn / __f*_rn (never contracted) and
//     credid_cpu.cpp turns contraction off, so both sides round each operation separately (a test greps the
//     PTX for fma.rn.f64).
//   * The order of the float64 sum is part of the contract (ascending (hash, id) key), so any correct sort
//     gives the same bits; the CPU by a bucketed insertion sort, the GPU by ranks, both through key_less.
//   * u(x) = (x >> 11) * 2^-53 is exact: a 53-bit integer converts to double exactly and 2^-53 is a power
//     of two.
// Plain C++ plus <stdint.h> and ../core/siphash.h.
#pragma once

#include <stdint.h>

#include "../core/rounded.h"
#include "../core/siphash.h"

namespace safework {
namespace credid {

// The rounded operations of ../core/rounded.h, callable as credid::fadd etc. by the kernel files.
using safework::dadd;
using safework::ddiv;
using safework::dmul;
using safework::dsqrt;
using safework::fadd;
using safework::fdiv;
using safework::fmul;

// u(x) in [0, 1): the top 53 bits of the hash as a fraction.
SW_HD double unit(uint64_t x) { return dmul(static_cast<double>(x >> 11), 0x1p-53); }

// The order of tokens under one prefix: unsigned hash first, token id breaks (astronomically rare) ties.
SW_HD bool key_less(uint64_t xa, int64_t ia, uint64_t xb, int64_t ib) {
  return (xa < xb) | ((xa == xb) & (ia < ib));
}

SW_HD bool key_le(uint64_t xa, int64_t ia, uint64_t xb, int64_t ib) {
  return (xa < xb) | ((xa == xb) & (ia <= ib));
}

// How many of the k entries (sx, sid), sorted ascending by key, have key <= (xq, iq): a binary search with
// selects (the CUDA lookup; the CPU uses a bucket index, which yields the same count).
SW_HD int64_t count_le(const uint64_t* sx, const int64_t* sid, int64_t k, uint64_t xq, int64_t iq) {
  int64_t lo = 0;
  int64_t len = k;
  while (len > 0) {
    const int64_t half = len >> 1;
    const int64_t mid = lo + half;
    const bool le = key_le(sx[mid], sid[mid], xq, iq);
    lo = le ? mid + 1 : lo;
    len = le ? len - half - 1 : half;
  }
  return lo;
}

// cum = S + rest * u(x): one rounded multiply, then one rounded add.
SW_HD bool is_green(double s, double rest, uint64_t x, double tau) {
  return dadd(s, dmul(rest, unit(x))) > tau;
}

// SipHash state after the row's prefix words (the suffix trick: absorbed once, reused for every last word).
SW_HD SipState absorb_prefix(uint64_t k0, uint64_t k1, const uint64_t* words, int64_t w) {
  SipState s = sip_init(k0, k1);
  for (int64_t i = 0; i < w; ++i) sip_absorb(s, words[i]);
  return s;
}

// SipHash of prefix ++ [last], given the state after the prefix; n_words = prefix length + 1.
SW_HD uint64_t hash_last(SipState base, uint64_t last, uint64_t n_words) {
  sip_absorb(base, last);
  return sip_finish(base, n_words);
}

}  // namespace credid
}  // namespace safework
