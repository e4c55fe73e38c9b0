// uint8 <-> float32 lanes for the uint8 blend loops (blend_math.h), the same interface as the
// 16-bit lanes of half_convert.h: load widens kLanes bytes to a float32 Vec, store rounds a Vec
// half to even (vcvtps2dq under the default rounding mode, as __builtin_irintf does one value at
// a time) and saturates to [0, 255], exactly as from_acc<uint8_t>.
//
// GCC's own vectorisation of the scalar loop widened bytes in two steps and clamped in 32 bits:
// about 25 instructions per 16 blended pairs against 16 here (measured: Mixup on uint8 images,
// one thread, 1.3x faster with the same bits).
#pragma once

#include "half_convert.h"

#ifdef FASTMIX_X86_LANES
namespace fastmix {
namespace cpu {
namespace lanes {

#define FASTMIX_BYTE_LANES_AVX2 __attribute__((target("avx2"), always_inline)) static inline
#define FASTMIX_BYTE_LANES_AVX512 __attribute__((target("avx512f"), always_inline)) static inline

struct ByteAvx2 : Avx2Float {
  FASTMIX_BYTE_LANES_AVX2 Vec load(const uint8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  FASTMIX_BYTE_LANES_AVX2 void store(uint8_t* p, Vec v) {
    // packssdw saturates to int16 and packuswb then to [0, 255]: exact for every int32, as the
    // AVX-512 store and the scalar from_acc<uint8_t> are.
    const __m256i i = _mm256_cvtps_epi32(v);
    const __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(words, words));
  }
};

struct ByteAvx512 : Avx512Float {
  FASTMIX_BYTE_LANES_AVX512 Vec load(const uint8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  FASTMIX_BYTE_LANES_AVX512 void store(uint8_t* p, Vec v) {
    const __m512i clamped_below = _mm512_max_epi32(_mm512_cvtps_epi32(v), _mm512_setzero_si512());
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtusepi32_epi8(clamped_below));  // saturates at 255
  }
};

#undef FASTMIX_BYTE_LANES_AVX2
#undef FASTMIX_BYTE_LANES_AVX512

}  // namespace lanes
}  // namespace cpu
}  // namespace fastmix
#endif  // FASTMIX_X86_LANES
