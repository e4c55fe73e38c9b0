// The ops' mask_field on CUDA: the MASK samples' planes cut into the runner's workspace
// (mask_field_kernels.cuh's CutFieldFn, one launch), for the kernels that read a pixel_mask.
#pragma once

#include <ATen/core/Tensor.h>

#include "cuda_math.cuh"
#include "mask_field_kernels.cuh"
#include "torch_runner.cuh"

namespace fastmix {
namespace cuda {

// Arguments checked (check_mask_field); kind_c and box_c contiguous, on the device. The planes
// live as long as the runner.
inline PixelMask cut_field_planes(TorchCudaRunner& runner, const at::Tensor& mask_field,
                                  const at::Tensor& field_threshold, const at::Tensor& kind_c,
                                  const at::Tensor& box_c) {
  // (a temporary freed before the launch ends is reused only by later work on this stream)
  const at::Tensor threshold = field_threshold.contiguous();
  return cut_field_planes(runner, mask_field.const_data_ptr<float>(), threshold.const_data_ptr<float>(),
                          kind_c.const_data_ptr<uint8_t>(), box_c.const_data_ptr<int64_t>(), kind_c.size(0),
                          mask_field.size(0), mask_field.size(1));
}

}  // namespace cuda
}  // namespace fastmix
