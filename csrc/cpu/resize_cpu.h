// ResizeMix on the CPU: one row of a box at a time from the partner it shrinks (resize_taps.h's
// rule), read from the partner where it lies and written where the caller wants it: in place into
// the sample's box (mix_cpu.cpp), into a box-sized buffer for a swapped pair, or into a staged row
// of mix_into_cpu.cpp. Taps are computed once per box; a row is a loop over them with the rounding
// of the reference (products and sums apart, no FMA: -ffp-contract=off), 16 pixels a step with
// AVX-512 for float32 rows and the collate's uint8 HWC rows.
#pragma once

#include <climits>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../mix_plan.h"
#include "../resize_taps.h"
#include "blend_math.h"

namespace fastmix {
namespace cpu {

// Where a resize reads one channel of its source image: rows row_stride elements apart, pixels
// col_stride apart.
struct ResizeSource {
  int64_t height, width, row_stride, col_stride;
};

// The taps of one box: per box row the source rows, per box column the source offsets (already
// times col_stride), and their weights.
template <typename acc_t>
struct ResizeTaps {
  bool nearest = false;
  int64_t rows = 0, cols = 0;
  std::vector<int64_t> row_lo, row_hi, col_lo, col_hi;
  std::vector<acc_t> row_w_lo, row_w_hi, col_w_lo, col_w_hi;
  std::vector<int32_t> col_lo32, col_hi32;  // col_lo, col_hi as int32 where they fit: the gathers' indices

