// Argument checks shared by the CPU and CUDA implementations. Everything is checked before the
// first write, so a bad call leaves the caller's tensors as they were.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "mix_plan.h"

namespace fastmix {

inline bool is_supported_image_dtype(c10::ScalarType t) {
  return t == at::kByte || t == at::kHalf || t == at::kBFloat16 || t == at::kFloat ||
         t == at::kDouble;
}

// Shapes, dtypes and devices of a MixParams against the batch it is applied to.
inline void check_params_layout(const at::Tensor& images, const at::Tensor& partner,
                                const at::Tensor& lam, const at::Tensor& kind,
                                const at::Tensor& box) {
  TORCH_CHECK_VALUE(images.dim() >= 1, "fastmix.mix_: images must have a batch dimension, got a 0-d tensor");
  const int64_t batch = images.size(0);
  TORCH_CHECK_VALUE(partner.dim() == 1 && partner.size(0) == batch && partner.scalar_type() == at::kLong,
              "fastmix.mix_: partner must be int64 of shape (", batch, ",), got ",
              partner.scalar_type(), " of shape ", partner.sizes());
  TORCH_CHECK_VALUE(lam.dim() == 1 && lam.size(0) == batch && lam.scalar_type() == at::kFloat,
              "fastmix.mix_: lam must be float32 of shape (", batch, ",), got ", lam.scalar_type(),
              " of shape ", lam.sizes());
  TORCH_CHECK_VALUE(kind.dim() == 1 && kind.size(0) == batch && kind.scalar_type() == at::kByte,
              "fastmix.mix_: kind must be uint8 of shape (", batch, ",), got ", kind.scalar_type(),
              " of shape ", kind.sizes());
  TORCH_CHECK_VALUE(box.dim() == 2 && box.size(0) == batch && box.size(1) == 4 &&
                  box.scalar_type() == at::kLong,
              "fastmix.mix_: box must be int64 of shape (", batch, ", 4), got ", box.scalar_type(),
              " of shape ", box.sizes());
  for (const at::Tensor* t : {&partner, &lam, &kind, &box})
    TORCH_CHECK_VALUE(t->device() == images.device(), "fastmix.mix_: params must be on the images' device ",
                images.device(), ", got ", t->device());
}

// Values of a MixParams held on the host (contiguous CPU tensors).
inline void check_params_values(const at::Tensor& images, const at::Tensor& partner,
                                const at::Tensor& lam, const at::Tensor& kind,
                                const at::Tensor& box) {
  const int64_t batch = images.size(0);
  const int64_t* p = partner.data_ptr<int64_t>();
  const float* l = lam.data_ptr<float>();
  const uint8_t* k = kind.data_ptr<uint8_t>();
  const int64_t* b = box.data_ptr<int64_t>();
  const int64_t height = images.dim() >= 3 ? images.size(-2) : 0;
  const int64_t width = images.dim() >= 3 ? images.size(-1) : 0;
  for (int64_t i = 0; i < batch; ++i) {
    TORCH_CHECK_VALUE(p[i] >= 0 && p[i] < batch, "fastmix.mix_: partner[", i, "] must be in [0, ", batch,
                "), got ", p[i]);
    TORCH_CHECK_VALUE(k[i] <= kPaste, "fastmix.mix_: kind[", i, "] must be 0 (none), 1 (blend) or 2 (paste), got ",
                static_cast<int>(k[i]));
    TORCH_CHECK_VALUE(std::isfinite(l[i]) && l[i] >= 0.f && l[i] <= 1.f, "fastmix.mix_: lam[", i,
                "] must be in [0, 1], got ", l[i]);
    if (k[i] == kPaste) {
      TORCH_CHECK_VALUE(images.dim() >= 3, "fastmix.mix_: kind[", i,
                  "] is paste, which needs images of shape (B, ..., H, W), got ", images.sizes());
      const int64_t* bi = b + 4 * i;
      TORCH_CHECK_VALUE(0 <= bi[0] && bi[0] <= bi[1] && bi[1] <= height && 0 <= bi[2] && bi[2] <= bi[3] &&
                      bi[3] <= width,
                  "fastmix.mix_: box[", i, "] = (y0, y1, x0, x1) must satisfy 0 <= y0 <= y1 <= ", height,
                  " and 0 <= x0 <= x1 <= ", width, ", got (", bi[0], ", ", bi[1], ", ", bi[2], ", ",
                  bi[3], ")");
    }
  }
}

// Whether two elements of x may lie at one address (an in-place mix of such a tensor races with
// itself). With the dims of size > 1 in order of stride, x's elements are all distinct when each
// stride exceeds the farthest offset the smaller dims reach: exact for every layout that views,
// slices, permutes and transposes make, and true for expand() (a zero stride) and overlapping
// windows (unfold with a step under the window). torch's has_internal_overlap only proves the
// first: it answers "too hard" for every strided view.
inline bool elements_may_share_memory(const at::Tensor& x) {
  if (x.is_non_overlapping_and_dense()) return false;
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size)
  for (int64_t d = 0; d < x.dim(); ++d)
    if (x.size(d) > 1) dims.emplace_back(x.stride(d), x.size(d));
  std::sort(dims.begin(), dims.end());
  int64_t reach = 0;  // the farthest offset the dims so far reach
  for (const auto& [stride, size] : dims) {
    if (stride <= reach) return true;
    reach += stride * (size - 1);
  }
  return false;
}

inline void check_no_shared_memory(const at::Tensor& images) {
  TORCH_CHECK_VALUE(!elements_may_share_memory(images),
                    "fastmix.mix_: images must not have elements that share memory (from expand() or "
                    "overlapping windows such as unfold()), got strides ", images.strides(),
                    " for shape ", images.sizes(), "; call .contiguous() first");
}

inline void check_images(const at::Tensor& images) {
  TORCH_CHECK_TYPE(is_supported_image_dtype(images.scalar_type()),
              "fastmix.mix_: images must be uint8, float16, bfloat16, float32 or float64, got ",
              images.scalar_type());
}

}  // namespace fastmix
