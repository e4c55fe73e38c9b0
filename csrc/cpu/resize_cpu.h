// ResizeMix on the CPU: one row of a box at a time from the partner it shrinks (resize_taps.h's
// rule), read from the partner where it lies and written where the caller wants it: in place into
// the sample's box (mix_cpu.cpp), into a box-sized buffer for a swapped pair, or into a staged row
// of mix_into_cpu.cpp. Taps are computed once per box; a row is a loop over them with the rounding
// of the reference (products and sums apart, no FMA: -ffp-contract=off), 16 pixels a step with
// AVX-512 for float32 rows and the collate's uint8 HWC rows.
#pragma once

#include <algorithm>
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

// A vector row's taps, padded to whole steps of 16 with copies of the last: a row's last step
// computes all 16 lanes and stores the real ones.
template <typename V>
void pad_to_steps(std::vector<V>& v) {
  if (!v.empty()) v.resize((v.size() + 15) / 16 * 16, v.back());
}

// The taps of one box: per box row the source rows, per box column the source offsets (already
// times col_stride), and their weights.
template <typename acc_t>
struct ResizeTaps {
  bool nearest = false;
  int64_t rows = 0, cols = 0;
  std::vector<int64_t> row_lo, row_hi, col_lo, col_hi;
  std::vector<acc_t> row_w_lo, row_w_hi, col_w_lo, col_w_hi;
  std::vector<int32_t> col_lo32, col_hi32;  // col_lo, col_hi as int32 where they fit: the vector rows' taps

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
      for (auto* v : {&col_lo32, &col_hi32}) pad_to_steps(*v);
      for (auto* v : {&col_w_lo, &col_w_hi}) pad_to_steps(*v);  // (the scalar loops stop at cols)
    }
  }
};

// The source rows later box rows read, fetched into the cache ahead of them: the rows a box reads
// skip some of the image's, which the hardware's prefetchers do not follow. 8 rows ahead: batch-mode
// ResizeMix in place 1.4-1.7x one pass instead of 2.0-2.3x (benchmarks/resize_inplace.py, interleaved
// runs with and without; 4 and 14 rows ahead no better).
constexpr int64_t kRowsAhead = 8;
template <typename T>
inline void fetch_row(const T* channel, const ResizeSource& s, int64_t row) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (row >= s.height) return;
  const char* ahead = reinterpret_cast<const char*>(channel + row * s.row_stride);
  const int64_t bytes = ((s.width - 1) * s.col_stride + 1) * int64_t(sizeof(T));
  // (an asm statement: GCC deletes a loop of __builtin_prefetch here, as one without side effects)
  for (int64_t b = 0; b < bytes; b += 64) asm volatile("prefetcht0 %0" : : "m"(ahead[b]));
#endif
}

// Box row r's share of the fetching: the source rows kRowsAhead beyond the last one it reads, back
// to those of row r - 1 (a box that shrinks by 1.7x moves 1.7 source rows a box row; fetching one
// row a box row left the others to miss).
template <typename acc_t, typename T>
inline void fetch_ahead(const T* channel, const ResizeSource& s, const ResizeTaps<acc_t>& taps, int64_t r) {
  const std::vector<int64_t>& last = taps.nearest ? taps.row_lo : taps.row_hi;
  const int64_t from = r > 0 ? last[r - 1] + 1 : last[r];
  for (int64_t row = from; row <= last[r]; ++row) fetch_row(channel, s, row + kRowsAhead);
}

// A source value as the destination type holds it: converted (uint8 -> float32), never rounded.
template <typename D, typename T>
FASTMIX_ALWAYS_INLINE D as_value(T v) {
  if constexpr (std::is_same_v<D, T>) return v;
  else return static_cast<D>(static_cast<float>(v));
}

#if defined(__x86_64__) && defined(__GNUC__)
// Rows of float32 or uint8 with AVX-512, 16 box elements a step: the in-place batch's float32 rows,
// and the collate's uint8 HWC rows, all channels at once (InterleavedTaps). Where a box shrinks its
// partner by less than 2x (most of ResizeMix's scales) the taps of 16 elements lie in a window of 32
// source elements, two float32 registers (masked loads at the row's end), from which two-register
// permutes pick each lane's taps; where it shrinks more (its smallest boxes, and the narrow ones
// clipping leaves), each half or quarter of the 16 in a window of its own, picked and blended. (Gathers would be simpler, and on this project's
// CPUs no faster than scalar loads.) Wider steps and the last elements take the scalar loop. The
// arithmetic is the scalar loop's, product for product (no FMA), so its bits. Chosen at run time
// (avx512_resize).
#define FASTMIX_RESIZE_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define FASTMIX_RESIZE_AVX512_STEP __attribute__((target("avx512f,avx512bw,avx512vl"), always_inline))