  ResizeTaps(const ResizeSource& s, int64_t box_rows, int64_t box_cols, bool is_nearest)
      : nearest(is_nearest), rows(box_rows), cols(box_cols), row_lo(box_rows), row_hi(box_rows), col_lo(box_cols),
        col_hi(box_cols), row_w_lo(box_rows), row_w_hi(box_rows), col_w_lo(box_cols), col_w_hi(box_cols) {
    for (int64_t r = 0; r < rows; ++r) {
      if (nearest) {
        row_lo[r] = row_hi[r] = nearest_tap(r, s.height, rows);
        continue;
      }
      const LinearTap<acc_t> t = linear_tap<acc_t>(r, s.height, rows);
      row_lo[r] = t.lo, row_hi[r] = t.hi, row_w_lo[r] = t.w_lo, row_w_hi[r] = t.w_hi;
    }
    for (int64_t q = 0; q < cols; ++q) {
      if (nearest) {
        col_lo[q] = col_hi[q] = nearest_tap(q, s.width, cols) * s.col_stride;
        continue;
      }
      const LinearTap<acc_t> t = linear_tap<acc_t>(q, s.width, cols);
      col_lo[q] = t.lo * s.col_stride, col_hi[q] = t.hi * s.col_stride;
      col_w_lo[q] = t.w_lo, col_w_hi[q] = t.w_hi;
    }
    if (cols > 0 && (s.width - 1) * s.col_stride <= INT32_MAX) {
      col_lo32.assign(col_lo.begin(), col_lo.end());
      col_hi32.assign(col_hi.begin(), col_hi.end());
    }
  }
};

// A source row a later box row reads, fetched into the cache ahead of it: the rows a box reads
// skip some of the image's, which the hardware's prefetchers do not follow. 8 rows ahead: batch-mode
// ResizeMix in place 1.4-1.7x one pass instead of 2.0-2.3x (benchmarks/resize_inplace.py, interleaved
// runs with and without; 4 and 14 rows ahead no better).
constexpr int64_t kRowsAhead = 8;
template <typename T>
inline void fetch_ahead(const T* channel, const ResizeSource& s, int64_t row) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (row >= s.height) return;
  const char* ahead = reinterpret_cast<const char*>(channel + row * s.row_stride);
  const int64_t bytes = ((s.width - 1) * s.col_stride + 1) * int64_t(sizeof(T));
  // (an asm statement: GCC deletes a loop of __builtin_prefetch here, as one without side effects)
  for (int64_t b = 0; b < bytes; b += 64) asm volatile("prefetcht0 %0" : : "m"(ahead[b]));
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
// float32 rows, the in-place batch's common case, 16 pixels a step with AVX-512: a box shrinks its
// partner by less than 2x (ResizeMix's scales), so the taps of 16 box columns lie in a window of 32
// source pixels, two loads (masked at the row's end), from which two-register permutes pick each
// lane's taps. (Gathers would be simpler, and on this project's CPUs no faster than scalar loads.)
// A window wider than that, and the last pixels, take the scalar loop. The arithmetic is the scalar
// loop's, product for product (no FMA), so its bits. Chosen at run time (avx512_resize).

// The window of row[base, base + 32) clipped to row[0, width): two registers.
__attribute__((target("avx512f"))) inline void source_window(const float* row, int64_t base, int64_t width,
                                                              __m512* low, __m512* high) {
  const int64_t left = width - base;  // pixels of the row from base on (>= 1)
  const __mmask16 first = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u);
  const __mmask16 second = left >= 32 ? __mmask16(0xffff) : left <= 16 ? __mmask16(0) : __mmask16((1u << (left - 16)) - 1u);
  *low = _mm512_maskz_loadu_ps(first, row + base);
  *high = _mm512_maskz_loadu_ps(second, row + base + 16);
}

// The 16 lanes of a bilinear step from the windows of the upper (t0, t1) and lower (b0, b1) source
// rows: taps l, h in the window, weights along W, then along H (the scalar loop's order).
__attribute__((target("avx512f"))) inline __m512 bilinear_lanes(__m512 t0, __m512 t1, __m512 b0, __m512 b1, __m512i l,
                                                                 __m512i h, __m512 wl, __m512 wh, __m512 wy_lo,
                                                                 __m512 wy_hi) {
  const __m512 upper = _mm512_add_ps(_mm512_mul_ps(_mm512_permutex2var_ps(t0, l, t1), wl),
                                     _mm512_mul_ps(_mm512_permutex2var_ps(t0, h, t1), wh));
  const __m512 lower = _mm512_add_ps(_mm512_mul_ps(_mm512_permutex2var_ps(b0, l, b1), wl),
                                     _mm512_mul_ps(_mm512_permutex2var_ps(b0, h, b1), wh));
  return _mm512_add_ps(_mm512_mul_ps(upper, wy_lo), _mm512_mul_ps(lower, wy_hi));
}

// Columns [q, q + 16) fit one window when their last tap lies within 32 pixels of their first.
inline bool window_fits(const int32_t* lo, const int32_t* hi, int64_t q) { return hi[q + 15] - lo[q] < 32; }

__attribute__((target("avx512f"))) inline void bilinear_row_avx512(const float* top, const float* bottom,
                                                                    const int32_t* lo, const int32_t* hi,
                                                                    const float* w_lo, const float* w_hi, float wy_lo,
                                                                    float wy_hi, float* out, int64_t n, int64_t width) {
  const __m512 vy_lo = _mm512_set1_ps(wy_lo), vy_hi = _mm512_set1_ps(wy_hi);
  int64_t q = 0;
  for (; q + 16 <= n && window_fits(lo, hi, q); q += 16) {
    const int64_t base = lo[q];
    const __m512i first = _mm512_set1_epi32(static_cast<int32_t>(base));
    const __m512i l = _mm512_sub_epi32(_mm512_loadu_si512(lo + q), first);
    const __m512i h = _mm512_sub_epi32(_mm512_loadu_si512(hi + q), first);
    const __m512 wl = _mm512_loadu_ps(w_lo + q), wh = _mm512_loadu_ps(w_hi + q);
    __m512 t0, t1, b0, b1;
    source_window(top, base, width, &t0, &t1);
    source_window(bottom, base, width, &b0, &b1);
    _mm512_storeu_ps(out + q, bilinear_lanes(t0, t1, b0, b1, l, h, wl, wh, vy_lo, vy_hi));
  }
  for (; q < n; ++q) {
    const float upper = top[lo[q]] * w_lo[q] + top[hi[q]] * w_hi[q];
    const float lower = bottom[lo[q]] * w_lo[q] + bottom[hi[q]] * w_hi[q];
    out[q] = upper * wy_lo + lower * wy_hi;
  }
}

__attribute__((target("avx512f"))) inline void nearest_row_avx512(const float* row, const int32_t* at, float* out,
                                                                   int64_t n, int64_t width) {
  int64_t q = 0;
  for (; q + 16 <= n && window_fits(at, at, q); q += 16) {
    const int64_t base = at[q];
    __m512 w0, w1;
    source_window(row, base, width, &w0, &w1);
    const __m512i k = _mm512_sub_epi32(_mm512_loadu_si512(at + q), _mm512_set1_epi32(static_cast<int32_t>(base)));
    _mm512_storeu_ps(out + q, _mm512_permutex2var_ps(w0, k, w1));
  }
  for (; q < n; ++q) out[q] = row[at[q]];
}

// The taps of a row whose C channels interleave (HWC, the collate's decoded samples), per element
// of the row: element q * C + c reads source elements col_lo[q] + c and col_hi[q] + c.
struct InterleavedTaps {
  std::vector<int32_t> lo, hi;
  std::vector<float> w_lo, w_hi;
  InterleavedTaps(const ResizeTaps<float>& taps, int64_t channels) {
    for (auto* v : {&lo, &hi}) v->reserve(static_cast<size_t>(taps.cols * channels));
    for (auto* v : {&w_lo, &w_hi}) v->reserve(static_cast<size_t>(taps.cols * channels));
    for (int64_t q = 0; q < taps.cols; ++q)
      for (int64_t c = 0; c < channels; ++c) {
        lo.push_back(static_cast<int32_t>(taps.col_lo[q] + c)), hi.push_back(static_cast<int32_t>(taps.col_hi[q] + c));
        w_lo.push_back(taps.col_w_lo[q]), w_hi.push_back(taps.col_w_hi[q]);
      }
  }
};

// 32 source bytes from p (all inside the row: the caller checks), as float32 in two registers.
__attribute__((target("avx512f"))) inline void widened_window(const uint8_t* p, __m512* low, __m512* high) {
  *low = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  *high = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16))));
}

