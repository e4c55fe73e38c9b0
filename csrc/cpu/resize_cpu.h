// ResizeMix on the CPU: one row of a box at a time from the partner it shrinks (resize_taps.h's
// rule), read from the partner where it lies and written where the caller wants it: in place into
// the sample's box (mix_cpu.cpp), into a box-sized buffer for a swapped pair, or into a staged row
// of mix_into_cpu.cpp. Taps are computed once per box; a row is a loop over them with the rounding
// of the reference (products and sums apart, no FMA: -ffp-contract=off), 16 elements a step with
// AVX-512, 8 with AVX2, for the float32 and uint8 rows of in-place batches and the collate's uint8
// HWC rows (bilinear and nearest; uint8 with VBMI's byte permutes where the CPU has them), the
// scalar loop for the others. A bilinear row is two width passes (along W, one per source row it
// reads) and their blend along H; a thread keeps the last two passes, which the next box row often
// reads.
#pragma once

#include <algorithm>
#include <climits>
#include <cstddef>
#include <optional>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../mix_plan.h"
#include "../resize_taps.h"
#include "blend_math.h"
#include "cpu_features.h"

namespace fastmix {
namespace cpu {

// Where a resize reads one channel of its source image: rows row_stride elements apart, pixels
// col_stride apart.
struct ResizeSource {
  int64_t height, width, row_stride, col_stride;
};

// The window of the vector rows that read T's rows (VectorTaps below): 64 bytes for uint8 where the
// CPU has VBMI's byte permutes, which pick a step's tap bytes from it straight (2 shuffles a step,
// where the float rows convert a window's 32 bytes and permute float32 registers: 5); 32 elements
// (two registers) with AVX-512; 16 with AVX2 (two registers of 8); 0 where the CPU has neither.
template <typename T>
int32_t vector_window() {
  if (cpu_has_avx512()) return std::is_same_v<T, uint8_t> && cpu_has_avx512_vbmi() ? 64 : 32;
  return cpu_has_avx2() ? 16 : 0;
}

// The elements of a vector row's step for a window: 16 (AVX-512), 8 (AVX2's 16-element windows).
inline int32_t vector_lanes(int32_t window) { return window >= 32 ? 16 : 8; }

// A vector row's arrays, padded to whole steps of `lanes` with copies of the last: a row's last
// step computes all its lanes and stores the real ones.
template <typename V>
void pad_to_steps(std::vector<V>& v, size_t lanes) {
  if (!v.empty()) v.resize((v.size() + lanes - 1) / lanes * lanes, v.back());
}

// The taps of a box row's elements as the vector rows read them (below), planned once per box:
// a row of `channels` interleaved channels (1: planar), element q * channels + c reading source
// elements col_lo[q] + c and col_hi[q] + c of a row of row_elements. Per step of `lanes` elements
// (16; 8 with AVX2's windows of 16): how many windows of `window` source elements (32: two float32
// registers; 64: a register of bytes, for uint8 rows on CPUs with VBMI's byte permutes; 16: two
// AVX2 registers) its taps need (1 where the box shrinks its
// partner by less than 2x on planar rows of 32, about 1.7x on RGB ones, 3.5x with 64: most of
// ResizeMix's scales; 2, a window per half, or 4, per quarter, for the smallest and the clipped
// boxes; 0: wider still, the scalar loop's), where each window starts and which of its elements
// lie in the row; per element, its taps' places in its window.
struct VectorTaps {
  struct Step {
    int32_t windows;
    int32_t start[4];
    uint64_t in_row[4];  // bit k: element start + k lies in the row (AVX-512's load masks; AVX2 copies)
  };
  int64_t elements;
  int32_t window, lanes;
  std::vector<int32_t> lo, hi;        // per element, source offsets (the scalar loop's)
  std::vector<float> w_lo, w_hi;      // per element, weights
  std::vector<int32_t> lo_at, hi_at;  // per element, lo and hi minus its window's start
  std::vector<Step> steps;

