// The CUDA soft-target kernels (fastmix::mix_targets): one thread per (sample, class).
//
// Same arithmetic as csrc/cpu/mix_targets_cpu.cpp and fastmix/backends/reference.py: on = 1 - eps + eps/C
// and off = eps/C computed in double and rounded to float; dense labels t (float32) smoothed as
// t * on + (1 - t) * off; a mixed sample's row is a * lam + b * (1 - lam), every product and sum rounded
// in float32; a row left alone is the smoothed own label.
//
// A kernel cannot raise: a class index outside [0, num_classes) trips a device assert (the
// host-side check would need a device -> host sync every batch) and matches no class, so its row
// gets `off` everywhere. A partner outside [0, B) trips a device assert and the row is treated as
// left alone; nothing is ever read out of bounds.
#pragma once

#include <cstdint>

#include "../mix_plan.h"
#include "cuda_math.cuh"
#include "launch.cuh"

namespace fastmix {
namespace cuda {

struct SmoothingValues {
  float on, off;
};

inline SmoothingValues smoothing_values(int64_t num_classes, double smoothing) {
  const double off = smoothing / static_cast<double>(num_classes);
  return {static_cast<float>(1.0 - smoothing + off), static_cast<float>(off)};
}

struct TargetParams {
  const int64_t* partner;
  const float* lam;
  const uint8_t* kind;
  int64_t batch;
  int64_t num_classes;
  SmoothingValues s;
  float* out;  // (batch, num_classes), contiguous
};

// The partner whose label row i is mixed with, or -1 when row i is left alone.
FASTMIX_HDI int64_t target_partner(const TargetParams& p, int64_t i) {
  const int64_t q = p.partner[i];
  const bool valid = q >= 0 && q < p.batch;
  FASTMIX_KERNEL_ASSERT(valid);
  return valid && p.kind[i] != kNone && q != i ? q : -1;
}

// labels: (B,) int64 class indices.
struct TargetsFromIndicesFn {
  TargetParams p;
  const int64_t* labels;

  FASTMIX_HD void operator()(int64_t i, int64_t c) const {
    FASTMIX_KERNEL_ASSERT(c != 0 || (labels[i] >= 0 && labels[i] < p.num_classes));  // once per row
    const int64_t q = target_partner(p, i);
    const float own = c == labels[i] ? p.s.on : p.s.off;
    float v = own;
    if (q >= 0) {
      const float theirs = c == labels[q] ? p.s.on : p.s.off;
      const float l = p.lam[i];
      v = blend_acc(own, theirs, l, sub_rn(1.f, l));
    }
    p.out[i * p.num_classes + c] = v;
  }
};

// labels: (B, num_classes) float32, contiguous.
struct TargetsFromDenseFn {
  TargetParams p;
  const float* labels;

  FASTMIX_HDI float smoothed(float t) const { return add_rn(mul_rn(t, p.s.on), mul_rn(sub_rn(1.f, t), p.s.off)); }

  FASTMIX_HD void operator()(int64_t i, int64_t c) const {
    const int64_t q = target_partner(p, i);
    const float own = smoothed(labels[i * p.num_classes + c]);
    float v = own;
    if (q >= 0) {
      const float theirs = smoothed(labels[q * p.num_classes + c]);
      const float l = p.lam[i];
      v = blend_acc(own, theirs, l, sub_rn(1.f, l));
    }
    p.out[i * p.num_classes + c] = v;
  }
};

template <typename Runner>
void targets_from_indices(Runner& runner, const TargetParams& p, const int64_t* labels) {
  runner.for_each_2d(TargetsFromIndicesFn{p, labels}, p.batch, p.num_classes);
}

template <typename Runner>
void targets_from_dense(Runner& runner, const TargetParams& p, const float* labels) {
  runner.for_each_2d(TargetsFromDenseFn{p, labels}, p.batch, p.num_classes);
}

}  // namespace cuda
}  // namespace fastmix
