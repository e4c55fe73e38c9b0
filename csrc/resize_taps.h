// ResizeMix's resize (kResize, kResizeNearest): where each pixel of a box reads the partner that
// is shrunk into it. F.interpolate's rule with align_corners=False and no antialias, as mmpretrain
// calls it; fastmix/backends/resize_taps.py is the same in torch, name for name.
//   bilinear: src = max(scale * (d + 0.5) - 0.5, 0), scale = n_in / n_out, taps lo = min(floor(src),
//             n_in - 1) and hi = lo + (lo < n_in - 1), weights 1 - f and f, f = clamp(src - lo, 0, 1),
//             in the accumulation type; a value is (p[lo,lo] * wx_lo + p[lo,hi] * wx_hi) * wy_lo +
//             (p[hi,lo] * wx_lo + p[hi,hi] * wx_hi) * wy_hi, each product and sum rounded apart.
//   nearest:  min(floor(d * scale), n_in - 1), scale in float32.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define FASTMIX_TAPS_HD __host__ __device__
#else
#define FASTMIX_TAPS_HD
#endif

namespace fastmix {

template <typename acc_t>
struct LinearTap {
  int64_t lo, hi;
  acc_t w_lo, w_hi;
};

template <typename acc_t>
FASTMIX_TAPS_HD inline LinearTap<acc_t> linear_tap(int64_t dst, int64_t in_size, int64_t out_size) {
  const acc_t scale = static_cast<acc_t>(in_size) / static_cast<acc_t>(out_size);
  acc_t src = scale * (static_cast<acc_t>(dst) + acc_t(0.5)) - acc_t(0.5);
  if (src < acc_t(0)) src = acc_t(0);
  int64_t lo = static_cast<int64_t>(src);  // floor: src >= 0
  if (lo > in_size - 1) lo = in_size - 1;
  acc_t w_hi = src - static_cast<acc_t>(lo);
  w_hi = w_hi < acc_t(0) ? acc_t(0) : (w_hi > acc_t(1) ? acc_t(1) : w_hi);
  return {lo, lo + (lo < in_size - 1 ? 1 : 0), acc_t(1) - w_hi, w_hi};
}

FASTMIX_TAPS_HD inline int64_t nearest_tap(int64_t dst, int64_t in_size, int64_t out_size) {
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  const int64_t src = static_cast<int64_t>(floorf(static_cast<float>(dst) * scale));
  return src < in_size - 1 ? src : in_size - 1;
}

}  // namespace fastmix