  template <typename acc_t>
  VectorTaps(const std::vector<int64_t>& col_lo, const std::vector<int64_t>& col_hi, const std::vector<acc_t>& col_w_lo,
             const std::vector<acc_t>& col_w_hi, int64_t cols, int64_t channels, int64_t row_elements,
             int32_t window_elements)
      : elements(cols * channels), window(window_elements), lanes(vector_lanes(window_elements)) {
    for (auto* v : {&lo, &hi}) v->reserve(static_cast<size_t>(elements + 15));
    for (auto* v : {&w_lo, &w_hi}) v->reserve(static_cast<size_t>(elements + 15));
    for (int64_t q = 0; q < cols; ++q)
      for (int64_t c = 0; c < channels; ++c) {
        lo.push_back(static_cast<int32_t>(col_lo[q] + c)), hi.push_back(static_cast<int32_t>(col_hi[q] + c));
        w_lo.push_back(static_cast<float>(col_w_lo[q])), w_hi.push_back(static_cast<float>(col_w_hi[q]));
      }
    const size_t step_lanes = static_cast<size_t>(lanes);
    for (auto* v : {&lo, &hi}) pad_to_steps(*v, step_lanes);
    for (auto* v : {&w_lo, &w_hi}) pad_to_steps(*v, step_lanes);
    lo_at.resize(lo.size()), hi_at.resize(hi.size());
    for (size_t q = 0; q < lo.size(); q += step_lanes) {
      Step step{0, {0, 0, 0, 0}, {0, 0, 0, 0}};
      for (int windows = 1; windows <= 4 && step.windows == 0; windows *= 2) {
        const size_t lanes = step_lanes / windows;
        bool fits = true;
        for (int w = 0; w < windows; ++w) {
          // (the highest tap, not the last lane's: at the right edge of an HWC row the last pixel's
          // hi is its lo, below an earlier channel's)
          // (and the lowest: a box wider than its source, which ResizeMix never draws, would put an
          // HWC row's taps below the window's first lane's)
          const auto first = hi.begin() + static_cast<std::ptrdiff_t>(q + w * lanes);
          const auto first_lo = lo.begin() + static_cast<std::ptrdiff_t>(q + w * lanes);
          fits = fits && *std::max_element(first, first + static_cast<std::ptrdiff_t>(lanes)) - *first_lo < window &&
                 *std::min_element(first_lo, first_lo + static_cast<std::ptrdiff_t>(lanes)) >= *first_lo;
        }
        if (fits) step.windows = windows;
      }
      const size_t lanes = step.windows > 0 ? step_lanes / step.windows : step_lanes;
      for (int w = 0; w < step.windows; ++w) {
        const int32_t start = lo[q + w * lanes];
        const int64_t left = row_elements - start;  // >= 1
        step.start[w] = start;
        step.in_row[w] = left >= window ? ~uint64_t{0} >> (64 - window) : (uint64_t{1} << left) - 1u;
        for (size_t k = q + w * lanes; k < q + (w + 1) * lanes; ++k) lo_at[k] = lo[k] - start, hi_at[k] = hi[k] - start;
      }
      steps.push_back(step);
    }
  }
};

// The taps of one box: per box row the source rows, per box column the source offsets (already
// times col_stride), and their weights; with float accumulation, rows whose pixels are adjacent
// and a CPU with the vector rows, their plan as well (so a row takes the vector rows where
// `vector` is set, with no check of the CPU of its own).
template <typename acc_t>
struct ResizeTaps {
  bool nearest = false;
  int64_t rows = 0, cols = 0;
  std::vector<int64_t> row_lo, row_hi, col_lo, col_hi;
  std::vector<acc_t> row_w_lo, row_w_hi, col_w_lo, col_w_hi;
  std::optional<VectorTaps> vector;

