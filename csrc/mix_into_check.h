// Argument checks of fastmix::mix_into and fastmix::collate_mix_, shared by the CPU and CUDA
// implementations. Everything is checked before the first write.
#pragma once

#include <ATen/MemoryOverlap.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <vector>

#include "check_params.h"

namespace fastmix {

// out (B, C, H, W) contiguous or channels_last of a supported dtype, the params for it, and
// scale/bias both empty or float32 (C,) on out's device. Returns whether out is channels_last.
inline bool check_out_params_and_affine(const char* op, const at::Tensor& out, const at::Tensor& partner,
                                        const at::Tensor& lam, const at::Tensor& kind, const at::Tensor& box,
                                        const at::Tensor& scale, const at::Tensor& bias, bool uint8_input) {
  TORCH_CHECK_VALUE(out.dim() == 4, "fastmix.", op, ": out must have shape (B, C, H, W), got ", out.sizes());
  check_params_layout(out, partner, lam, kind, box);
  const int64_t channels = out.size(1);
  const bool normalize = scale.numel() > 0;
  TORCH_CHECK_VALUE(scale.numel() == bias.numel() && (!normalize || (scale.dim() == 1 && scale.size(0) == channels)),
                    "fastmix.", op, ": scale and bias must both be empty or float32 of shape (", channels, ",), got ",
                    scale.sizes(), " and ", bias.sizes());
  TORCH_CHECK_TYPE(!normalize || (scale.scalar_type() == at::kFloat && bias.scalar_type() == at::kFloat), "fastmix.",
                   op, ": scale and bias must be float32, got ", scale.scalar_type(), " and ", bias.scalar_type());
  TORCH_CHECK_VALUE(!normalize || (scale.device() == out.device() && bias.device() == out.device()), "fastmix.", op,
                    ": scale and bias must be on out's device ", out.device(), ", got ", scale.device(), " and ",
                    bias.device());
  TORCH_CHECK_TYPE(out.scalar_type() == at::kByte || out.scalar_type() == at::kFloat ||
                       out.scalar_type() == at::kBFloat16 || out.scalar_type() == at::kHalf,
                   "fastmix.", op, ": out must be uint8, float32, bfloat16 or float16, got ", out.scalar_type());
  TORCH_CHECK_VALUE(out.scalar_type() != at::kByte || (uint8_input && !normalize), "fastmix.", op,
                    ": uint8 output needs uint8 input and no normalisation");
  const bool channels_last = !out.is_contiguous() && out.is_contiguous(at::MemoryFormat::ChannelsLast);
  TORCH_CHECK_VALUE(out.is_contiguous() || channels_last, "fastmix.", op,
                    ": out must be contiguous or channels_last, got strides ", out.strides());
  return channels_last;
}

// images: the batch (B, C, H, W), or (B, H, W, C) when hwc, uint8 or float32, on out's device,
// not sharing memory with out.
inline void check_mix_into_images(const at::Tensor& out, const at::Tensor& images, bool hwc) {
  const int64_t B = out.size(0), C = out.size(1), H = out.size(2), W = out.size(3);
  const std::vector<int64_t> expected = hwc ? std::vector<int64_t>{B, H, W, C} : std::vector<int64_t>{B, C, H, W};
  TORCH_CHECK_VALUE(images.sizes() == at::IntArrayRef(expected), "fastmix.mix_into: images must have shape ",
                    at::IntArrayRef(expected), " (", hwc ? "B, H, W, C" : "B, C, H, W", "), got ", images.sizes());
  TORCH_CHECK_TYPE(images.scalar_type() == at::kByte || images.scalar_type() == at::kFloat,
                   "fastmix.mix_into: images must be uint8 or float32, got ", images.scalar_type());
  TORCH_CHECK_VALUE(images.device() == out.device(), "fastmix.mix_into: images must be on out's device ",
                    out.device(), ", got ", images.device());
  if (out.numel() == 0) return;
  const at::MemOverlapStatus overlap = at::get_overlap_status(out, images);
  TORCH_CHECK_VALUE(overlap != at::MemOverlapStatus::Full && overlap != at::MemOverlapStatus::Partial,
                    "fastmix.mix_into: out must not share memory with images");
}

}  // namespace fastmix
