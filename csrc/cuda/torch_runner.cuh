// How the torch glue runs the kernels of the *_kernels.cuh headers: on the current CUDA stream of
// the tensors' device, with a launch check after every launch and workspace from torch's caching
// allocator (freed when the runner goes out of scope: later work on the same stream is ordered
// after the kernels that use it, so the caching allocator may reuse it at once).
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/macros/Macros.h>

#include <vector>

// Impossible parameter values (only reachable by calling a raw op with unchecked CUDA params, or
// mix_ with a plan that was not built by fastmix::device_plan) raise a device-side assert, as
// torch's own indexing kernels do. This header must come before
// the kernel headers, which otherwise compile the checks out.
#ifdef FASTMIX_KERNEL_ASSERT_IS_DEFAULT
#error "include torch_runner.cuh before the fastmix kernel headers"
#endif
#ifndef FASTMIX_KERNEL_ASSERT
#define FASTMIX_KERNEL_ASSERT(cond) CUDA_KERNEL_ASSERT(cond)
#endif

#include "launch.cuh"

namespace fastmix {
namespace cuda {

class TorchCudaRunner {
 public:
  // `like`: a tensor on the device to run on (its device must be current: hold a CUDAGuard).
  explicit TorchCudaRunner(const at::Tensor& like)
      : stream_(c10::cuda::getCurrentCUDAStream(like.device().index()).stream()),
        bytes_(like.options().dtype(at::kByte)) {}

  cudaStream_t stream() const { return stream_; }

  // Whether the stream is being captured into a CUDA graph (no sync is allowed then).
  bool capturing() const {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    C10_CUDA_CHECK(cudaStreamIsCapturing(stream_, &status));
    return status != cudaStreamCaptureStatusNone;
  }

  uint8_t* workspace(size_t bytes) {
    workspaces_.push_back(at::empty({static_cast<int64_t>(bytes)}, bytes_));
    return workspaces_.back().data_ptr<uint8_t>();
  }

  template <typename F>
  void for_each_2d(const F& f, int64_t ny, int64_t nx) {
    if (ny <= 0 || nx <= 0) return;
    const LaunchShape s = launch_shape_2d(ny, nx);
    for_each_2d_kernel<<<s.grid, s.block, 0, stream_>>>(f, ny, nx);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

 private:
  cudaStream_t stream_;
  at::TensorOptions bytes_;
  std::vector<at::Tensor> workspaces_;
};

}  // namespace cuda
}  // namespace fastmix
