// float16 / bfloat16 <-> float32 conversions for the CPU loops, bit for bit those of c10.
//
// Converting through c10::Half and c10::BFloat16, one value at a time, left the float16 / bfloat16
// loops unvectorised and 3-40x slower than the float32 ones. Here:
//
// * bits16: the same conversions as c10's scalar ones (c10::detail::round_to_nearest_even,
//   f32_from_bits, fp16_ieee_from_fp32_value, fp16_ieee_to_fp32_value), written as plain integer
//   and float operations on the bits that the compiler vectorises inside the multiversioned loops.
//   They give exactly c10's bits for every input: NaN, infinities, subnormals, overflow, -0.0.
// * lanes (x86-64 with GCC): 8 to 32 values at a time with AVX2 + F16C or AVX-512 instructions,
//   for the hottest loops. vcvtph2ps is exact, and vcvtps2ph with rounding immediate 0 rounds to
//   nearest even like IEEE and c10; the only difference from c10 is a NaN's payload, so a NaN is
//   first made the one that converts to c10's (0x7E00 with the sign). bfloat16 lanes do bits16's
//   integer rounding (0x7FC0 for a NaN).
//
// tests/cpp/half_convert_check.cpp (built and run by tests/test_half_precision.py) checks both
// against c10: all 65536 inputs of the widenings, millions (on request all 2^32) float32 inputs
// of the roundings; tests/test_half_precision.py checks the kernels against the torch reference.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FASTMIX_X86_LANES 1
#include <immintrin.h>
#endif

#if defined(__GNUC__)
#define FASTMIX_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define FASTMIX_ALWAYS_INLINE inline
#endif