// A bilinear row of uint8 HWC source rows `top` and `bottom` (row_len elements each), all channels
// at once, 16 elements a step where their taps lie in 32 source bytes (away from the row's end),
// converted to float32 there and picked by permutes; to uint8 (rounded half to even, as from_acc)
// or float32 staging. The scalar loop's arithmetic, so its bits.
template <typename D>
__attribute__((target("avx512f"))) inline void bilinear_interleaved_row_avx512(
    const uint8_t* top, const uint8_t* bottom, const InterleavedTaps& t, float wy_lo, float wy_hi, D* out,
    int64_t row_len) {
  const int64_t n = static_cast<int64_t>(t.lo.size());
  const __m512 vy_lo = _mm512_set1_ps(wy_lo), vy_hi = _mm512_set1_ps(wy_hi);
  int64_t q = 0;
  for (; q + 16 <= n && t.hi[q + 15] - t.lo[q] < 32 && t.lo[q] + 32 <= row_len; q += 16) {
    const __m512i first = _mm512_set1_epi32(t.lo[q]);
    const __m512i l = _mm512_sub_epi32(_mm512_loadu_si512(t.lo.data() + q), first);
    const __m512i h = _mm512_sub_epi32(_mm512_loadu_si512(t.hi.data() + q), first);
    const __m512 wl = _mm512_loadu_ps(t.w_lo.data() + q), wh = _mm512_loadu_ps(t.w_hi.data() + q);
    __m512 t0, t1, b0, b1;
    widened_window(top + t.lo[q], &t0, &t1);
    widened_window(bottom + t.lo[q], &b0, &b1);
    const __m512 v = bilinear_lanes(t0, t1, b0, b1, l, h, wl, wh, vy_lo, vy_hi);
    if constexpr (std::is_same_v<D, uint8_t>) {
      const __m512i rounded = _mm512_max_epi32(_mm512_cvtps_epi32(v), _mm512_setzero_si512());  // nearest even
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + q), _mm512_cvtusepi32_epi8(rounded));  // saturated
    } else {
      _mm512_storeu_ps(out + q, v);
    }
  }
  for (; q < n; ++q) {
    const float upper = static_cast<float>(top[t.lo[q]]) * t.w_lo[q] + static_cast<float>(top[t.hi[q]]) * t.w_hi[q];
    const float lower =
        static_cast<float>(bottom[t.lo[q]]) * t.w_lo[q] + static_cast<float>(bottom[t.hi[q]]) * t.w_hi[q];
    out[q] = from_acc<D>(upper * wy_lo + lower * wy_hi);
  }
}

