// CUDA implementation of fastmix::mix_: applies a MixParams to a batch in place.
//
// The in-place plan is built on the host (csrc/mix_plan.h's make_device_plan, the op
// fastmix::device_plan): fastmix.Mixup and fastmix.mix_ build it beside the params they sample,
// copy both to the GPU in one non-blocking copy and pass it as `plan`, with `plan_shape` (its
// header's fields, read on the host). The op is then one or two launches on the current stream
// (mix_kernels.cuh) and no sync. Only the plan's layout is checked here: its content would need a
// sync, so the kernel asserts its header and bounds. A plan must be the one built for the params.
//
// Without a plan -- a raw call with params already on the GPU -- the op copies the params to the
// host (one device -> host sync), checks their values as the CPU op does, builds the plan there and
// copies it back. Inside CUDA graph capture, where no sync is allowed, it builds on the device the
// one plan that needs no order (mix_kernels.cuh's CopyPlanFn: every sample copied to scratch, then
// mixed from there: a batch of scratch memory and one pass more); a partner outside [0, B) or a
// kind above 3 then trips a device-side assert, and a box outside the image is clipped to it.
//
// pixel_mask (MASK samples: FMix, ClassMix) goes to the kernels as a pointer, its batch stride and
// W; kind is never read on the host for it, so a MASK sample without one trips a device-side
// assert (and keeps its values) instead of a null read.
#include "torch_runner.cuh"  // first: it defines the device assert the kernel headers use

#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <optional>

#include "../checks.h"
#include "mask_field_cuda.cuh"
#include "mix_kernels.cuh"

