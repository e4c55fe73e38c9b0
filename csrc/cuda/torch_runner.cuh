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

#include <array>
#include <atomic>
#include <vector>

// Impossible parameter values (only reachable by calling the raw op with unchecked CUDA params)
// raise a device-side assert, as torch's own indexing kernels do. This header must come before
// the kernel headers, which otherwise compile the checks out.
#ifdef FASTMIX_KERNEL_ASSERT_IS_DEFAULT
#error "include torch_runner.cuh before the fastmix kernel headers"
#endif
#ifndef FASTMIX_KERNEL_ASSERT
#define FASTMIX_KERNEL_ASSERT(cond) CUDA_KERNEL_ASSERT(cond)
#endif

#include "inplace_plan_cuda.cuh"
#include "launch.cuh"

namespace fastmix {
namespace cuda {

inline int64_t device_sm_count(c10::DeviceIndex device) {
  static std::array<std::atomic<int>, 256> cache{};
  std::atomic<int>& slot = cache[static_cast<uint8_t>(device)];
  int count = slot.load(std::memory_order_relaxed);
  if (count == 0) {
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
    slot.store(count, std::memory_order_relaxed);
  }
  return count;
}

class TorchCudaRunner {
 public:
  // `like`: a tensor on the device to run on (its device must be current: hold a CUDAGuard).
  explicit TorchCudaRunner(const at::Tensor& like)
      : device_(like.device().index()),
        stream_(c10::cuda::getCurrentCUDAStream(like.device().index()).stream()),
        bytes_(like.options().dtype(at::kByte)) {}

  int64_t sm_count() const { return device_sm_count(device_); }

  uint8_t* workspace(size_t bytes) {
    workspaces_.push_back(at::empty({static_cast<int64_t>(bytes)}, bytes_));
    return workspaces_.back().data_ptr<uint8_t>();
  }

  void build_plan(const PlanInputs& in, const PlanBuffers& buf) {
    build_plan_kernel<kPlanThreads><<<1, kPlanThreads, 0, stream_>>>(in, buf);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  template <typename F>
  void for_each_2d(const F& f, int64_t ny, int64_t nx) {
    if (ny <= 0 || nx <= 0) return;
    const LaunchShape s = launch_shape_2d(ny, nx);
    for_each_2d_kernel<<<s.grid, s.block, 0, stream_>>>(f, ny, nx);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

 private:
  c10::DeviceIndex device_;
  cudaStream_t stream_;
  at::TensorOptions bytes_;
  std::vector<at::Tensor> workspaces_;
};

}  // namespace cuda
}  // namespace fastmix