namespace fastmix {
namespace cpu {
namespace bits16 {

FASTMIX_ALWAYS_INLINE float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

FASTMIX_ALWAYS_INLINE uint32_t f32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

// bfloat16 -> float32: the bits become the high half (c10::detail::f32_from_bits).
FASTMIX_ALWAYS_INLINE float bf16_to_f32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

// float32 -> bfloat16, round to nearest even on the bits; any NaN -> 0x7FC0
// (c10::detail::round_to_nearest_even).
FASTMIX_ALWAYS_INLINE uint16_t f32_to_bf16(float f) {
  const uint32_t u = f32_to_bits(f);
  const uint32_t rounded = (u + (((u >> 16) & 1u) + 0x7FFFu)) >> 16;
  return static_cast<uint16_t>(f != f ? 0x7FC0u : rounded);
}

// float16 -> float32, exact (c10::detail::fp16_ieee_to_fp32_value, from the FP16 library): normal
// numbers by an exponent rebias and a multiply by 2^-112, subnormals by a magic-number subtraction.
FASTMIX_ALWAYS_INLINE float f16_to_f32(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const float normalized = f32_from_bits((two_w >> 4) + (0xE0u << 23)) * f32_from_bits(15u << 23);
  const float denormalized = f32_from_bits((two_w >> 17) | (126u << 23)) - 0.5f;
  // Selected with a mask: a conditional would let GCC move the float operations into its arms,
  // and then (floats may trap) not vectorise the loop below AVX-512.
  const uint32_t use_denormalized = 0u - static_cast<uint32_t>(two_w < (1u << 27));
  const uint32_t magnitude =
      (f32_to_bits(denormalized) & use_denormalized) | (f32_to_bits(normalized) & ~use_denormalized);
  return f32_from_bits(sign | magnitude);
}

// float32 -> float16, round to nearest even, overflow to infinity, any NaN -> 0x7E00 with the sign
// (c10::detail::fp16_ieee_from_fp32_value, from the FP16 library): the float adder rounds at the
// right bit position.
FASTMIX_ALWAYS_INLINE uint16_t f32_to_f16(float f) {
  const float scale_to_inf = f32_from_bits(239u << 23);  // 2^112
  const float scale_to_zero = f32_from_bits(17u << 23);  // 2^-110
  float base = (std::fabs(f) * scale_to_inf) * scale_to_zero;
  const uint32_t w = f32_to_bits(f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t bias = std::max(shl1_w & 0xFF000000u, 0x71000000u);
  base = f32_from_bits((bias >> 1) + 0x07800000u) + base;
  const uint32_t b = f32_to_bits(base);
  const uint32_t nonsign = ((b >> 13) & 0x00007C00u) + (b & 0x00000FFFu);
  const uint32_t nan = 0u - static_cast<uint32_t>(shl1_w > 0xFF000000u);  // a mask, as in f16_to_f32
  return static_cast<uint16_t>((sign >> 16) | (0x7E00u & nan) | (nonsign & ~nan));
}

}  // namespace bits16

#ifdef FASTMIX_X86_LANES
// Lanes: kLanes 16-bit values <-> float32 vectors (Vec), exactly as bits16 does one at a time.
// load widens the kLanes values at p, store rounds a Vec into kLanes values at p; mul, add and
// set1 are the float32 arithmetic on a Vec (its lanes may hold the values in an order of their
// own: only store reads them back). The float16 lanes also have load_f32, kLanes float32 values
// as a Vec in memory order. Each struct's functions are compiled for the instructions they use;
// the loops that use them (blend_math.h) are compiled for an x86-64 level that has them.
namespace lanes {

#define FASTMIX_LANES_AVX2 __attribute__((target("avx2,f16c"), always_inline)) static inline
#define FASTMIX_LANES_AVX512 __attribute__((target("avx512f"), always_inline)) static inline
#define FASTMIX_LANES_AVX512BW __attribute__((target("avx512f,avx512bw"), always_inline)) static inline

struct Avx2Float {
  using Vec = __m256;
  static constexpr int64_t kLanes = 8;
  FASTMIX_LANES_AVX2 Vec load_f32(const float* p) { return _mm256_loadu_ps(p); }
  FASTMIX_LANES_AVX2 Vec set1(float v) { return _mm256_set1_ps(v); }
  FASTMIX_LANES_AVX2 Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  FASTMIX_LANES_AVX2 Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
};

struct Avx512Float {
  using Vec = __m512;
  static constexpr int64_t kLanes = 16;
  FASTMIX_LANES_AVX512 Vec load_f32(const float* p) { return _mm512_loadu_ps(p); }
  FASTMIX_LANES_AVX512 Vec set1(float v) { return _mm512_set1_ps(v); }
  FASTMIX_LANES_AVX512 Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  FASTMIX_LANES_AVX512 Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
};

// float16 with F16C: vcvtph2ps / vcvtps2ph (imm 0: round to nearest even, exceptions as usual).
struct HalfAvx2 : Avx2Float {
  FASTMIX_LANES_AVX2 Vec load(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  FASTMIX_LANES_AVX2 void store(uint16_t* p, Vec v) {
    // A NaN becomes 0x7FC00000 with its sign (a quiet NaN, no payload), which vcvtps2ph turns into
    // c10's 0x7E00 | sign.
    const Vec canonical_nan = _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)),
                                           _mm256_castsi256_ps(_mm256_set1_epi32(0x7FC00000)));
    v = _mm256_blendv_ps(v, canonical_nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
};

struct HalfAvx512 : Avx512Float {
  FASTMIX_LANES_AVX512 Vec load(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  FASTMIX_LANES_AVX512 void store(uint16_t* p, Vec v) {
    // A NaN becomes 0x7FC00000 with its sign (a quiet NaN, no payload), which vcvtps2ph turns into
    // c10's 0x7E00 | sign: (v & 0x80000000) | 0x7FC00000 in one ternary-logic op on the NaN lanes.
    const __m512i u = _mm512_castps_si512(v);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    const __m512i fixed = _mm512_mask_ternarylogic_epi32(u, nan, _mm512_set1_epi32(static_cast<int>(0x80000000u)),
                                                         _mm512_set1_epi32(0x7FC00000), 0xEA);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(_mm512_castsi512_ps(fixed), _MM_FROUND_TO_NEAREST_INT));
  }
};

// bfloat16: bits16's integer rounding, 16 (AVX2) or 32 (AVX-512) values at a time, as two float
// vectors. Unpacking with zeros puts each value in the high half of a 32-bit lane, in an order of
// its own that the store undoes (in-lane packs / one two-source shuffle).
struct BFloat16Avx2 {
  struct Vec {
    __m256 lo, hi;
  };
  static constexpr int64_t kLanes = 16;
  FASTMIX_LANES_AVX2 Vec set1(float v) { return {_mm256_set1_ps(v), _mm256_set1_ps(v)}; }
  FASTMIX_LANES_AVX2 Vec mul(Vec a, Vec b) { return {_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)}; }
  FASTMIX_LANES_AVX2 Vec add(Vec a, Vec b) { return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
  FASTMIX_LANES_AVX2 Vec load(const uint16_t* p) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), zero = _mm256_setzero_si256();
    return {_mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, x)), _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, x))};
  }
  // (u + 0x7FFF + (bit 16 of u)) >> 16, or 0x7FC0 for a NaN.
  FASTMIX_LANES_AVX2 __m256i round(__m256 v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7FFF))), 16);
    const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(_mm256_set1_epi32(0x7FC0)), nan));
  }
  FASTMIX_LANES_AVX2 void store(uint16_t* p, Vec v) {
    // Every rounded value fits in 16 bits, so packusdw's unsigned saturation keeps it as is; it
    // packs within 128-bit lanes, the order the unpacks left.
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_packus_epi32(round(v.lo), round(v.hi)));
  }
};

