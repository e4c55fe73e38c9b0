// Per-element loops of the CPU kernels. They round exactly like the torch reference
// (fastmix/backends/reference.py): a*lam and b*(1-lam) rounded separately in the accumulation type, then
// summed (the build passes -ffp-contract=off so no FMA fuses them), then cast back.
//
// The loops are compiled for AVX-512, AVX2 and baseline x86-64 and picked at load time (GCC
// target_clones or function multiversioning): they are simple enough for the compiler to
// vectorise, and at one pass over memory the vector width decides whether we keep up with it.
// float16 and bfloat16 convert with half_convert.h (bit operations the compiler vectorises, and
// F16C / AVX-512 lanes), not through c10::Half / c10::BFloat16 one value at a time, which left
// those loops unvectorised and 3-40x slower than float32's.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "byte_lanes.h"
#include "cpu_features.h"  // FASTMIX_MULTIVERSION
#include "half_convert.h"

namespace fastmix {
namespace cpu {

// What one sample does to the elements of one row segment: keeps its own, takes its partner's, or
// blends the two; it picks the loop below that runs (mix_cpu.cpp's pair_segment).
enum class PixelOp { kKeep, kTake, kBlend };

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

template <>
FASTMIX_ALWAYS_INLINE c10::BFloat16 from_acc<c10::BFloat16>(float v) {
  return c10::BFloat16(bits16::f32_to_bf16(v), c10::BFloat16::from_bits());
}

template <>
FASTMIX_ALWAYS_INLINE c10::Half from_acc<c10::Half>(float v) {
  return c10::Half(bits16::f32_to_f16(v), c10::Half::from_bits());
}

template <typename T>
inline typename AccType<T>::type to_acc(T v) {
  return static_cast<typename AccType<T>::type>(v);
}

FASTMIX_ALWAYS_INLINE float to_acc(c10::BFloat16 v) { return bits16::bf16_to_f32(v.x); }
FASTMIX_ALWAYS_INLINE float to_acc(c10::Half v) { return bits16::f16_to_f32(v.x); }

template <typename T>
FASTMIX_ALWAYS_INLINE T blend_one(T mine, T theirs, typename AccType<T>::type lam, typename AccType<T>::type rest) {
  const auto own_part = to_acc(mine) * lam;
  const auto their_part = to_acc(theirs) * rest;
  return from_acc<T>(own_part + their_part);
}

// dst <- blend(dst, src)
template <typename T>
FASTMIX_ALWAYS_INLINE void blend_into_impl(T* __restrict__ dst, const T* __restrict__ src, int64_t n,
                                           typename AccType<T>::type lam, typename AccType<T>::type rest) {
  for (int64_t j = 0; j < n; ++j) dst[j] = blend_one(dst[j], src[j], lam, rest);
}

// a <- blend(a, b) and b <- blend(b, a), both from the originals: one read and one write of each.
template <typename T>
FASTMIX_ALWAYS_INLINE void blend_pair_impl(T* __restrict__ a, T* __restrict__ b, int64_t n,
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
FASTMIX_ALWAYS_INLINE void blend_and_take_impl(T* __restrict__ a, T* __restrict__ b, int64_t n,
                                               typename AccType<T>::type lam_a, typename AccType<T>::type rest_a) {
  for (int64_t j = 0; j < n; ++j) {
    const T x = a[j], y = b[j];
    a[j] = blend_one(x, y, lam_a, rest_a);
    b[j] = x;
  }
}

template <typename T>
FASTMIX_ALWAYS_INLINE void swap_impl(T* __restrict__ a, T* __restrict__ b, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const T x = a[j];
    a[j] = b[j];
    b[j] = x;
  }
}


// Generic versions (for float16 / bfloat16, and uint8 off x86-64 GCC, where the overloads below
// are not compiled), then multiversioned overloads.
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
FASTMIX_VECTOR_LOOPS(double, double)
#ifndef FASTMIX_X86_LANES
FASTMIX_VECTOR_LOOPS(uint8_t, float)
#endif
#undef FASTMIX_VECTOR_LOOPS

// float16, bfloat16 and uint8. On x86-64 with GCC each blend loop has an AVX-512 and an AVX2
// version over the lanes of half_convert.h (float16 with F16C: the compiler does not vectorise
// F16C conversions on its own) or byte_lanes.h (uint8), and the scalar loop above (bits16 for the
// 16-bit types) as the baseline version; the loader picks the best the CPU runs (GCC function
// multiversioning). Tails shorter than a vector take the scalar loop. Elsewhere the generic
// templates above (and, for uint8, the target_clones loops) run the scalar loops.
FASTMIX_MULTIVERSION inline void swap_ranges(c10::Half* a, c10::Half* b, int64_t n) { swap_impl(a, b, n); }
#ifdef FASTMIX_X86_LANES
FASTMIX_MULTIVERSION inline void swap_ranges(uint8_t* a, uint8_t* b, int64_t n) { swap_impl(a, b, n); }
#endif
FASTMIX_MULTIVERSION inline void swap_ranges(c10::BFloat16* a, c10::BFloat16* b, int64_t n) { swap_impl(a, b, n); }

template <typename T>
FASTMIX_ALWAYS_INLINE void narrow_row_impl(T* __restrict__ dst, const float* __restrict__ src, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dst[j] = from_acc<T>(src[j]);
}

#ifdef FASTMIX_X86_LANES
// c10::Half and c10::BFloat16 are standard-layout wrappers of one uint16_t (their bits); the
// byte lanes take uint8_t as it is.
template <typename T>
FASTMIX_ALWAYS_INLINE uint16_t* bits_of(T* p) {
  return reinterpret_cast<uint16_t*>(p);
}
template <typename T>
FASTMIX_ALWAYS_INLINE const uint16_t* bits_of(const T* p) {
  return reinterpret_cast<const uint16_t*>(p);
}
FASTMIX_ALWAYS_INLINE uint8_t* bits_of(uint8_t* p) { return p; }
FASTMIX_ALWAYS_INLINE const uint8_t* bits_of(const uint8_t* p) { return p; }

// The three blend loops for element type T over lanes L, compiled for TARGET (which must have
// L's instructions). The vector loop reads and writes the same elements as the scalar one.
#define FASTMIX_LANE_LOOPS(T, TARGET, L)                                                            \
  __attribute__((target(TARGET))) inline void blend_into(T* dst, const T* src, int64_t n, float lam, float rest) { \
    auto* __restrict__ d = bits_of(dst);                                                            \
    const auto* __restrict__ s = bits_of(src);                                                      \
    const L::Vec vl = L::set1(lam), vr = L::set1(rest);                                             \
    int64_t j = 0;                                                                                  \
    for (; j + L::kLanes <= n; j += L::kLanes)                                                      \
      L::store(d + j, L::add(L::mul(L::load(d + j), vl), L::mul(L::load(s + j), vr)));              \
    blend_into_impl(dst + j, src + j, n - j, lam, rest);                                            \
  }                                                                                                 \
  __attribute__((target(TARGET))) inline void blend_pair(T* a, T* b, int64_t n, float lam_a, float rest_a, \
                                                         float lam_b, float rest_b) {               \
    auto* __restrict__ x = bits_of(a);                                                              \
    auto* __restrict__ y = bits_of(b);                                                              \
    const L::Vec la = L::set1(lam_a), ra = L::set1(rest_a), lb = L::set1(lam_b), rb = L::set1(rest_b); \
    int64_t j = 0;                                                                                  \
    for (; j + L::kLanes <= n; j += L::kLanes) {                                                    \
      const L::Vec u = L::load(x + j), v = L::load(y + j);                                          \
      L::store(x + j, L::add(L::mul(u, la), L::mul(v, ra)));                                        \
      L::store(y + j, L::add(L::mul(v, lb), L::mul(u, rb)));                                        \
    }                                                                                               \
    blend_pair_impl(a + j, b + j, n - j, lam_a, rest_a, lam_b, rest_b);                             \
  }                                                                                                 \
  __attribute__((target(TARGET))) inline void blend_and_take(T* a, T* b, int64_t n, float lam_a, float rest_a) { \
    auto* __restrict__ x = bits_of(a);                                                              \
    auto* __restrict__ y = bits_of(b);                                                              \
    const L::Vec la = L::set1(lam_a), ra = L::set1(rest_a);                                         \
    int64_t j = 0;                                                                                  \
    for (; j + L::kLanes <= n; j += L::kLanes) {                                                    \
      const L::Vec u = L::load(x + j), v = L::load(y + j);                                          \
      std::memcpy(y + j, x + j, L::kLanes * sizeof(*x)); /* b takes a's original bits */            \
      L::store(x + j, L::add(L::mul(u, la), L::mul(v, ra)));                                        \
    }                                                                                               \
    blend_and_take_impl(a + j, b + j, n - j, lam_a, rest_a);                                        \
  }

// The baseline versions: the bits16 loops.
#define FASTMIX_BASELINE_LOOPS(T)                                                                   \
  __attribute__((target("default"))) inline void blend_into(T* dst, const T* src, int64_t n, float lam, float rest) { \
    blend_into_impl(dst, src, n, lam, rest);                                                        \
  }                                                                                                 \
  __attribute__((target("default"))) inline void blend_pair(T* a, T* b, int64_t n, float lam_a, float rest_a, \
                                                            float lam_b, float rest_b) {            \
    blend_pair_impl(a, b, n, lam_a, rest_a, lam_b, rest_b);                                         \
  }                                                                                                 \
  __attribute__((target("default"))) inline void blend_and_take(T* a, T* b, int64_t n, float lam_a, float rest_a) { \
    blend_and_take_impl(a, b, n, lam_a, rest_a);                                                    \
  }

FASTMIX_BASELINE_LOOPS(c10::Half)
FASTMIX_LANE_LOOPS(c10::Half, "arch=x86-64-v3", lanes::HalfAvx2)
FASTMIX_LANE_LOOPS(c10::Half, "arch=x86-64-v4", lanes::HalfAvx512)
FASTMIX_BASELINE_LOOPS(c10::BFloat16)
FASTMIX_LANE_LOOPS(c10::BFloat16, "arch=x86-64-v3", lanes::BFloat16Avx2)
FASTMIX_LANE_LOOPS(c10::BFloat16, "arch=x86-64-v4", lanes::BFloat16Avx512)
FASTMIX_BASELINE_LOOPS(uint8_t)
FASTMIX_LANE_LOOPS(uint8_t, "arch=x86-64-v3", lanes::ByteAvx2)
FASTMIX_LANE_LOOPS(uint8_t, "arch=x86-64-v4", lanes::ByteAvx512)
#undef FASTMIX_BASELINE_LOOPS
#undef FASTMIX_LANE_LOOPS

// dst[j] <- src[j] rounded to float16 (as c10 rounds), for rows the out-of-place kernels stage as
// float32 (mix_into_cpu.cpp): with F16C (AVX2) or AVX-512 conversions where the CPU has them.
__attribute__((target("default"))) inline void narrow_row(c10::Half* dst, const float* src, int64_t n) {
  narrow_row_impl(dst, src, n);
}
#define FASTMIX_NARROW_ROW(TARGET, L)                                                               \
  __attribute__((target(TARGET))) inline void narrow_row(c10::Half* dst, const float* src, int64_t n) { \
    uint16_t* d = bits_of(dst);                                                                     \
    int64_t j = 0;                                                                                  \
    for (; j + L::kLanes <= n; j += L::kLanes) L::store(d + j, L::load_f32(src + j));               \
    narrow_row_impl(dst + j, src + j, n - j);                                                       \
  }
FASTMIX_NARROW_ROW("arch=x86-64-v3", lanes::HalfAvx2)
FASTMIX_NARROW_ROW("arch=x86-64-v4", lanes::HalfAvx512)
#undef FASTMIX_NARROW_ROW
#else
inline void narrow_row(c10::Half* dst, const float* src, int64_t n) { narrow_row_impl(dst, src, n); }
#endif

// -- pixel masks (kMask): a select per element, no arithmetic ---------------------------------------
//
// m[j] != 0 takes the partner's element. Written without a branch (every element of dst is
// rewritten, as a pass does anyway), so the compiler turns each loop into byte-mask compares and
// blends: on a blob mask a branch per element mispredicts at every edge. The loops copy bits, so
// they run on the unsigned type of T's size (float16 and bfloat16 as uint16_t, float as uint32_t).
template <size_t kBytes> struct BitsType;
template <> struct BitsType<1> { using type = uint8_t; };
template <> struct BitsType<2> { using type = uint16_t; };
template <> struct BitsType<4> { using type = uint32_t; };
template <> struct BitsType<8> { using type = uint64_t; };
template <typename T>
using bits_t = typename BitsType<sizeof(T)>::type;

// dst <- m ? src : dst
template <typename U>
FASTMIX_MULTIVERSION void select_into_bits(U* __restrict__ dst, const U* __restrict__ src,
                                           const uint8_t* __restrict__ m, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dst[j] = m[j] ? src[j] : dst[j];
}

// a <- ma ? b : a and b <- mb ? a : b, both from the originals (a swapped pair that both mask).
template <typename U>
FASTMIX_MULTIVERSION void select_pair_bits(U* __restrict__ a, U* __restrict__ b, const uint8_t* __restrict__ ma,
                                           const uint8_t* __restrict__ mb, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const U x = a[j], y = b[j];
    a[j] = ma[j] ? y : x;
    b[j] = mb[j] ? x : y;
  }
}

// out <- m ? theirs : own (out of place: mix_into_cpu.cpp's staged rows)
template <typename U>
FASTMIX_MULTIVERSION void select_from_bits(const U* __restrict__ own, const U* __restrict__ theirs,
                                           const uint8_t* __restrict__ m, U* __restrict__ out, int64_t n) {
  for (int64_t j = 0; j < n; ++j) out[j] = m[j] ? theirs[j] : own[j];
}

template <typename T>
inline void select_into(T* dst, const T* src, const uint8_t* m, int64_t n) {
  select_into_bits(reinterpret_cast<bits_t<T>*>(dst), reinterpret_cast<const bits_t<T>*>(src), m, n);
}
template <typename T>
inline void select_pair(T* a, T* b, const uint8_t* ma, const uint8_t* mb, int64_t n) {
  select_pair_bits(reinterpret_cast<bits_t<T>*>(a), reinterpret_cast<bits_t<T>*>(b), ma, mb, n);
}
template <typename T>
inline void select_from(const T* own, const T* theirs, const uint8_t* m, T* out, int64_t n) {
  select_from_bits(reinterpret_cast<const bits_t<T>*>(own), reinterpret_cast<const bits_t<T>*>(theirs), m,
                   reinterpret_cast<bits_t<T>*>(out), n);
}

// out[k] <- m[(first + k) / unit] for k in [0, n): the byte of a pixel for each of its `unit`
// elements (channels_last and HWC rows, where a mask byte covers a pixel's channels), so the
// selects above run on such rows too. unit 3 (RGB) is spelled out: a store group the compiler
// vectorises with shuffles.
FASTMIX_MULTIVERSION inline void spread_mask(const uint8_t* __restrict__ m, int64_t unit, int64_t first, int64_t n,
                                             uint8_t* __restrict__ out) {
  int64_t w = first / unit, c = first % unit, k = 0;
  if (c != 0) {  // the rest of a pixel the range starts inside
    for (; c < unit && k < n; ++c, ++k) out[k] = m[w];
    ++w;
  }
  const int64_t whole = (n - k) / unit;  // pixels wholly inside
  uint8_t* __restrict__ o = out + k;
  const uint8_t* __restrict__ p = m + w;
  if (unit == 3) {
    for (int64_t q = 0; q < whole; ++q) o[3 * q] = o[3 * q + 1] = o[3 * q + 2] = p[q];
  } else {
    for (int64_t q = 0; q < whole; ++q)
      for (int64_t e = 0; e < unit; ++e) o[q * unit + e] = p[q];
  }
  k += whole * unit;
  w += whole;
  for (; k < n; ++k) out[k] = m[w];  // the start of the pixel it ends inside
}

// dst[j * dst_stride] <- blend(dst[j * dst_stride], src[j * src_stride]) (the generic strided
// kernel's rows); unit strides take the contiguous loop.
template <typename T>
FASTMIX_ALWAYS_INLINE void blend_strided_impl(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t n,
                                              typename AccType<T>::type lam, typename AccType<T>::type rest) {
  for (int64_t j = 0; j < n; ++j)
    dst[j * dst_stride] = blend_one(dst[j * dst_stride], src[j * src_stride], lam, rest);
}

template <typename T>
FASTMIX_MULTIVERSION void blend_strided_rows(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t n,
                                             typename AccType<T>::type lam, typename AccType<T>::type rest) {
  blend_strided_impl(dst, dst_stride, src, src_stride, n, lam, rest);
}

template <typename T>
inline void blend_strided(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t n,
                          typename AccType<T>::type lam, typename AccType<T>::type rest) {
  // The buffer and the rows of the strided path never overlap, and dst is never src.
  if (dst_stride == 1 && src_stride == 1) return blend_into(dst, src, n, lam, rest);
  blend_strided_rows(dst, dst_stride, src, src_stride, n, lam, rest);
}

}  // namespace cpu
}  // namespace fastmix
