// The MASK samples' planes cut from one noise image (FMix in elem and pair modes), on the device:
// sample i takes its partner's pixel (y, x) where values[(y + dy) % H][(x + dx) % W] < threshold[i],
// its box being the window (dy, dy + H, dx, dx + W) (fastmix/backends/mask_field.py, the
// definition; csrc/cpu/mask_field_cpu.h on the host). The ops cut the planes into workspace, then
// mask as with a pixel_mask: on a GPU the planes are a small write beside the images.
#pragma once

#include <cstdint>

#include "../mix_plan.h"
#include "cuda_math.cuh"

namespace fastmix {
namespace cuda {

// f(i, e): element e of sample i's plane (B, H * W), 0 for a sample that is not MASK.
struct CutFieldFn {
  const float* values;     // (H, W)
  const float* threshold;  // (B,)
  const uint8_t* kind;     // (B,)
  const int64_t* box;      // (B, 4): the windows
  uint8_t* planes;         // (B, H, W)
  int64_t height, width;
  FASTMIX_HDI void operator()(int64_t i, int64_t e) const {
    uint8_t take = 0;
    if (kind[i] == kMask) {
      const int64_t y = e / width, x = e - y * width, dy = box[4 * i], dx = box[4 * i + 2];
      // the op checks the windows on the CPU only: on a GPU a bad one asserts and reads row 0
      FASTMIX_KERNEL_ASSERT(0 <= dy && dy < height && 0 <= dx && dx < width);
      const bool inside = 0 <= dy && dy < height && 0 <= dx && dx < width;
      const int64_t sy = inside ? (y + dy) % height : y, sx = inside ? (x + dx) % width : x;
      take = values[sy * width + sx] < threshold[i];
    }
    planes[i * height * width + e] = take;
  }
};

// The MASK samples' planes cut into `runner`'s workspace, one launch; they live as long as it.
template <typename Runner>
PixelMask cut_field_planes(Runner& runner, const float* values, const float* threshold, const uint8_t* kind,
                           const int64_t* box, int64_t batch, int64_t height, int64_t width) {
  uint8_t* planes = runner.workspace(static_cast<size_t>(batch * height * width));
  runner.for_each_2d(CutFieldFn{values, threshold, kind, box, planes, height, width}, batch, height * width);
  return PixelMask{planes, height * width, width};
}

}  // namespace cuda
}  // namespace fastmix
