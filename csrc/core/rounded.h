// Correctly rounded float/double operations that nvcc may not fuse, shared by every kernel whose CPU and
// CUDA paths must agree bit for bit (fused verifier scoring, CredID green lists).
//
// nvcc contracts a*b + c into one fma by default, which rounds once where the CPU rounds twice. On the device
// each operation here is a __f*_rn / __d*_rn intrinsic, which is never contracted; the CPU files are compiled
// with -ffp-contract=off. Tests grep each kernel's PTX for fma.rn.f32/f64.
// Plain C++ plus <stdint.h>.
#pragma once

#include <stdint.h>

#ifndef SW_HD
#if defined(__CUDACC__)
#define SW_HD __host__ __device__ __forceinline__
#else
#define SW_HD inline
#endif
#endif

namespace safework {

#ifdef __CUDA_ARCH__
#define SW_ROUNDED(host_expr, device_expr) return device_expr
#else
#define SW_ROUNDED(host_expr, device_expr) return host_expr
#endif

SW_HD float fadd(float a, float b) { SW_ROUNDED(a + b, __fadd_rn(a, b)); }
SW_HD float fmul(float a, float b) { SW_ROUNDED(a * b, __fmul_rn(a, b)); }
SW_HD float fdiv(float a, float b) { SW_ROUNDED(a / b, __fdiv_rn(a, b)); }
SW_HD double dadd(double a, double b) { SW_ROUNDED(a + b, __dadd_rn(a, b)); }
SW_HD double dmul(double a, double b) { SW_ROUNDED(a * b, __dmul_rn(a, b)); }
SW_HD double ddiv(double a, double b) { SW_ROUNDED(a / b, __ddiv_rn(a, b)); }
// __builtin_sqrt is IEEE correctly rounded, like __dsqrt_rn.
SW_HD double dsqrt(double a) { SW_ROUNDED(__builtin_sqrt(a), __dsqrt_rn(a)); }

#undef SW_ROUNDED

}  // namespace safework