namespace fastmix {
namespace cuda {
namespace {

bool layout_of(const at::Tensor& x, TensorLayout* out) {
  if (x.dim() > kMaxLayoutDims) return false;
  out->ndim = static_cast<int>(x.dim());
  for (int64_t d = 0; d < x.dim(); ++d) {
    out->sizes[d] = x.size(d);
    out->strides[d] = x.stride(d);
  }
  return true;
}

// Launches the mix of `images` (numel > 0); false when its layout needs the contiguous fallback.
bool mix_launch(TorchCudaRunner& runner, const at::Tensor& images, const PlanView& plan, const PixelMask& mask) {
  TensorLayout layout;
  if (!layout_of(images, &layout)) return false;
  void* data = images.data_ptr();
  switch (images.scalar_type()) {
    case at::kByte:
      return mix_inplace<uint8_t>(runner, static_cast<uint8_t*>(data), layout, plan, mask);
    case at::kHalf:
      return mix_inplace<Half16>(runner, static_cast<Half16*>(data), layout, plan, mask);
    case at::kBFloat16:
      return mix_inplace<BFloat16Bits>(runner, static_cast<BFloat16Bits*>(data), layout, plan, mask);
    case at::kFloat:
      return mix_inplace<float>(runner, static_cast<float*>(data), layout, plan, mask);
    case at::kDouble:
      return mix_inplace<double>(runner, static_cast<double*>(data), layout, plan, mask);
    default:
      TORCH_CHECK(false, "images: unexpected dtype ", images.scalar_type());
  }
}

// A host copy of a param in pinned memory, filled without waiting (the caller syncs once).
at::Tensor pinned_copy(const at::Tensor& t) {
  at::Tensor host = at::empty(t.sizes(), t.options().device(at::kCPU).pinned_memory(true));
  host.copy_(t, /*non_blocking=*/true);
  return host;
}

// The plan of params on the GPU, built on the host: the params' one trip there (a sync), the
// CPU op fastmix::device_plan (csrc/cpu/mix_cpu.cpp: make_device_plan, compiled once, there), and
// the plan's trip back (non-blocking, from pinned memory that torch keeps until the copy is done).
at::Tensor plan_through_host(TorchCudaRunner& runner, const at::Tensor& images, const at::Tensor& partner,
                             const at::Tensor& lam, const at::Tensor& kind, const at::Tensor& box,
                             DevicePlanShape* shape) {
  const at::Tensor p = pinned_copy(partner), l = pinned_copy(lam), k = pinned_copy(kind), b = pinned_copy(box);
  c10::cuda::stream_synchronize(runner.stream());  // (what torch.cuda.set_sync_debug_mode reports)
  check_params_values(images, p, l, k, b);
  static const auto device_plan =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("fastmix::device_plan", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
  const at::Tensor host = device_plan.call(p, l, k, b).pin_memory();
  *shape = plan_shape_of(host.const_data_ptr<uint8_t>());
  return host.to(images.device(), /*non_blocking=*/true);
}

void mix_cuda_(const at::Tensor& images, const at::Tensor& partner, const at::Tensor& lam, const at::Tensor& kind,
               const at::Tensor& box, const std::optional<at::Tensor>& plan, at::IntArrayRef plan_shape,
               const std::optional<at::Tensor>& pixel_mask, const std::optional<at::Tensor>& mask_field,
               const std::optional<at::Tensor>& field_threshold) {
  check_mix_args(images, partner, lam, kind, box, plan, plan_shape, pixel_mask, mask_field, field_threshold);
  const int64_t batch = images.size(0);
  TORCH_CHECK_VALUE(batch <= kMaxBatch, "images: expected at most ", kMaxBatch, " samples on CUDA, got ",
                    batch);
  if (images.numel() == 0) return;

  const c10::cuda::CUDAGuard guard(images.device());
  TorchCudaRunner runner(images);
  const at::Tensor partner_c = partner.contiguous(), lam_c = lam.contiguous(), kind_c = kind.contiguous(),
                   box_c = box.contiguous();
  at::Tensor bytes;  // the plan on the device, 64-byte aligned
  DevicePlanShape shape{};
  PlanView view;
  if (plan.has_value()) {
    shape = {plan_shape[0], plan_shape[1], plan_shape[2], plan_shape[3], plan_shape[4], plan_shape[5]};
    bytes = plan->contiguous();
    if (!is_aligned(bytes.data_ptr(), 64)) bytes = bytes.clone();  // a fresh block is aligned
    view = plan_view(bytes.const_data_ptr<uint8_t>(), shape);
  } else if (runner.capturing()) {
    shape = copy_plan_shape(batch);
    uint8_t* built = runner.workspace(static_cast<size_t>(plan_bytes(shape)));
    runner.for_each_2d(CopyPlanFn{partner_c.data_ptr<int64_t>(), lam_c.data_ptr<float>(), kind_c.data_ptr<uint8_t>(),
                                  box_c.data_ptr<int64_t>(), built, shape},
                       1, batch);
    view = plan_view(built, shape);
  } else {
    bytes = plan_through_host(runner, images, partner_c, lam_c, kind_c, box_c, &shape);
    view = plan_view(bytes.const_data_ptr<uint8_t>(), shape);
  }

  // Planes dense (checked): (h, w) at h * W + w of a plane; W is images.size(-1), folded or not.
  PixelMask mask{nullptr, 0, images.dim() >= 3 ? images.size(-1) : 0};
  if (pixel_mask.has_value()) {
    mask.data = pixel_mask->const_data_ptr<uint8_t>();
    mask.batch_stride = pixel_mask->stride(0);
  } else if (mask_field.has_value()) {
    mask = cut_field_planes(runner, *mask_field, *field_threshold, kind_c, box_c);
  }

  if (mix_launch(runner, images, view, mask)) return;
  // Layouts with more dims than the kernels describe: mix a contiguous copy, with every dim but
  // the last two (the image rows and columns) folded into one, and copy it back.
  at::Tensor work = images.contiguous();
  const at::Tensor folded =
      images.dim() >= 3 ? work.view({batch, -1, images.size(-2), images.size(-1)}) : work.view({batch, -1});
  TORCH_CHECK(mix_launch(runner, folded, view, mask), "fastmix.mix_: unsupported layout");
  if (!work.is_same(images)) images.copy_(work);
}

}  // namespace
}  // namespace cuda
}  // namespace fastmix

TORCH_LIBRARY_IMPL(fastmix, CUDA, m) { m.impl("mix_", &fastmix::cuda::mix_cuda_); }
