// Per-element loops of the CPU kernels. They round exactly like the torch reference
// (fastmix/reference.py): a*lam and b*(1-lam) rounded separately in the accumulation type, then
// summed (the build passes -ffp-contract=off so no FMA fuses them), then cast back.
//
// The float32 / uint8 / float64 loops are compiled for AVX-512, AVX2 and baseline x86-64 and
// picked at load time (GCC target_clones): the loops are simple enough for the compiler to
// vectorise, and at one pass over memory the vector width decides whether we keep up with it.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace fastmix {
namespace cpu {

template <typename T>
struct AccType {
  using type = float;
};
template <>
struct AccType<double> {
  using type = double;
};

template <typename T>
inline T from_acc(typename AccType<T>::type v) {
  return static_cast<T>(v);
}

// uint8: round half to even (the default rounding mode, which cvtps2dq uses), then saturate in
// integers; both vectorise on any x86-64.
template <>
inline uint8_t from_acc<uint8_t>(float v) {
#if defined(__GNUC__) && !defined(__clang__)
  int32_t i = __builtin_irintf(v);
#else
  int32_t i = static_cast<int32_t>(std::nearbyint(v));
#endif
  i = std::min(std::max(i, 0), 255);
  return static_cast<uint8_t>(i);
}

template <typename T>
inline typename AccType<T>::type to_acc(T v) {
  return static_cast<typename AccType<T>::type>(v);
}

template <typename T>
inline T blend_one(T mine, T theirs, typename AccType<T>::type lam, typename AccType<T>::type rest) {
  const auto own_part = to_acc(mine) * lam;
  const auto their_part = to_acc(theirs) * rest;
  return from_acc<T>(own_part + their_part);
}

// dst <- blend(dst, src)
template <typename T>
inline void blend_into_impl(T* __restrict__ dst, const T* __restrict__ src, int64_t n,
                            typename AccType<T>::type lam, typename AccType<T>::type rest) {
  for (int64_t j = 0; j < n; ++j) dst[j] = blend_one(dst[j], src[j], lam, rest);
}

// a <- blend(a, b) and b <- blend(b, a), both from the originals: one read and one write of each.
template <typename T>
inline void blend_pair_impl(T* __restrict__ a, T* __restrict__ b, int64_t n,
                            typename AccType<T>::type lam_a, typename AccType<T>::type rest_a,
                            typename AccType<T>::type lam_b, typename AccType<T>::type rest_b) {
  for (int64_t j = 0; j < n; ++j) {
    const T x = a[j], y = b[j];
    a[j] = blend_one(x, y, lam_a, rest_a);
    b[j] = blend_one(y, x, lam_b, rest_b);
  }
}

// a <- blend(a, b) while b takes a's original (a blended sample paired with a pasted one).
template <typename T>
inline void blend_and_take_impl(T* __restrict__ a, T* __restrict__ b, int64_t n,
                                typename AccType<T>::type lam_a, typename AccType<T>::type rest_a) {
  for (int64_t j = 0; j < n; ++j) {
    const T x = a[j], y = b[j];
    a[j] = blend_one(x, y, lam_a, rest_a);
    b[j] = x;
  }
}

template <typename T>
inline void swap_impl(T* __restrict__ a, T* __restrict__ b, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const T x = a[j];
    a[j] = b[j];
    b[j] = x;
  }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FASTMIX_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FASTMIX_MULTIVERSION
#endif

// Generic versions (float16 / bfloat16 and anything else), then multiversioned overloads.
template <typename T>
inline void blend_into(T* dst, const T* src, int64_t n, typename AccType<T>::type lam,
                       typename AccType<T>::type rest) {
  blend_into_impl(dst, src, n, lam, rest);
}
template <typename T>
inline void blend_pair(T* a, T* b, int64_t n, typename AccType<T>::type lam_a,
                       typename AccType<T>::type rest_a, typename AccType<T>::type lam_b,
                       typename AccType<T>::type rest_b) {
  blend_pair_impl(a, b, n, lam_a, rest_a, lam_b, rest_b);
}
template <typename T>
inline void blend_and_take(T* a, T* b, int64_t n, typename AccType<T>::type lam_a,
                           typename AccType<T>::type rest_a) {
  blend_and_take_impl(a, b, n, lam_a, rest_a);
}
template <typename T>
inline void swap_ranges(T* a, T* b, int64_t n) {
  swap_impl(a, b, n);
}

#define FASTMIX_VECTOR_LOOPS(T, ACC)                                                                \
  FASTMIX_MULTIVERSION inline void blend_into(T* dst, const T* src, int64_t n, ACC lam, ACC rest) { \
    blend_into_impl(dst, src, n, lam, rest);                                                        \
  }                                                                                                 \
  FASTMIX_MULTIVERSION inline void blend_pair(T* a, T* b, int64_t n, ACC lam_a, ACC rest_a,        \
                                              ACC lam_b, ACC rest_b) {                              \
    blend_pair_impl(a, b, n, lam_a, rest_a, lam_b, rest_b);                                         \
  }                                                                                                 \
  FASTMIX_MULTIVERSION inline void blend_and_take(T* a, T* b, int64_t n, ACC lam_a, ACC rest_a) {  \
    blend_and_take_impl(a, b, n, lam_a, rest_a);                                                    \
  }                                                                                                 \
  FASTMIX_MULTIVERSION inline void swap_ranges(T* a, T* b, int64_t n) { swap_impl(a, b, n); }

FASTMIX_VECTOR_LOOPS(float, float)
FASTMIX_VECTOR_LOOPS(uint8_t, float)
FASTMIX_VECTOR_LOOPS(double, double)
#undef FASTMIX_VECTOR_LOOPS

template <typename T>
inline void blend_strided(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t n,
                          typename AccType<T>::type lam, typename AccType<T>::type rest) {
  for (int64_t j = 0; j < n; ++j)
    dst[j * dst_stride] = blend_one(dst[j * dst_stride], src[j * src_stride], lam, rest);
}

}  // namespace cpu
}  // namespace fastmix