  // window_elements: vector_window() of the source's type.
  ResizeTaps(const ResizeSource& s, int64_t box_rows, int64_t box_cols, bool is_nearest, int32_t window_elements)
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
    if (std::is_same_v<acc_t, float> && cols > 0 && s.col_stride == 1 && s.width <= INT32_MAX && window_elements > 0)
      vector.emplace(col_lo, col_hi, col_w_lo, col_w_hi, cols, 1, s.width, window_elements);
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

// The width passes (a box row's values along W from one source row: the reference's first
// products and sum) of the last two source rows a thread's vector rows read. Box row r reads source
// rows lo and hi; where the box shrinks its partner by less than 2x (ResizeMix's CutMix-sized boxes,
// most of the area it resizes) row r + 1's lo is often r's hi, whose pass is then kept instead of
// computed again: the same values, each a function of its row and the box's taps. Keyed by the
// row's address, so valid while the source and the taps are those it was filled with: clear()
// where either changes.
struct WidthPassCache {
  std::vector<float> values[2];
  const void* row[2] = {nullptr, nullptr};
  int last = 0;
  void clear() { row[0] = row[1] = nullptr; }
};

#if defined(__x86_64__) && defined(__GNUC__)
// Rows of float32 or uint8 with AVX-512, 16 box elements a step as VectorTaps plans them: the
// in-place batch's rows, and the collate's uint8 HWC rows, all channels at once. A window is two
// float32 registers (masked loads at the row's end), from which two-register permutes pick each
// lane's taps, blended from two or four windows where a step needs them. (Gathers would be simpler,
// and on this project's CPUs no faster than scalar loads.) The arithmetic is the scalar loop's,
// product for product (no FMA), so its bits. Chosen at run time (cpu_has_avx512).
#define FASTMIX_RESIZE_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define FASTMIX_RESIZE_AVX512_STEP __attribute__((target("avx512f,avx512bw,avx512vl"), always_inline))

// The 32 source elements from p, those of in_row (the others are zeros, never read), as float32
// in two registers.
FASTMIX_RESIZE_AVX512_STEP inline void source_window(const float* p, uint64_t in_row, __m512* low, __m512* high) {
  *low = _mm512_maskz_loadu_ps(__mmask16(in_row), p);
  // (p + 16 only where the row reaches it: past a row's end it may lie past the allocation; a
  // load with no lanes reads nothing wherever it points)
  const uint64_t upper = in_row >> 16;
  *high = _mm512_maskz_loadu_ps(__mmask16(upper), upper != 0 ? p + 16 : p);
}

FASTMIX_RESIZE_AVX512_STEP inline void source_window(const uint8_t* p, uint64_t in_row, __m512* low, __m512* high) {
  const __m256i bytes = _mm256_maskz_loadu_epi8(__mmask32(in_row), p);
  *low = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(bytes)));
  *high = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(bytes, 1)));
}

// A step's windows in one source row: window j in w[2 * j], w[2 * j + 1].
template <int Windows, typename T>
FASTMIX_RESIZE_AVX512_STEP inline void load_windows(const T* row, const VectorTaps::Step& step, __m512 w[2 * Windows]) {
  for (int j = 0; j < Windows; ++j) source_window(row + step.start[j], step.in_row[j], &w[2 * j], &w[2 * j + 1]);
}

// Each lane's value at place k of its window (lanes j * 16 / Windows on: window j).
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

// The lanes of the step at q that are elements of a row of n.
inline __mmask16 lanes_in_row(int64_t q, int64_t n) {
  return n - q >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - q)) - 1u);
}

// A VectorTaps' arrays as plain pointers, read once per row: a row's uint8 stores may alias
// anything, so the compiler would read the vectors' data pointers again at every step.
struct StepArrays {
  const VectorTaps::Step* steps;
  const int32_t *lo_at, *hi_at;
  const float *w_lo, *w_hi;
  int64_t elements;
  explicit StepArrays(const VectorTaps& t)
      : steps(t.steps.data()), lo_at(t.lo_at.data()), hi_at(t.hi_at.data()), w_lo(t.w_lo.data()),
        w_hi(t.w_hi.data()), elements(t.elements) {}
};

// Step i (elements 16 i on) of a width pass over one source row: per lane its taps along W,
// weighted and summed (the scalar loop's first products), all 16 lanes.
template <int Windows, typename T>
FASTMIX_RESIZE_AVX512_STEP inline __m512 width_step(const T* row, const StepArrays& t, int64_t i) {
  const int64_t q = 16 * i;
  __m512 w[2 * Windows];
  load_windows<Windows>(row, t.steps[i], w);
  const __m512i l = _mm512_loadu_si512(t.lo_at + q), h = _mm512_loadu_si512(t.hi_at + q);
  return _mm512_add_ps(_mm512_mul_ps(pick<Windows>(w, l), _mm512_loadu_ps(t.w_lo + q)),
                       _mm512_mul_ps(pick<Windows>(w, h), _mm512_loadu_ps(t.w_hi + q)));
}

// Element e of a width pass over `row` the scalar loop's way (the steps whose taps span more than
// four windows).
template <typename T>
inline float width_tap_sum(const T* row, const VectorTaps& taps, size_t e) {
  return static_cast<float>(row[taps.lo[e]]) * taps.w_lo[e] + static_cast<float>(row[taps.hi[e]]) * taps.w_hi[e];
}

template <typename T>
FASTMIX_RESIZE_AVX512_STEP inline __m512 width_step_scalar(const T* row, const VectorTaps& taps, int64_t i) {
  alignas(64) float v[16];
  for (int k = 0; k < 16; ++k) v[k] = width_tap_sum(row, taps, static_cast<size_t>(16 * i + k));
  return _mm512_load_ps(v);
}

