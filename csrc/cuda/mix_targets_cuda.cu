// CUDA implementation of fastmix::mix_targets: (B, C) float32 soft targets of a mixed batch.
//
// One launch, one thread per (sample, class); see mix_targets_kernels.cuh for the arithmetic.
// Unlike the CPU op, the values of partner and labels are not range-checked here (that would
// need a device -> host sync every batch): a class index outside [0, num_classes) or a partner
// outside [0, B) trips a device-side assert (and nothing is read out of bounds).
#include "torch_runner.cuh"  // first: it defines the device assert the kernel headers use

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../checks.h"
#include "mix_targets_kernels.cuh"

namespace fastmix {
namespace cuda {
namespace {

at::Tensor mix_targets_cuda(const at::Tensor& labels, const at::Tensor& partner, const at::Tensor& lam,
                            const at::Tensor& kind, int64_t num_classes, double smoothing) {
  check_mix_targets_args(labels, partner, lam, kind, num_classes, smoothing);
  const int64_t batch = labels.size(0);
  const c10::cuda::CUDAGuard guard(labels.device());
  at::Tensor out = at::empty({batch, num_classes}, labels.options().dtype(at::kFloat));
  if (batch == 0) return out;
  const at::Tensor partner_c = partner.contiguous(), lam_c = lam.contiguous(), kind_c = kind.contiguous();
  const TargetParams p{partner_c.data_ptr<int64_t>(),
                       lam_c.data_ptr<float>(),
                       kind_c.data_ptr<uint8_t>(),
                       batch,
                       num_classes,
                       smoothing_values(num_classes, smoothing),
                       out.data_ptr<float>()};
  TorchCudaRunner runner(out);
  if (labels.dim() == 1) {
    const at::Tensor indices = labels.to(at::kLong).contiguous();
    targets_from_indices(runner, p, indices.data_ptr<int64_t>());
  } else {
    const at::Tensor dense = labels.to(at::kFloat).contiguous();
    targets_from_dense(runner, p, dense.data_ptr<float>());
  }
  return out;
}

}  // namespace
}  // namespace cuda
}  // namespace fastmix

TORCH_LIBRARY_IMPL(fastmix, CUDA, m) { m.impl("mix_targets", &fastmix::cuda::mix_targets_cuda); }
