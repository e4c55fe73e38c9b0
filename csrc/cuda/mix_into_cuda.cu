// CUDA implementation of fastmix::mix_into_: writes the mixed, converted and (optionally)
// normalised batch into `out` in one launch (mix_into_kernels.cuh). fastmix::collate_mix_ has no
// CUDA implementation: the collate path runs in DataLoader workers, on the CPU.
//
// The checks are the CPU op's (csrc/cpu/mix_into_cpu.cpp) except the parameter values, which
// would need a device -> host sync: the Python layer checks them on the CPU first; on CUDA a
// partner outside [0, B), a kind above 5 or a MASK sample without pixel_mask trips a device-side
// assert and a box is clipped to the image. `out` must not share memory with `images` (the op
// reads partners' originals).
#include "torch_runner.cuh"  // first: it defines the device assert the kernel headers use

#include <ATen/MemoryOverlap.h>
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <type_traits>
#include <vector>

#include "../checks.h"
#include "mask_field_cuda.cuh"
#include "mix_into_kernels.cuh"

namespace fastmix {
namespace cuda {
namespace {

template <typename In, typename Out>
void launch_typed(TorchCudaRunner& runner, const at::Tensor& src, const at::Tensor& out, const IntoParams& p,
                  const IntoGeometry& g, const Normalize& n) {
  mix_into_launch<In, Out>(runner, static_cast<const In*>(src.data_ptr()), static_cast<Out*>(out.data_ptr()), p, g,
                           n);
}

template <typename In>
void launch_for_out(TorchCudaRunner& runner, const at::Tensor& src, const at::Tensor& out, const IntoParams& p,
                    const IntoGeometry& g, const Normalize& n) {
  switch (out.scalar_type()) {
    case at::kByte:
      if constexpr (std::is_same_v<In, uint8_t>) launch_typed<In, uint8_t>(runner, src, out, p, g, n);
      break;
    case at::kFloat:
      launch_typed<In, float>(runner, src, out, p, g, n);
      break;
    case at::kBFloat16:
      launch_typed<In, BFloat16Bits>(runner, src, out, p, g, n);
      break;
    case at::kHalf:
      launch_typed<In, Half16>(runner, src, out, p, g, n);
      break;
    default:
      TORCH_CHECK(false, "out: unexpected dtype ", out.scalar_type());
  }
}

void mix_into_cuda_(const at::Tensor& out, const at::Tensor& images, const at::Tensor& partner, const at::Tensor& lam,
                   const at::Tensor& kind, const at::Tensor& box, const at::Tensor& scale, const at::Tensor& bias,
                   bool hwc, const std::optional<at::Tensor>& pixel_mask, const std::optional<at::Tensor>& mask_field,
                   const std::optional<at::Tensor>& field_threshold) {
  // The dispatcher picks this kernel when any argument is on CUDA, an empty scale/bias too (whose
  // device the shared checks look at only when normalising), or pixel_mask: the shared checks name
  // that one (as the CPU op would), the line after them the others.
  const auto on_cuda = [](const std::optional<at::Tensor>& t) { return t.has_value() && t->is_cuda(); };
  if (!out.is_cuda() && (on_cuda(pixel_mask) || on_cuda(mask_field) || on_cuda(field_threshold)))
    check_mix_into_args(out, images, partner, lam, kind, box, scale, bias, hwc, pixel_mask, mask_field,
                        field_threshold);
  TORCH_CHECK_VALUE(out.is_cuda(), "out: expected a tensor on the device of images, the params, scale and bias, "
                    "got out on ", out.device(), ", images on ", images.device(), ", scale on ", scale.device(),
                    " and bias on ", bias.device());
  const bool nhwc_out = check_mix_into_args(out, images, partner, lam, kind, box, scale, bias, hwc, pixel_mask,
                                            mask_field, field_threshold);
  const int64_t B = out.size(0), C = out.size(1), H = out.size(2), W = out.size(3);
  const bool normalize = scale.numel() > 0;
  TORCH_CHECK_VALUE(B <= kMaxBatch, "out: expected at most ", kMaxBatch, " samples on CUDA, got ", B);
  if (out.numel() == 0) return;

  const c10::cuda::CUDAGuard guard(out.device());
  // The input as B samples of C*H*W elements in HWC or CHW order: (B, C, H, W) channels_last
  // images are HWC memory already.
  bool hwc_in = hwc;
  at::Tensor src;
  if (hwc || images.is_contiguous()) {
    src = images.contiguous();
  } else if (images.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    src = images;
    hwc_in = true;
  } else {
    src = images.contiguous();
  }
  const at::Tensor partner_c = partner.contiguous(), lam_c = lam.contiguous(), kind_c = kind.contiguous(),
                   box_c = box.contiguous();
  const at::Tensor scale_c = normalize ? scale.contiguous() : scale, bias_c = normalize ? bias.contiguous() : bias;
  // Planes dense (checked): (h, w) at h * W + w of a plane.
  TorchCudaRunner runner(out);
  const PixelMask mask = mask_field.has_value()
                             ? cut_field_planes(runner, *mask_field, *field_threshold, kind_c, box_c)
                             : PixelMask{pixel_mask.has_value() ? pixel_mask->const_data_ptr<uint8_t>() : nullptr,
                                         pixel_mask.has_value() ? pixel_mask->stride(0) : 0, W};
  const IntoParams p{partner_c.data_ptr<int64_t>(), lam_c.data_ptr<float>(), kind_c.data_ptr<uint8_t>(),
                     box_c.data_ptr<int64_t>(), B, mask};
  const IntoGeometry g{C, H, W, hwc_in, nhwc_out};
  const Normalize n{normalize ? scale_c.data_ptr<float>() : nullptr, normalize ? bias_c.data_ptr<float>() : nullptr};
  if (src.scalar_type() == at::kByte) launch_for_out<uint8_t>(runner, src, out, p, g, n);
  else launch_for_out<float>(runner, src, out, p, g, n);
}

}  // namespace
}  // namespace cuda
}  // namespace fastmix

TORCH_LIBRARY_IMPL(fastmix, CUDA, m) { m.impl("mix_into_", &fastmix::cuda::mix_into_cuda_); }