// sink(q, values) for each step of the width pass over `row` (elements q to q + 15).
template <typename T, typename Sink>
FASTMIX_RESIZE_AVX512 inline void width_pass_each(const T* row, const VectorTaps& taps, const Sink& sink) {
  const StepArrays t(taps);
  const int64_t steps = static_cast<int64_t>(taps.steps.size());
  for (int64_t i = 0; i < steps; ++i) {
    switch (t.steps[i].windows) {
      case 1: sink(16 * i, width_step<1>(row, t, i)); break;
      case 2: sink(16 * i, width_step<2>(row, t, i)); break;
      case 4: sink(16 * i, width_step<4>(row, t, i)); break;
      default: sink(16 * i, width_step_scalar(row, taps, i));
    }
  }
}

// uint8 rows with VBMI (VectorTaps of 64-byte windows): each lane's tap bytes permuted into its
// int32 lane straight from the window's bytes, then converted as the float rows convert them, so
// the same values.
#define FASTMIX_RESIZE_VBMI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))
#define FASTMIX_RESIZE_VBMI_STEP __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi"), always_inline))

// A step's windows of one source row, 64 bytes each (those outside the row zeros, never read).
template <int Windows>
FASTMIX_RESIZE_VBMI_STEP inline void load_byte_windows(const uint8_t* row, const VectorTaps::Step& step,
                                                       __m512i w[Windows]) {
  for (int j = 0; j < Windows; ++j) w[j] = _mm512_maskz_loadu_epi8(__mmask64(step.in_row[j]), row + step.start[j]);
}

// Each lane's byte at place k of its window (k's int32 lanes, < 64, whose low bytes vpermb reads;
// lanes j * 16 / Windows on: window j), zero-extended to the lane.
template <int Windows>
FASTMIX_RESIZE_VBMI_STEP inline __m512i pick_bytes(const __m512i w[Windows], __m512i k) {
  constexpr int lanes = 16 / Windows;
  constexpr uint64_t low_bytes = 0x1111111111111111ull;  // byte 0 of each int32 lane
  constexpr uint64_t group = lanes == 16 ? ~uint64_t{0} : (uint64_t{1} << (4 * lanes)) - 1u;
  __m512i v = _mm512_maskz_permutexvar_epi8(__mmask64(low_bytes & group), k, w[0]);
  for (int j = 1; j < Windows; ++j)
    v = _mm512_or_si512(v, _mm512_maskz_permutexvar_epi8(__mmask64(low_bytes & (group << (4 * lanes * j))), k, w[j]));
  return v;
}

template <int Windows>
FASTMIX_RESIZE_VBMI_STEP inline __m512 width_step_vbmi(const uint8_t* row, const StepArrays& t, int64_t i) {
  const int64_t q = 16 * i;
  __m512i w[Windows];
  load_byte_windows<Windows>(row, t.steps[i], w);
  const __m512 lo = _mm512_cvtepi32_ps(pick_bytes<Windows>(w, _mm512_loadu_si512(t.lo_at + q)));
  const __m512 hi = _mm512_cvtepi32_ps(pick_bytes<Windows>(w, _mm512_loadu_si512(t.hi_at + q)));
  return _mm512_add_ps(_mm512_mul_ps(lo, _mm512_loadu_ps(t.w_lo + q)), _mm512_mul_ps(hi, _mm512_loadu_ps(t.w_hi + q)));
}

template <typename Sink>
FASTMIX_RESIZE_VBMI inline void width_pass_each_vbmi(const uint8_t* row, const VectorTaps& taps, const Sink& sink) {
  const StepArrays t(taps);
  const int64_t steps = static_cast<int64_t>(taps.steps.size());
  for (int64_t i = 0; i < steps; ++i) {
    switch (t.steps[i].windows) {
      case 1: sink(16 * i, width_step_vbmi<1>(row, t, i)); break;
      case 2: sink(16 * i, width_step_vbmi<2>(row, t, i)); break;
      case 4: sink(16 * i, width_step_vbmi<4>(row, t, i)); break;
      default: sink(16 * i, width_step_scalar(row, taps, i));
    }
  }
}

// A width pass over `row` with the windows its taps were planned for.
template <typename T, typename Sink>
inline void width_pass(const T* row, const VectorTaps& taps, const Sink& sink) {
  if constexpr (std::is_same_v<T, uint8_t>) {
    if (taps.window == 64) return width_pass_each_vbmi(row, taps, sink);
  }
  width_pass_each(row, taps, sink);
}

