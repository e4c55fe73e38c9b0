// Argument checks of fastmix::mix_targets, shared by the CPU and CUDA implementations.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace fastmix {

inline void check_mix_targets_args(const at::Tensor& labels, const at::Tensor& partner,
                                   const at::Tensor& lam, const at::Tensor& kind, int64_t num_classes,
                                   double smoothing) {
  TORCH_CHECK_VALUE(num_classes >= 1, "fastmix.mix_targets: num_classes must be >= 1, got ", num_classes);
  TORCH_CHECK_VALUE(smoothing >= 0.0 && smoothing <= 1.0, "fastmix.mix_targets: smoothing must be in [0, 1], got ",
              smoothing);
  TORCH_CHECK_VALUE(labels.dim() == 1 || labels.dim() == 2,
              "fastmix.mix_targets: labels must be class indices (B,) or dense targets (B, C), got shape ",
              labels.sizes());
  if (labels.dim() == 1) {
    TORCH_CHECK_TYPE(!at::isFloatingType(labels.scalar_type()) && !at::isComplexType(labels.scalar_type()) &&
                    labels.scalar_type() != at::kBool,
                "fastmix.mix_targets: 1-D labels must be integer class indices, got ", labels.scalar_type());
  } else {
    TORCH_CHECK_VALUE(labels.size(1) == num_classes, "fastmix.mix_targets: dense labels must have ", num_classes,
                " columns (num_classes), got shape ", labels.sizes());
    TORCH_CHECK_TYPE(!at::isComplexType(labels.scalar_type()),
                "fastmix.mix_targets: dense labels must be real, got ", labels.scalar_type());
  }
  const int64_t batch = labels.size(0);
  TORCH_CHECK_VALUE(partner.dim() == 1 && partner.size(0) == batch && partner.scalar_type() == at::kLong,
              "fastmix.mix_targets: partner must be int64 of shape (", batch, ",), got ", partner.scalar_type(),
              " of shape ", partner.sizes());
  TORCH_CHECK_VALUE(lam.dim() == 1 && lam.size(0) == batch && lam.scalar_type() == at::kFloat,
              "fastmix.mix_targets: lam must be float32 of shape (", batch, ",), got ", lam.scalar_type(),
              " of shape ", lam.sizes());
  TORCH_CHECK_VALUE(kind.dim() == 1 && kind.size(0) == batch && kind.scalar_type() == at::kByte,
              "fastmix.mix_targets: kind must be uint8 of shape (", batch, ",), got ", kind.scalar_type(),
              " of shape ", kind.sizes());
  for (const at::Tensor* t : {&partner, &lam, &kind})
    TORCH_CHECK_VALUE(t->device() == labels.device(), "fastmix.mix_targets: params must be on the labels' device ",
                labels.device(), ", got ", t->device());
}

}  // namespace fastmix
