// ResizeMix on the GPU: the value of one pixel of a resize's box, read from the partner that is
// shrunk into it (csrc/resize_taps.h's rule; csrc/cpu/resize_cpu.h's resize_box_row, a pixel at a
// time: a thread owns positions, so its taps are computed where they are used, a few operations
// against four loads). Products and sums are rounded apart (the _rn helpers), as the reference.
#pragma once

#include <cstdint>

#include "../resize_taps.h"
#include "cuda_math.cuh"

namespace fastmix {
namespace cuda {

// Where a resize reads one channel of its source: pixel (row, col) at row * row_step + col *
// col_step from the channel's (0, 0) pixel.
struct ResizeGrid {
  int64_t height, width, row_step, col_step;
};

// Pixel (r, q) of a box of rows x cols filled with the whole source: load(offset) is the source's
// element at that offset from the channel's (0, 0) pixel, in the accumulation type (to_acc). A
// nearest value is the element itself (exact through Acc), a bilinear one its four taps blended.
template <typename Acc, typename Load>
FASTMIX_HDI Acc resized_acc(const Load& load, const ResizeGrid& g, int64_t rows, int64_t cols, int64_t r, int64_t q,
                            bool nearest) {
  if (nearest) return load(nearest_tap(r, g.height, rows) * g.row_step + nearest_tap(q, g.width, cols) * g.col_step);
  const LinearTap<Acc> y = linear_tap<Acc>(r, g.height, rows), x = linear_tap<Acc>(q, g.width, cols);
  const int64_t top = y.lo * g.row_step, bottom = y.hi * g.row_step;
  const int64_t left = x.lo * g.col_step, right = x.hi * g.col_step;
  const Acc upper = add_rn(mul_rn(load(top + left), x.w_lo), mul_rn(load(top + right), x.w_hi));
  const Acc lower = add_rn(mul_rn(load(bottom + left), x.w_lo), mul_rn(load(bottom + right), x.w_hi));
  return add_rn(mul_rn(upper, y.w_lo), mul_rn(lower, y.w_hi));
}

}  // namespace cuda
}  // namespace fastmix