// The sinks of a width pass (functors: a lambda would not take the functions' target attributes).
// A pass kept for later box rows, 16 values a step (the buffer is padded to whole steps).
struct KeepPass {
  float* kept;
  FASTMIX_RESIZE_AVX512_STEP void operator()(int64_t q, __m512 v) const { _mm512_storeu_ps(kept + q, v); }
};

// The lower source row's pass of a box row, kept, and the box row's values: the upper row's pass
// and this one weighted along H (the scalar loop's order), rounded to D.
template <typename D>
struct KeepPassAndBlendRows {
  float* kept;
  const float* upper;
  __m512 wy_lo, wy_hi;
  D* out;
  int64_t elements;
  FASTMIX_RESIZE_AVX512_STEP void operator()(int64_t q, __m512 lower) const {
    _mm512_storeu_ps(kept + q, lower);
    store_lanes(out + q, _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(upper + q), wy_lo), _mm512_mul_ps(lower, wy_hi)),
                lanes_in_row(q, elements));
  }
};

// The kept pass of `row`, or null.
inline const float* kept_pass(WidthPassCache& cache, const void* row) {
  for (int k = 0; k < 2; ++k)
    if (cache.row[k] == row) return cache.values[cache.last = k].data();
  return nullptr;
}

// Where the pass of `row` is to be kept: the slot not returned last (that of the box row's other
// source row), sized for the taps.
inline float* slot_for_pass(WidthPassCache& cache, const void* row, const VectorTaps& taps) {
  const int k = 1 - cache.last;
  const size_t padded = taps.steps.size() * static_cast<size_t>(taps.lanes);
  if (cache.values[k].size() < padded) cache.values[k].resize(padded);
  cache.row[k] = row, cache.last = k;
  return cache.values[k].data();
}

// A bilinear box row (taps.elements elements) from source rows `top` and `bottom`: their width
// passes, kept ones where the cache has them, weighted along H as the scalar loop weights them.
template <typename T, typename D>
FASTMIX_RESIZE_AVX512 inline void bilinear_row_avx512(const T* top, const T* bottom, const VectorTaps& taps,
                                                      float wy_lo, float wy_hi, D* out, WidthPassCache& cache) {
  const float* upper = kept_pass(cache, top);
  if (upper == nullptr) {
    float* kept = slot_for_pass(cache, top, taps);
    width_pass(top, taps, KeepPass{kept});
    upper = kept;
  }
  const __m512 vy_lo = _mm512_set1_ps(wy_lo), vy_hi = _mm512_set1_ps(wy_hi);
  const int64_t n = taps.elements;
  if (const float* lower = kept_pass(cache, bottom)) {  // (a row with hi == lo, or kept from above)
    for (int64_t q = 0; q < n; q += 16)
      store_lanes(out + q, _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(upper + q), vy_lo),
                                         _mm512_mul_ps(_mm512_loadu_ps(lower + q), vy_hi)),
                  lanes_in_row(q, n));
    return;
  }
  // The usual case: the lower row's pass is new, and the box row is blended as it is computed.
  width_pass(bottom, taps, KeepPassAndBlendRows<D>{slot_for_pass(cache, bottom, taps), upper, vy_lo, vy_hi, out, n});
}

// A nearest box row of uint8 with VBMI: each lane's lo byte, to uint8 as it is or to float32.
template <int Windows, typename D>
FASTMIX_RESIZE_VBMI_STEP inline void nearest_step_vbmi(const uint8_t* row, const StepArrays& t, int64_t i, D* out) {
  const int64_t q = 16 * i;
  __m512i w[Windows];
  load_byte_windows<Windows>(row, t.steps[i], w);
  const __m512i v = pick_bytes<Windows>(w, _mm512_loadu_si512(t.lo_at + q));
  const __mmask16 keep = lanes_in_row(q, t.elements);
  if constexpr (std::is_same_v<D, uint8_t>) _mm512_mask_cvtepi32_storeu_epi8(out + q, keep, v);
  else _mm512_mask_storeu_ps(out + q, keep, _mm512_cvtepi32_ps(v));
}