// The window of row[base, base + 32) clipped to row[0, width) (base < width), as float32 in two
// registers: masked loads, which never touch what lies past the row.
FASTMIX_RESIZE_AVX512_STEP inline void source_window(const float* row, int64_t base, int64_t width, __m512* low,
                                               __m512* high) {
  const int64_t left = width - base;
  const __mmask16 first = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u);
  const __mmask16 second = left >= 32 ? __mmask16(0xffff) : left <= 16 ? __mmask16(0) : __mmask16((1u << (left - 16)) - 1u);
  *low = _mm512_maskz_loadu_ps(first, row + base);
  *high = _mm512_maskz_loadu_ps(second, row + base + 16);
}

FASTMIX_RESIZE_AVX512_STEP inline void source_window(const uint8_t* row, int64_t base, int64_t width, __m512* low,
                                               __m512* high) {
  const int64_t left = width - base;
  const __m256i bytes = _mm256_maskz_loadu_epi8(left >= 32 ? ~__mmask32(0) : __mmask32((1u << left) - 1u), row + base);
  *low = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(bytes)));
  *high = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(bytes, 1)));
}

// How many windows the taps of elements [q, q + 16) need: 1 when they lie within 32 of the first;
// 2 when lanes 0-7 and lanes 8-15 each do (a box that shrinks by 2-4x, the smallest boxes ResizeMix
// draws); 4 when each quarter does (the narrow boxes that clipping at the image's edge leaves, down
// to an eighth of the image for float32 rows, about a tenth for HWC ones); else 0 (the scalar loop's).
inline int windows_needed(const int32_t* lo, const int32_t* hi, int64_t q) {
  for (int windows = 1; windows <= 4; windows *= 2) {
    const int lanes = 16 / windows;
    bool fits = true;
    for (int w = 0; w < windows; ++w) fits = fits && hi[q + w * lanes + lanes - 1] - lo[q + w * lanes] < 32;
    if (fits) return windows;
  }
  return 0;
}

// The windows of elements [q, q + 16) in one row, each lane's in w[2 * j], w[2 * j + 1] from
// lo[q + j * 16 / Windows]. Returns each lane's window start, so that a tap minus it is the tap's
// place in its window.
template <int Windows, typename T>
FASTMIX_RESIZE_AVX512_STEP inline __m512i load_windows(const T* row, int64_t width, const int32_t* lo, int64_t q,
                                                  __m512 w[2 * Windows]) {
  constexpr int lanes = 16 / Windows;
  __m512i starts = _mm512_set1_epi32(lo[q]);
  source_window(row, lo[q], width, &w[0], &w[1]);
  for (int j = 1; j < Windows; ++j) {
    source_window(row, lo[q + j * lanes], width, &w[2 * j], &w[2 * j + 1]);
    starts = _mm512_mask_set1_epi32(starts, __mmask16(((1u << lanes) - 1u) << (j * lanes)), lo[q + j * lanes]);
  }
  return starts;
}

// Each lane's value at place k of its window.
template <int Windows>
FASTMIX_RESIZE_AVX512_STEP inline __m512 pick(const __m512 w[2 * Windows], __m512i k) {
  constexpr int lanes = 16 / Windows;
  __m512 v = _mm512_permutex2var_ps(w[0], k, w[1]);
  for (int j = 1; j < Windows; ++j)
    v = _mm512_mask_blend_ps(__mmask16(((1u << lanes) - 1u) << (j * lanes)), v,
                             _mm512_permutex2var_ps(w[2 * j], k, w[2 * j + 1]));
  return v;
}

