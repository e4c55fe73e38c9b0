// CPU implementation of fastmix::mix_targets: (B, C) float32 soft targets of a mixed batch.
//
// With label smoothing eps, a class scores on = 1 - eps + eps/C and every other class off = eps/C
// (timm's convention); dense targets t become t*on + (1-t)*off. Row i is
// lam[i] * smoothed(labels[i]) + (1 - lam[i]) * smoothed(labels[partner[i]]), or just
// smoothed(labels[i]) when sample i was left alone. Rounding follows fastmix/backends/reference.py exactly.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../mix_plan.h"
#include "../checks.h"

namespace fastmix {
namespace cpu {
namespace {

struct SmoothingValues {
  float on, off;
};

SmoothingValues smoothing_values(int64_t num_classes, double smoothing) {
  const double off = smoothing / static_cast<double>(num_classes);
  return {static_cast<float>(1.0 - smoothing + off), static_cast<float>(off)};
}

void targets_from_indices(const int64_t* labels, const int64_t* partner, const float* lam,
                          const uint8_t* kind, int64_t batch, int64_t num_classes, SmoothingValues s,
                          float* out) {
  at::parallel_for(0, batch, 64, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float* row = out + i * num_classes;
      const int64_t mine = labels[i];
      if (!mixed(partner, kind, i)) {
        std::fill(row, row + num_classes, s.off);
        row[mine] = s.on;
        continue;
      }
      const int64_t theirs = labels[partner[i]];
      const float l = lam[i], rest = 1.f - l;
      auto value = [&](float a, float b) { return a * l + b * rest; };
      std::fill(row, row + num_classes, value(s.off, s.off));
      row[mine] = value(s.on, s.off);
      row[theirs] = mine == theirs ? value(s.on, s.on) : value(s.off, s.on);
    }
  });
}

void targets_from_dense(const float* labels, const int64_t* partner, const float* lam,
                        const uint8_t* kind, int64_t batch, int64_t num_classes, SmoothingValues s,
                        float* out) {
  at::parallel_for(0, batch, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float* row = out + i * num_classes;
      const float* mine = labels + i * num_classes;
      if (!mixed(partner, kind, i)) {
        for (int64_t c = 0; c < num_classes; ++c) row[c] = mine[c] * s.on + (1.f - mine[c]) * s.off;
        continue;
      }
      const float* theirs = labels + partner[i] * num_classes;
      const float l = lam[i], rest = 1.f - l;
      for (int64_t c = 0; c < num_classes; ++c) {
        const float a = mine[c] * s.on + (1.f - mine[c]) * s.off;
        const float b = theirs[c] * s.on + (1.f - theirs[c]) * s.off;
        row[c] = a * l + b * rest;
      }
    }
  });
}

at::Tensor mix_targets_cpu(const at::Tensor& labels, const at::Tensor& partner, const at::Tensor& lam,
                           const at::Tensor& kind, int64_t num_classes, double smoothing) {
  check_mix_targets_args(labels, partner, lam, kind, num_classes, smoothing);
  const int64_t batch = labels.size(0);
  const at::Tensor partner_c = partner.contiguous(), lam_c = lam.contiguous(), kind_c = kind.contiguous();
  const int64_t* p = partner_c.data_ptr<int64_t>();
  at::Tensor out = at::empty({batch, num_classes}, labels.options().dtype(at::kFloat));
  if (batch == 0) return out;
  const SmoothingValues s = smoothing_values(num_classes, smoothing);
  if (labels.dim() == 1) {
    const at::Tensor idx = labels.to(at::kLong).contiguous();
    const int64_t* y = idx.data_ptr<int64_t>();
    targets_from_indices(y, p, lam_c.data_ptr<float>(), kind_c.data_ptr<uint8_t>(), batch, num_classes,
                         s, out.data_ptr<float>());
  } else {
    const at::Tensor dense = labels.to(at::kFloat).contiguous();
    targets_from_dense(dense.data_ptr<float>(), p, lam_c.data_ptr<float>(), kind_c.data_ptr<uint8_t>(),
                       batch, num_classes, s, out.data_ptr<float>());
  }
  return out;
}

}  // namespace
}  // namespace cpu
}  // namespace fastmix

TORCH_LIBRARY_IMPL(fastmix, CPU, m) { m.impl("mix_targets", &fastmix::cpu::mix_targets_cpu); }
