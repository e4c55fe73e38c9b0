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

#include <cstdint>
#include <optional>

#include "../mix_plan.h"
#include "blend_math.h"  // FASTMIX_MULTIVERSION

namespace fastmix {
namespace cpu {

struct MaskField {
  const float* values = nullptr;     // (H, W) float32, contiguous; null: the masks are pixel_mask's planes
  const float* threshold = nullptr;  // (B,)
  int64_t height = 0, width = 0;
};

// `threshold_c`: field_threshold, contiguous (kept alive by the caller).
inline MaskField mask_field_of(const std::optional<at::Tensor>& mask_field, const at::Tensor& threshold_c) {
  if (!mask_field.has_value()) return {};
  return {mask_field->data_ptr<float>(), threshold_c.data_ptr<float>(), mask_field->size(0), mask_field->size(1)};
}

// A compare and a byte per pixel: 16 at a time in cut_field_rows's AVX-512 version.
FASTMIX_ALWAYS_INLINE void cut_run(const float* __restrict__ src, int64_t n, float threshold,
                                   uint8_t* __restrict__ out) {
  for (int64_t x = 0; x < n; ++x) out[x] = src[x] < threshold;
}

// Rows [h0, h1) of sample i's mask, 1 where the partner's pixel is taken, into the same rows of
// `plane` (H, W): each row is two runs of the image's row (y + dy) % H, from dx on and then from 0.
// Multiversioned as a whole: a row's runs are short (W pixels), too short for a call each.
FASTMIX_MULTIVERSION inline void cut_field_rows(const MaskField& f, int64_t i, const int64_t* window, int64_t h0,
                                                int64_t h1, uint8_t* plane) {
  const int64_t height = f.height, width = f.width, dy = window[0], dx = window[2];
  const float threshold = f.threshold[i];
  for (int64_t y = h0; y < h1; ++y) {
    const float* src = f.values + ((y + dy) % height) * width;
    uint8_t* out = plane + y * width;
    cut_run(src + dx, width - dx, threshold, out);
    cut_run(src, dx, threshold, out + width - dx);
  }
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