// The lanes of `keep` to out: float32 as they are, uint8 rounded half to even and saturated (from_acc's;
// the values are never negative: weighted sums of uint8s with weights >= 0).
template <typename D>
FASTMIX_RESIZE_AVX512_STEP inline void store_lanes(D* out, __m512 v, __mmask16 keep) {
  if constexpr (std::is_same_v<D, uint8_t>) {
    _mm_mask_storeu_epi8(out, keep, _mm512_cvtusepi32_epi8(_mm512_cvtps_epi32(v)));
  } else {
    _mm512_mask_storeu_ps(out, keep, v);
  }
}

// The 16 lanes of a bilinear step from their taps in the upper (t_lo, t_hi) and lower (b_lo, b_hi)
// source rows: weights along W, then along H (the scalar loop's order).
FASTMIX_RESIZE_AVX512_STEP inline __m512 bilinear_lanes(__m512 t_lo, __m512 t_hi, __m512 b_lo, __m512 b_hi, __m512 wl,
                                                  __m512 wh, __m512 wy_lo, __m512 wy_hi) {
  const __m512 upper = _mm512_add_ps(_mm512_mul_ps(t_lo, wl), _mm512_mul_ps(t_hi, wh));
  const __m512 lower = _mm512_add_ps(_mm512_mul_ps(b_lo, wl), _mm512_mul_ps(b_hi, wh));
  return _mm512_add_ps(_mm512_mul_ps(upper, wy_lo), _mm512_mul_ps(lower, wy_hi));
}

// Bilinear elements [q, q + 16) of a box row from source rows `top` and `bottom` (width elements
// each), the lanes of `keep` stored: element q reads lo[q] and hi[q] with weights w_lo[q], w_hi[q].
template <int Windows, typename T, typename D>
FASTMIX_RESIZE_AVX512_STEP inline void bilinear_step(const T* top, const T* bottom, const int32_t* lo, const int32_t* hi,
                                                const float* w_lo, const float* w_hi, __m512 wy_lo, __m512 wy_hi,
                                                D* out, int64_t q, int64_t width, __mmask16 keep) {
  __m512 t[2 * Windows], b[2 * Windows];
  const __m512i starts = load_windows<Windows>(top, width, lo, q, t);
  load_windows<Windows>(bottom, width, lo, q, b);
  const __m512i l = _mm512_sub_epi32(_mm512_loadu_si512(lo + q), starts);
  const __m512i h = _mm512_sub_epi32(_mm512_loadu_si512(hi + q), starts);
  const __m512 wl = _mm512_loadu_ps(w_lo + q), wh = _mm512_loadu_ps(w_hi + q);
  store_lanes(out + q,
              bilinear_lanes(pick<Windows>(t, l), pick<Windows>(t, h), pick<Windows>(b, l), pick<Windows>(b, h), wl,
                             wh, wy_lo, wy_hi),
              keep);
}

// The lanes of the step at q that are elements of a row of n.
inline __mmask16 lanes_in_row(int64_t q, int64_t n) {
  return n - q >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - q)) - 1u);
}

// n elements of a bilinear box row, 16 a step where windows_needed allows, else one at a time.
// lo, hi, w_lo, w_hi hold whole steps (pad_to_steps).
template <typename T, typename D>
FASTMIX_RESIZE_AVX512 inline void bilinear_row_avx512(const T* top, const T* bottom, const int32_t* lo,
                                                      const int32_t* hi, const float* w_lo, const float* w_hi,
                                                      float wy_lo, float wy_hi, D* out, int64_t n, int64_t width) {
  const __m512 vy_lo = _mm512_set1_ps(wy_lo), vy_hi = _mm512_set1_ps(wy_hi);
  for (int64_t q = 0; q < n; q += 16) {
    const __mmask16 keep = lanes_in_row(q, n);
    switch (windows_needed(lo, hi, q)) {
      case 1: bilinear_step<1>(top, bottom, lo, hi, w_lo, w_hi, vy_lo, vy_hi, out, q, width, keep); break;
      case 2: bilinear_step<2>(top, bottom, lo, hi, w_lo, w_hi, vy_lo, vy_hi, out, q, width, keep); break;
      case 4: bilinear_step<4>(top, bottom, lo, hi, w_lo, w_hi, vy_lo, vy_hi, out, q, width, keep); break;
      default:
        for (int64_t k = q; k < std::min(n, q + 16); ++k) {
          const float upper = static_cast<float>(top[lo[k]]) * w_lo[k] + static_cast<float>(top[hi[k]]) * w_hi[k];
          const float lower =
              static_cast<float>(bottom[lo[k]]) * w_lo[k] + static_cast<float>(bottom[hi[k]]) * w_hi[k];
          out[k] = from_acc<D>(upper * wy_lo + lower * wy_hi);
        }
    }
  }
}