template <typename D>
FASTMIX_RESIZE_VBMI inline void nearest_row_vbmi(const uint8_t* row, const VectorTaps& taps, D* out) {
  const StepArrays t(taps);
  const int64_t steps = static_cast<int64_t>(taps.steps.size());
  for (int64_t i = 0; i < steps; ++i) {
    switch (t.steps[i].windows) {
      case 1: nearest_step_vbmi<1>(row, t, i, out); break;
      case 2: nearest_step_vbmi<2>(row, t, i, out); break;
      case 4: nearest_step_vbmi<4>(row, t, i, out); break;
      default:
        for (int64_t k = 16 * i; k < std::min(t.elements, 16 * (i + 1)); ++k) out[k] = as_value<D>(row[taps.lo[k]]);
    }
  }
}

// Step i of a nearest box row from source row `row`: each lane's lo tap as it is.
template <int Windows, typename T, typename D>
FASTMIX_RESIZE_AVX512_STEP inline void nearest_step(const T* row, const StepArrays& t, int64_t i, D* out) {
  __m512 w[2 * Windows];
  load_windows<Windows>(row, t.steps[i], w);
  const int64_t q = 16 * i;
  store_lanes(out + q, pick<Windows>(w, _mm512_loadu_si512(t.lo_at + q)), lanes_in_row(q, t.elements));  // exact
}

template <typename T, typename D>
FASTMIX_RESIZE_AVX512 inline void nearest_row_avx512(const T* row, const VectorTaps& taps, D* out) {
  if constexpr (std::is_same_v<T, uint8_t>) {
    if (taps.window == 64) return nearest_row_vbmi(row, taps, out);
  }
  const StepArrays t(taps);
  const int64_t steps = static_cast<int64_t>(taps.steps.size());
  for (int64_t i = 0; i < steps; ++i) {
    switch (t.steps[i].windows) {
      case 1: nearest_step<1>(row, t, i, out); break;
      case 2: nearest_step<2>(row, t, i, out); break;
      case 4: nearest_step<4>(row, t, i, out); break;
      default:
        for (int64_t k = 16 * i; k < std::min(t.elements, 16 * (i + 1)); ++k) out[k] = as_value<D>(row[taps.lo[k]]);
    }
  }
}

// Rows with AVX2, for CPUs without AVX-512: the rows above at half the width, 8 box elements a
// step from windows of 16 source elements (two registers of 8), each lane's taps picked by two
// one-register permutes and a blend on the place's bit 3. The arithmetic is the scalar loop's,
// product for product, so its bits. Chosen at run time (cpu_has_avx2, on CPUs without AVX-512).
#define FASTMIX_RESIZE_AVX2 __attribute__((target("avx2")))
#define FASTMIX_RESIZE_AVX2_STEP __attribute__((target("avx2"), always_inline))

// The 16 source elements from p, those of in_row (the others zeros, never read), as float32 in two
// registers. (AVX2 has no byte-masked loads, and its masked float loads are slow on some CPUs: a
// window that crosses the row's end is copied, which only a row's last steps do.)
FASTMIX_RESIZE_AVX2_STEP inline void source_window_avx2(const float* p, uint64_t in_row, __m256* low, __m256* high) {
  if ((in_row & 0xffffu) == 0xffffu) {
    *low = _mm256_loadu_ps(p), *high = _mm256_loadu_ps(p + 8);
    return;
  }
  alignas(32) float v[16] = {};
  for (int k = 0; k < 16 && ((in_row >> k) & 1u); ++k) v[k] = p[k];
  *low = _mm256_load_ps(v), *high = _mm256_load_ps(v + 8);
}

FASTMIX_RESIZE_AVX2_STEP inline void source_window_avx2(const uint8_t* p, uint64_t in_row, __m256* low, __m256* high) {
  __m128i bytes;
  if ((in_row & 0xffffu) == 0xffffu) {
    bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  } else {
    alignas(16) uint8_t v[16] = {};
    for (int k = 0; k < 16 && ((in_row >> k) & 1u); ++k) v[k] = p[k];
    bytes = _mm_load_si128(reinterpret_cast<const __m128i*>(v));
  }
  *low = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
  *high = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8)));
}

// Each lane's value at place k (< 16) of its window (lanes j * 8 / Windows on: window j).
template <int Windows>
FASTMIX_RESIZE_AVX2_STEP inline __m256 pick_avx2(const __m256 w[2 * Windows], __m256i k) {
  constexpr int lanes = 8 / Windows;
  const __m256 upper = _mm256_castsi256_ps(_mm256_slli_epi32(k, 28));  // sign bit: k >= 8
  __m256 v = _mm256_blendv_ps(_mm256_permutevar8x32_ps(w[0], k), _mm256_permutevar8x32_ps(w[1], k), upper);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int j = 1; j < Windows; ++j) {
    const __m256 from_j = _mm256_castsi256_ps(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32(j * lanes - 1)));
    v = _mm256_blendv_ps(
        v, _mm256_blendv_ps(_mm256_permutevar8x32_ps(w[2 * j], k), _mm256_permutevar8x32_ps(w[2 * j + 1], k), upper),
        from_j);
  }
  return v;
}

