// The one launch shape the CUDA kernels use: a functor called for every (y, x) of a 2-D range,
// y along the grid's y dimension (samples, or groups of plan steps), x along its x dimension
// (element positions), with grid-stride loops on both so that any range fits the grid limits.
// Torch-free: the host emulation (tests/cuda/emulate_on_host.cu) calls the same functors in plain loops.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda_math.cuh"

namespace fastmix {
namespace cuda {

constexpr int kThreadsPerBlock = 256;
constexpr int64_t kMaxBlocksX = int64_t(1) << 24;
constexpr int64_t kMaxBlocksY = 65535;

template <typename F>
__global__ void __launch_bounds__(kThreadsPerBlock) for_each_2d_kernel(F f, int64_t ny, int64_t nx) {
  for (int64_t y = blockIdx.y; y < ny; y += gridDim.y)
    for (int64_t x = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; x < nx;
         x += static_cast<int64_t>(gridDim.x) * blockDim.x)
      f(y, x);
}

struct LaunchShape {
  dim3 grid;
  dim3 block;
};

// Callers skip empty ranges: a grid must not have a zero dimension.
inline LaunchShape launch_shape_2d(int64_t ny, int64_t nx) {
  const int64_t bx = ceil_div(nx, kThreadsPerBlock);
  LaunchShape s;
  s.grid = dim3(static_cast<unsigned>(bx < kMaxBlocksX ? bx : kMaxBlocksX),
                static_cast<unsigned>(ny < kMaxBlocksY ? ny : kMaxBlocksY), 1);
  s.block = dim3(kThreadsPerBlock, 1, 1);
  return s;
}

}  // namespace cuda
}  // namespace fastmix
