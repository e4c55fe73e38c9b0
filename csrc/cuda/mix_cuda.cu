// CUDA implementation of fastmix::mix_: applies a MixParams to a batch in place.
//
// Two launches on the current stream, no device -> host sync: a one-block kernel builds the
// in-place plan from the params on the device (inplace_plan_cuda.cuh), then one kernel mixes
// every sample (mix_kernels.cuh: threads own element positions and walk the plan for them).
//
// Parameter *values* are not checked here: reading them would wait for the device. The Python
// layer (fastmix.mix_, fastmix.Mixup) checks them on the CPU before moving them; a raw call
// with a partner outside [0, B) or a kind above 2 trips a device-side assert, and a box outside
// the image is clipped to it.
#include "torch_runner.cuh"  // first: it defines the device assert the kernel headers use

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../checks.h"
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

template <typename T>
bool mix_typed(TorchCudaRunner& runner, const at::Tensor& images, const TensorLayout& layout, const at::Tensor& partner,
               const at::Tensor& lam, const at::Tensor& kind, const at::Tensor& box) {
  return mix_inplace<T>(runner, static_cast<T*>(images.data_ptr()), layout, partner.data_ptr<int64_t>(),
                        lam.data_ptr<float>(), kind.data_ptr<uint8_t>(), box.data_ptr<int64_t>());
}

// Launches the mix of `images` (numel > 0); false when its layout needs the contiguous fallback.
bool mix_launch(const at::Tensor& images, const at::Tensor& partner, const at::Tensor& lam, const at::Tensor& kind,
                const at::Tensor& box) {
  TensorLayout layout;
  if (!layout_of(images, &layout)) return false;
  TorchCudaRunner runner(images);
  switch (images.scalar_type()) {
    case at::kByte:
      return mix_typed<uint8_t>(runner, images, layout, partner, lam, kind, box);
    case at::kHalf:
      return mix_typed<Half16>(runner, images, layout, partner, lam, kind, box);
    case at::kBFloat16:
      return mix_typed<BFloat16Bits>(runner, images, layout, partner, lam, kind, box);
    case at::kFloat:
      return mix_typed<float>(runner, images, layout, partner, lam, kind, box);
    case at::kDouble:
      return mix_typed<double>(runner, images, layout, partner, lam, kind, box);
    default:
      TORCH_CHECK(false, "images: unexpected dtype ", images.scalar_type());
  }
}

void mix_cuda_(const at::Tensor& images, const at::Tensor& partner, const at::Tensor& lam, const at::Tensor& kind,
               const at::Tensor& box) {
  check_mix_args(images, partner, lam, kind, box);
  const int64_t batch = images.size(0);
  TORCH_CHECK_VALUE(batch <= kMaxBatch, "images: expected at most ", kMaxBatch, " samples on CUDA, got ", batch);
  if (images.numel() == 0) return;

  const c10::cuda::CUDAGuard guard(images.device());
  const at::Tensor partner_c = partner.contiguous(), lam_c = lam.contiguous(), kind_c = kind.contiguous(),
                   box_c = box.contiguous();
  if (mix_launch(images, partner_c, lam_c, kind_c, box_c)) return;
  // Layouts with more dims than the kernels describe: mix a contiguous copy, with every dim but
  // the last two (the image rows and columns) folded into one, and copy it back.
  at::Tensor work = images.contiguous();
  const at::Tensor folded =
      images.dim() >= 3 ? work.view({batch, -1, images.size(-2), images.size(-1)}) : work.view({batch, -1});
  TORCH_CHECK(mix_launch(folded, partner_c, lam_c, kind_c, box_c), "fastmix.mix_: unsupported layout");
  if (!work.is_same(images)) images.copy_(work);
}

}  // namespace
}  // namespace cuda
}  // namespace fastmix

TORCH_LIBRARY_IMPL(fastmix, CUDA, m) { m.impl("mix_", &fastmix::cuda::mix_cuda_); }
