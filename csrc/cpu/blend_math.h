// Per-element arithmetic of the CPU kernels. It is written to round exactly like the torch
// reference (fastmix/reference.py): a*lam and b*(1-lam) rounded separately in the accumulation
// type, then summed (the build passes -ffp-contract=off so no FMA fuses them), then cast.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

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

// uint8: round half to even, then saturate. Adding and subtracting 1.5 * 2^23 rounds a float in
// [-2^22, 2^22] to the nearest integer, ties to even, under the default rounding mode; unlike
// nearbyint it vectorises without SSE4.1.
template <>
inline uint8_t from_acc<uint8_t>(float v) {
  constexpr float kRoundMagic = 12582912.0f;
  float r = (v + kRoundMagic) - kRoundMagic;
  r = r < 0.f ? 0.f : (r > 255.f ? 255.f : r);
  return static_cast<uint8_t>(static_cast<int32_t>(r));
}

template <typename T>
inline typename AccType<T>::type to_acc(T v) {
  return static_cast<typename AccType<T>::type>(v);
}

// dst[j] = dst[j] * lam + src[j] * rest, for n contiguous elements (dst and src never overlap).
template <typename T>
inline void blend_contiguous(T* __restrict__ dst, const T* __restrict__ src, int64_t n,
                             typename AccType<T>::type lam, typename AccType<T>::type rest) {
  for (int64_t j = 0; j < n; ++j) {
    const auto mine = to_acc(dst[j]) * lam;
    const auto theirs = to_acc(src[j]) * rest;
    dst[j] = from_acc<T>(mine + theirs);
  }
}

template <typename T>
inline void blend_strided(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t n,
                          typename AccType<T>::type lam, typename AccType<T>::type rest) {
  for (int64_t j = 0; j < n; ++j) {
    const auto mine = to_acc(dst[j * dst_stride]) * lam;
    const auto theirs = to_acc(src[j * src_stride]) * rest;
    dst[j * dst_stride] = from_acc<T>(mine + theirs);
  }
}

}  // namespace cpu
}  // namespace fastmix