inline bool avx512_resize() {
  static const bool supported = __builtin_cpu_supports("avx512f");
  return supported;
}
#define FASTMIX_VECTOR_RESIZE 1
#endif

// A source value as the destination type holds it: converted (uint8 -> float32), never rounded.
template <typename D, typename T>
FASTMIX_ALWAYS_INLINE D as_value(T v) {
  if constexpr (std::is_same_v<D, T>) return v;
  else return static_cast<D>(static_cast<float>(v));
}

// Row r of the box from one channel of the source (`channel` points at its (0, 0) pixel), to
// out[q * out_stride] for q in [0, cols): bilinear values rounded to D as the reference casts back
// (from_acc), nearest values as they are.
template <typename acc_t, typename T, typename D>
void resize_box_row(const T* channel, const ResizeSource& s, const ResizeTaps<acc_t>& taps, int64_t r, D* out,
                    int64_t out_stride) {
  const T* top = channel + taps.row_lo[r] * s.row_stride;
  fetch_ahead(channel, s, (taps.nearest ? taps.row_lo[r] : taps.row_hi[r]) + kRowsAhead);
  if (taps.nearest) {
#ifdef FASTMIX_VECTOR_RESIZE
    if constexpr (std::is_same_v<T, float> && std::is_same_v<D, float>) {
      if (out_stride == 1 && s.col_stride == 1 && !taps.col_lo32.empty() && avx512_resize()) {
        return nearest_row_avx512(top, taps.col_lo32.data(), out, taps.cols, s.width);
      }
    }
#endif
    for (int64_t q = 0; q < taps.cols; ++q) out[q * out_stride] = as_value<D>(top[taps.col_lo[q]]);
    return;
  }
  const T* bottom = channel + taps.row_hi[r] * s.row_stride;
  const acc_t wy_lo = taps.row_w_lo[r], wy_hi = taps.row_w_hi[r];
#ifdef FASTMIX_VECTOR_RESIZE
  if constexpr (std::is_same_v<T, float> && std::is_same_v<D, float>) {
    if (out_stride == 1 && s.col_stride == 1 && !taps.col_lo32.empty() && avx512_resize()) {
      return bilinear_row_avx512(top, bottom, taps.col_lo32.data(), taps.col_hi32.data(), taps.col_w_lo.data(),
                                 taps.col_w_hi.data(), wy_lo, wy_hi, out, taps.cols, s.width);
    }
  }
#endif
  const int64_t* lo = taps.col_lo.data();
  const int64_t* hi = taps.col_hi.data();
  const acc_t* wx_lo = taps.col_w_lo.data();
  const acc_t* wx_hi = taps.col_w_hi.data();
  for (int64_t q = 0; q < taps.cols; ++q) {
    const acc_t t_lo = static_cast<acc_t>(top[lo[q]]) * wx_lo[q], t_hi = static_cast<acc_t>(top[hi[q]]) * wx_hi[q];
    const acc_t b_lo = static_cast<acc_t>(bottom[lo[q]]) * wx_lo[q],
                b_hi = static_cast<acc_t>(bottom[hi[q]]) * wx_hi[q];
    const acc_t upper = t_lo + t_hi, lower = b_lo + b_hi;
    const acc_t v_upper = upper * wy_lo, v_lower = lower * wy_hi;
    out[q * out_stride] = from_acc<D>(v_upper + v_lower);
  }
}

}  // namespace cpu
}  // namespace fastmix