// Nearest elements [q, q + 16) of a box row from source row `row` (width elements), the lanes of
// `keep` stored: row[at[q]].
template <int Windows, typename T, typename D>
FASTMIX_RESIZE_AVX512_STEP inline void nearest_step(const T* row, const int32_t* at, D* out, int64_t q, int64_t width,
                                               __mmask16 keep) {
  __m512 w[2 * Windows];
  const __m512i starts = load_windows<Windows>(row, width, at, q, w);
  store_lanes(out + q, pick<Windows>(w, _mm512_sub_epi32(_mm512_loadu_si512(at + q), starts)), keep);  // exact
}

// n elements of a nearest box row; `at` holds whole steps (pad_to_steps).
template <typename T, typename D>
FASTMIX_RESIZE_AVX512 inline void nearest_row_avx512(const T* row, const int32_t* at, D* out, int64_t n,
                                                     int64_t width) {
  for (int64_t q = 0; q < n; q += 16) {
    const __mmask16 keep = lanes_in_row(q, n);
    switch (windows_needed(at, at, q)) {
      case 1: nearest_step<1>(row, at, out, q, width, keep); break;
      case 2: nearest_step<2>(row, at, out, q, width, keep); break;
      case 4: nearest_step<4>(row, at, out, q, width, keep); break;
      default:
        for (int64_t k = q; k < std::min(n, q + 16); ++k) out[k] = as_value<D>(row[at[k]]);
    }
  }
}

// The taps of a row whose C channels interleave (HWC, the collate's decoded samples), per element
// of the row: element q * C + c reads source elements col_lo[q] + c and col_hi[q] + c. In whole
// steps (pad_to_steps).
struct InterleavedTaps {
  std::vector<int32_t> lo, hi;
  std::vector<float> w_lo, w_hi;
  int64_t elements;
  InterleavedTaps(const ResizeTaps<float>& taps, int64_t channels) : elements(taps.cols * channels) {
    for (auto* v : {&lo, &hi}) v->reserve(static_cast<size_t>(elements + 15));
    for (auto* v : {&w_lo, &w_hi}) v->reserve(static_cast<size_t>(elements + 15));
    for (int64_t q = 0; q < taps.cols; ++q)
      for (int64_t c = 0; c < channels; ++c) {
        lo.push_back(static_cast<int32_t>(taps.col_lo[q] + c)), hi.push_back(static_cast<int32_t>(taps.col_hi[q] + c));
        w_lo.push_back(taps.col_w_lo[q]), w_hi.push_back(taps.col_w_hi[q]);
      }
    for (auto* v : {&lo, &hi}) pad_to_steps(*v);
    for (auto* v : {&w_lo, &w_hi}) pad_to_steps(*v);
  }
};

inline bool avx512_resize() {
  static const bool supported =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return supported;
}
#define FASTMIX_VECTOR_RESIZE 1
#endif

#ifdef FASTMIX_VECTOR_RESIZE
// The in-place batches whose dense rows take the vector rows: float32 and uint8.
template <typename acc_t, typename T, typename D>
constexpr bool vector_rows() {
  return std::is_same_v<T, D> && std::is_same_v<acc_t, float> && (std::is_same_v<T, float> || std::is_same_v<T, uint8_t>);
}
#endif

// Row r of the box from one channel of the source (`channel` points at its (0, 0) pixel), to
// out[q * out_stride] for q in [0, cols): bilinear values rounded to D as the reference casts back
// (from_acc), nearest values as they are.
template <typename acc_t, typename T, typename D>
void resize_box_row(const T* channel, const ResizeSource& s, const ResizeTaps<acc_t>& taps, int64_t r, D* out,
                    int64_t out_stride) {
  const T* top = channel + taps.row_lo[r] * s.row_stride;
  fetch_ahead(channel, s, taps, r);
  if (taps.nearest) {
#ifdef FASTMIX_VECTOR_RESIZE
    if constexpr (vector_rows<acc_t, T, D>()) {
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
  if constexpr (vector_rows<acc_t, T, D>()) {
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
