// SipHash-2-4 over whole 64-bit words: the keyed PRF behind every watermark green list and permutation.
//
// Why SipHash-2-4 and not Philox (or another counter-based RNG):
//   * The watermark needs a *PRF*: without the 128-bit secret key, nobody may predict which tokens are
//     green, or the watermark can be forged or scrubbed. SipHash is a keyed PRF designed for exactly this
//     job (short inputs, secret key) and carries a PRF security claim; Philox is a statistically good
//     counter-based RNG with no security claim at all (its key schedule is trivially invertible).
//   * It is cheap on short inputs: a (context..., candidate) row of 3-4 words costs 10-12 SipRounds, so
//     hashing a whole 49k-token vocabulary per generated row is a few hundred microseconds on one CPU core
//     and negligible on a GPU.
//   * It uses only 64-bit add, xor and rotate, so CPU, CUDA and a pure-torch reference agree bit for bit.
//
// EXACT bit layout (the Python module docstring of safework.core.ops.prf repeats it):
//   key     = two uint64 words k0, k1 = the 16 key bytes read little-endian (k0 = bytes 0..7, k1 = 8..15).
//   message = one row of W uint64 words; each word is serialised little-endian, so the message is 8*W bytes
//             and each word is exactly one SipHash message block m_i. Because the length is a multiple of 8,
//             the final block holds no message bytes, only the length byte: b = (8*W mod 256) << 56.
//   output  = the standard SipHash-2-4 uint64 (v0^v1^v2^v3 after 4 finalisation rounds). The Python side
//             stores it in an int64 tensor (two's-complement reinterpretation of the same 64 bits).
// For W whole words this is byte-for-byte the reference SipHash-2-4 of the 8*W-byte message, so the official
// test vectors (key 00..0f, message 00..len-1) apply at len = 0, 8, 16, ...
//
// This header is plain C++ plus <stdint.h>: it compiles in host code (prf_cpu.cpp) and, through SW_HD, in
// device code (prf_cuda.cu) so both paths run literally the same arithmetic.
#pragma once

#include <stdint.h>

#include "rounded.h"  // SW_HD: __host__ __device__ under nvcc, inline otherwise

namespace safework {

SW_HD uint64_t sw_rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

// The SipHash state: four 64-bit lanes.
struct SipState {
  uint64_t v0, v1, v2, v3;
};

SW_HD void sip_round(SipState& s) {
  s.v0 += s.v1;
  s.v1 = sw_rotl(s.v1, 13);
  s.v1 ^= s.v0;
  s.v0 = sw_rotl(s.v0, 32);
  s.v2 += s.v3;
  s.v3 = sw_rotl(s.v3, 16);
  s.v3 ^= s.v2;
  s.v0 += s.v3;
  s.v3 = sw_rotl(s.v3, 21);
  s.v3 ^= s.v0;
  s.v2 += s.v1;
  s.v1 = sw_rotl(s.v1, 17);
  s.v1 ^= s.v2;
  s.v2 = sw_rotl(s.v2, 32);
}

// Initialisation with the four "somepseudorandomlygeneratedbytes" constants.
SW_HD SipState sip_init(uint64_t k0, uint64_t k1) {
  SipState s;
  s.v0 = k0 ^ 0x736f6d6570736575ULL;
  s.v1 = k1 ^ 0x646f72616e646f6dULL;
  s.v2 = k0 ^ 0x6c7967656e657261ULL;
  s.v3 = k1 ^ 0x7465646279746573ULL;
  return s;
}

// Absorb one 8-byte message block (c = 2 compression rounds).
SW_HD void sip_absorb(SipState& s, uint64_t m) {
  s.v3 ^= m;
  sip_round(s);
  sip_round(s);
  s.v0 ^= m;
}

// Final block for a message of `n_words` whole words, then d = 4 finalisation rounds.
SW_HD uint64_t sip_finish(SipState s, uint64_t n_words) {
  const uint64_t b = ((n_words * 8ULL) & 0xffULL) << 56;
  sip_absorb(s, b);
  s.v2 ^= 0xffULL;
  sip_round(s);
  sip_round(s);
  sip_round(s);
  sip_round(s);
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

// SipHash-2-4 of a row of `w` words.
SW_HD uint64_t siphash24_words(uint64_t k0, uint64_t k1, const uint64_t* words, int64_t w) {
  SipState s = sip_init(k0, k1);
  for (int64_t i = 0; i < w; ++i) sip_absorb(s, words[i]);
  return sip_finish(s, static_cast<uint64_t>(w));
}

}  // namespace safework