// The first `count` (1 to 8) lanes to out, as store_lanes stores them.
template <typename D>
FASTMIX_RESIZE_AVX2_STEP inline void store_lanes_avx2(D* out, __m256 v, int64_t count) {
  if constexpr (std::is_same_v<D, uint8_t>) {
    const __m256i whole = _mm256_cvtps_epi32(v);  // (half to even; 0 to 255 here, so the packs keep them)
    const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(whole), _mm256_extracti128_si256(whole, 1));
    const __m128i bytes = _mm_packus_epi16(words, words);
    if (count == 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out), bytes);
    } else {
      alignas(16) uint8_t b[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(b), bytes);
      std::memcpy(out, b, static_cast<size_t>(count));
    }
  } else {
    if (count == 8) {
      _mm256_storeu_ps(out, v);
    } else {
      alignas(32) float b[8];
      _mm256_store_ps(b, v);
      std::memcpy(out, b, static_cast<size_t>(count) * sizeof(float));
    }
  }
}

template <int Windows, typename T>
FASTMIX_RESIZE_AVX2_STEP inline void load_windows_avx2(const T* row, const VectorTaps::Step& step,
                                                      __m256 w[2 * Windows]) {
  for (int j = 0; j < Windows; ++j) source_window_avx2(row + step.start[j], step.in_row[j], &w[2 * j], &w[2 * j + 1]);
}

// Step i (elements 8 i on) of a width pass over one source row.
template <int Windows, typename T>
FASTMIX_RESIZE_AVX2_STEP inline __m256 width_step_avx2(const T* row, const StepArrays& t, int64_t i) {
  const int64_t q = 8 * i;
  __m256 w[2 * Windows];
  load_windows_avx2<Windows>(row, t.steps[i], w);
  const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.lo_at + q));
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.hi_at + q));
  return _mm256_add_ps(_mm256_mul_ps(pick_avx2<Windows>(w, l), _mm256_loadu_ps(t.w_lo + q)),
                       _mm256_mul_ps(pick_avx2<Windows>(w, h), _mm256_loadu_ps(t.w_hi + q)));
}

template <typename T>
FASTMIX_RESIZE_AVX2_STEP inline __m256 width_step_scalar_avx2(const T* row, const VectorTaps& taps, int64_t i) {
  alignas(32) float v[8];
  for (int k = 0; k < 8; ++k) v[k] = width_tap_sum(row, taps, static_cast<size_t>(8 * i + k));
  return _mm256_load_ps(v);
}

// sink(q, values) for each step of the width pass over `row` (elements q to q + 7).
template <typename T, typename Sink>
FASTMIX_RESIZE_AVX2 inline void width_pass_avx2(const T* row, const VectorTaps& taps, const Sink& sink) {
  const StepArrays t(taps);
  const int64_t steps = static_cast<int64_t>(taps.steps.size());
  for (int64_t i = 0; i < steps; ++i) {
    switch (t.steps[i].windows) {
      case 1: sink(8 * i, width_step_avx2<1>(row, t, i)); break;
      case 2: sink(8 * i, width_step_avx2<2>(row, t, i)); break;
      case 4: sink(8 * i, width_step_avx2<4>(row, t, i)); break;
      default: sink(8 * i, width_step_scalar_avx2(row, taps, i));
    }
  }
}

struct KeepPassAvx2 {
  float* kept;
  FASTMIX_RESIZE_AVX2_STEP void operator()(int64_t q, __m256 v) const { _mm256_storeu_ps(kept + q, v); }
};

template <typename D>
struct KeepPassAndBlendRowsAvx2 {
  float* kept;
  const float* upper;
  __m256 wy_lo, wy_hi;
  D* out;
  int64_t elements;
  FASTMIX_RESIZE_AVX2_STEP void operator()(int64_t q, __m256 lower) const {
    _mm256_storeu_ps(kept + q, lower);
    const __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(upper + q), wy_lo), _mm256_mul_ps(lower, wy_hi));
    store_lanes_avx2(out + q, v, std::min<int64_t>(8, elements - q));
  }
};

