// The MASK samples' pixels cut from one noise image (FMix in elem and pair modes), on the CPU:
// sample i takes its partner's pixel (y, x) where values[(y + dy) % H][(x + dx) % W] < threshold[i],
// its box being the window (dy, dy + H, dx, dx + W) (fastmix/backends/mask_field.py, the definition).
// The kernels cut a sample's mask where they read it: the collate a row block into a plane per
// thread, the in-place op a sample's plane per thread (its strided path, for rare layouts, cuts
// every plane first: field_pixel_mask).
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
#include <cstdint>
#include <optional>

#include "../mix_plan.h"
#include "blend_math.h"  // FASTMIX_MULTIVERSION
#include "cpu_features.h"

namespace fastmix {
namespace cpu {

// The field as the kernels read it: each row twice over, (H, 2W), so that a window's row is one run
// of W from dx. (Two runs a row, from dx and from 0, left two loop tails a row: the cut of a
// 256x224x224 elem-mode collate took 2.1 ms; one run, 1.2 ms; with the AVX-512 rows below, 0.9.)
struct MaskField {
  const float* values = nullptr;     // (H, 2W) float32; null: the masks are pixel_mask's planes
  const float* threshold = nullptr;  // (B,)
  int64_t height = 0, width = 0;
};

// `threshold_c`: field_threshold, contiguous; `rows_twice`: where the (H, 2W) copy is made (both
// kept alive by the caller).
inline MaskField mask_field_of(const std::optional<at::Tensor>& mask_field, const at::Tensor& threshold_c,
                               at::Tensor& rows_twice) {
  if (!mask_field.has_value()) return {};
  const int64_t height = mask_field->size(0), width = mask_field->size(1);
  rows_twice = at::empty({height, 2 * width}, at::TensorOptions().dtype(at::kFloat));
  const float* field = mask_field->data_ptr<float>();
  float* twice = rows_twice.data_ptr<float>();
  for (int64_t y = 0; y < height; ++y) {
    std::copy_n(field + y * width, width, twice + 2 * y * width);
    std::copy_n(field + y * width, width, twice + (2 * y + 1) * width);
  }
  return {twice, threshold_c.data_ptr<float>(), height, width};
}

// A compare and a byte per pixel.
FASTMIX_ALWAYS_INLINE void cut_run(const float* __restrict__ src, int64_t n, float threshold,
                                   uint8_t* __restrict__ out) {
  for (int64_t x = 0; x < n; ++x) out[x] = src[x] < threshold;
}

// Rows [h0, h1) of sample i's mask, 1 where the partner's pixel is taken, into the same rows of
// `plane` (H, W): row y is the run of W from dx of the field's row (y + dy) % H, twice over.
// Multiversioned as a whole: a row's run is short (W pixels), too short for a call each.
FASTMIX_MULTIVERSION inline void cut_field_rows_generic(const MaskField& f, int64_t i, const int64_t* window,
                                                        int64_t h0, int64_t h1, uint8_t* plane) {
  const int64_t height = f.height, width = f.width, dy = window[0], dx = window[2];
  const float threshold = f.threshold[i];
  for (int64_t y = h0; y < h1; ++y)
    cut_run(f.values + ((y + dy) % height) * 2 * width + dx, width, threshold, plane + y * width);
}

#if defined(__x86_64__) && defined(__GNUC__)
// The same with AVX-512, 16 pixels a compare and a masked last step: the vectorizer's version
// takes 64 a step and leaves a row of 224 a 32-pixel tail (1.2 ms against 0.9 ms a batch).
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline void cut_field_rows_avx512(
    const MaskField& f, int64_t i, const int64_t* window, int64_t h0, int64_t h1, uint8_t* plane) {
  const int64_t height = f.height, width = f.width, dy = window[0], dx = window[2];
  const __m512 threshold = _mm512_set1_ps(f.threshold[i]);
  const __mmask16 last = width % 16 == 0 ? __mmask16(0xffff) : __mmask16((1u << (width % 16)) - 1u);
  for (int64_t y = h0; y < h1; ++y) {
    const float* src = f.values + ((y + dy) % height) * 2 * width + dx;
    uint8_t* out = plane + y * width;
    int64_t x = 0;
    for (; x + 16 < width; x += 16)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + x),
                       _mm_maskz_set1_epi8(_mm512_cmp_ps_mask(_mm512_loadu_ps(src + x), threshold, _CMP_LT_OQ), 1));
    const __mmask16 taken = _mm512_mask_cmp_ps_mask(last, _mm512_maskz_loadu_ps(last, src + x), threshold, _CMP_LT_OQ);
    _mm_mask_storeu_epi8(out + x, last, _mm_maskz_set1_epi8(taken, 1));
  }
}
#endif

inline void cut_field_rows(const MaskField& f, int64_t i, const int64_t* window, int64_t h0, int64_t h1,
                           uint8_t* plane) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (cpu_has_avx512() && f.width > 0) return cut_field_rows_avx512(f, i, window, h0, h1, plane);
#endif
  cut_field_rows_generic(f, i, window, h0, h1, plane);
}

// (B, H, W) uint8, the MASK samples' planes cut from the field (the other planes are not written:
// the kernels read a plane only for a MASK sample). `kind` and `box` contiguous, on the CPU.
inline at::Tensor field_pixel_mask(const MaskField& f, const uint8_t* kind, const int64_t* box, int64_t batch) {
  at::Tensor planes = at::empty({batch, f.height, f.width}, at::TensorOptions().dtype(at::kByte));
  uint8_t* out = planes.data_ptr<uint8_t>();
  at::parallel_for(0, batch, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      if (kind[i] == kMask) cut_field_rows(f, i, box + 4 * i, 0, f.height, out + i * f.height * f.width);
  });
  return planes;
}

}  // namespace cpu
}  // namespace fastmix
