// ResizeMix on the CPU: one row of a box at a time from the partner it shrinks (resize_taps.h's
// rule), read from the partner where it lies and written where the caller wants it: in place into
// the sample's box (mix_cpu.cpp), into a box-sized buffer for a swapped pair, or into a staged row
// of mix_into_cpu.cpp. Taps are computed once per sample, so a row is a loop of gathers and the
// rounding of the reference (products and sums apart, no FMA: -ffp-contract=off).
#pragma once

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
  }
};

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
  if (taps.nearest) {
    for (int64_t q = 0; q < taps.cols; ++q) out[q * out_stride] = as_value<D>(top[taps.col_lo[q]]);
    return;
  }
  const T* bottom = channel + taps.row_hi[r] * s.row_stride;
  const acc_t wy_lo = taps.row_w_lo[r], wy_hi = taps.row_w_hi[r];
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