struct BFloat16Avx512 {
  struct Vec {
    __m512 lo, hi;
  };
  static constexpr int64_t kLanes = 32;
  FASTMIX_LANES_AVX512BW Vec set1(float v) { return {_mm512_set1_ps(v), _mm512_set1_ps(v)}; }
  FASTMIX_LANES_AVX512BW Vec mul(Vec a, Vec b) { return {_mm512_mul_ps(a.lo, b.lo), _mm512_mul_ps(a.hi, b.hi)}; }
  FASTMIX_LANES_AVX512BW Vec add(Vec a, Vec b) { return {_mm512_add_ps(a.lo, b.lo), _mm512_add_ps(a.hi, b.hi)}; }
  FASTMIX_LANES_AVX512BW Vec load(const uint16_t* p) {
    const __m512i x = _mm512_loadu_si512(p), zero = _mm512_setzero_si512();
    return {_mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, x)), _mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, x))};
  }
  // u + 0x7FFF + (bit 16 of u), or 0x7FC0 << 16 for a NaN: the result is in the high half.
  FASTMIX_LANES_AVX512BW __m512i round_high(__m512 v) {
    const __m512i u = _mm512_castps_si512(v);
    const __mmask16 odd = _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x10000));
    __m512i t = _mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF));
    t = _mm512_mask_add_epi32(t, odd, t, _mm512_set1_epi32(1));
    return _mm512_mask_mov_epi32(t, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7FC00000));
  }
  FASTMIX_LANES_AVX512BW void store(uint16_t* p, Vec v) {
    // Word k of 128-bit lane q came from lo (k < 4) or hi (k >= 4), lane q, 32-bit element k % 4.
    const __m512i index = _mm512_set_epi16(
        63, 61, 59, 57, 31, 29, 27, 25, 55, 53, 51, 49, 23, 21, 19, 17,
        47, 45, 43, 41, 15, 13, 11, 9, 39, 37, 35, 33, 7, 5, 3, 1);
    _mm512_storeu_si512(p, _mm512_permutex2var_epi16(round_high(v.lo), index, round_high(v.hi)));
  }
};

#undef FASTMIX_LANES_AVX2
#undef FASTMIX_LANES_AVX512
#undef FASTMIX_LANES_AVX512BW

}  // namespace lanes
#endif  // FASTMIX_X86_LANES

}  // namespace cpu
}  // namespace fastmix