// bilinear_row_avx512 with AVX2's rows.
template <typename T, typename D>
FASTMIX_RESIZE_AVX2 inline void bilinear_row_avx2(const T* top, const T* bottom, const VectorTaps& taps, float wy_lo,
                                                  float wy_hi, D* out, WidthPassCache& cache) {
  const float* upper = kept_pass(cache, top);
  if (upper == nullptr) {
    float* kept = slot_for_pass(cache, top, taps);
    width_pass_avx2(top, taps, KeepPassAvx2{kept});
    upper = kept;
  }
  const __m256 vy_lo = _mm256_set1_ps(wy_lo), vy_hi = _mm256_set1_ps(wy_hi);
  const int64_t n = taps.elements;
  if (const float* lower = kept_pass(cache, bottom)) {
    for (int64_t q = 0; q < n; q += 8)
      store_lanes_avx2(out + q, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(upper + q), vy_lo),
                                              _mm256_mul_ps(_mm256_loadu_ps(lower + q), vy_hi)),
                       std::min<int64_t>(8, n - q));
    return;
  }
  width_pass_avx2(bottom, taps,
                  KeepPassAndBlendRowsAvx2<D>{slot_for_pass(cache, bottom, taps), upper, vy_lo, vy_hi, out, n});
}

// nearest_row_avx512 with AVX2's rows.
template <typename T, typename D>
FASTMIX_RESIZE_AVX2 inline void nearest_row_avx2(const T* row, const VectorTaps& taps, D* out) {
  const StepArrays t(taps);
  const int64_t steps = static_cast<int64_t>(taps.steps.size());
  for (int64_t i = 0; i < steps; ++i) {
    const int64_t q = 8 * i;
    const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.lo_at + q));
    __m256 w[8];
    __m256 v;
    switch (t.steps[i].windows) {
      case 1: load_windows_avx2<1>(row, t.steps[i], w), v = pick_avx2<1>(w, l); break;
      case 2: load_windows_avx2<2>(row, t.steps[i], w), v = pick_avx2<2>(w, l); break;
      case 4: load_windows_avx2<4>(row, t.steps[i], w), v = pick_avx2<4>(w, l); break;
      default:
        for (int64_t k = q; k < std::min(t.elements, q + 8); ++k) out[k] = as_value<D>(row[taps.lo[k]]);
        continue;
    }
    store_lanes_avx2(out + q, v, std::min<int64_t>(8, t.elements - q));  // exact
  }
}

// The vector rows for the CPU the taps were planned for (VectorTaps::lanes).
template <typename T, typename D>
inline void bilinear_row_vector(const T* top, const T* bottom, const VectorTaps& taps, float wy_lo, float wy_hi, D* out,
                                WidthPassCache& cache) {
  if (taps.lanes == 16) return bilinear_row_avx512(top, bottom, taps, wy_lo, wy_hi, out, cache);
  bilinear_row_avx2(top, bottom, taps, wy_lo, wy_hi, out, cache);
}

template <typename T, typename D>
inline void nearest_row_vector(const T* row, const VectorTaps& taps, D* out) {
  if (taps.lanes == 16) return nearest_row_avx512(row, taps, out);
  nearest_row_avx2(row, taps, out);
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
// (from_acc), nearest values as they are. `cache`: the thread's, for the vector rows' width passes.
template <typename acc_t, typename T, typename D>
void resize_box_row(const T* channel, const ResizeSource& s, const ResizeTaps<acc_t>& taps, int64_t r, D* out,
                    int64_t out_stride, WidthPassCache& cache) {
  const T* top = channel + taps.row_lo[r] * s.row_stride;
  fetch_ahead(channel, s, taps, r);
  if (taps.nearest) {
#ifdef FASTMIX_VECTOR_RESIZE
    if constexpr (vector_rows<acc_t, T, D>()) {
      if (out_stride == 1 && taps.vector) return nearest_row_vector(top, *taps.vector, out);
    }
#endif
    for (int64_t q = 0; q < taps.cols; ++q) out[q * out_stride] = as_value<D>(top[taps.col_lo[q]]);
    return;
  }
  const T* bottom = channel + taps.row_hi[r] * s.row_stride;
  const acc_t wy_lo = taps.row_w_lo[r], wy_hi = taps.row_w_hi[r];
#ifdef FASTMIX_VECTOR_RESIZE
  if constexpr (vector_rows<acc_t, T, D>()) {
    if (out_stride == 1 && taps.vector)
      return bilinear_row_vector(top, bottom, *taps.vector, wy_lo, wy_hi, out, cache);
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
