// Does compute-sanitizer work on this machine's GPU? benchmarks/gpu_check.sh runs this under
// memcheck before it runs fastmix's tests there, so that a sanitizer that does not support the
// card (or the runtime the machine runs in) is reported as such, not as a fastmix failure:
//
//     nvcc -arch=sm_90 -o probe benchmarks/sanitizer_probe.cu
//     compute-sanitizer --tool memcheck --error-exitcode 9 ./probe clean   # expect exit 0, 0 errors
//     compute-sanitizer --tool memcheck --error-exitcode 9 ./probe oob     # expect exit 9: a planted
//                                                                          # write one past the end
//
// Without the sanitizer the planted write lands in the allocation's unused rest and is harmless.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>

__global__ void write_index(int* out, int count) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) out[i] = i;
}

static int check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    std::fprintf(stderr, "probe: %s: %s\n", what, cudaGetErrorString(status));
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  const bool oob = argc > 1 && std::strcmp(argv[1], "oob") == 0;
  const int n = 256;
  int* device = nullptr;
  if (check(cudaMalloc(&device, n * sizeof(int)), "cudaMalloc")) return 1;
  write_index<<<2, 256>>>(device, oob ? n + 1 : n);  // oob: element n is one past the allocation
  if (check(cudaGetLastError(), "launch") || check(cudaDeviceSynchronize(), "kernel")) return 1;
  int host[n];
  if (check(cudaMemcpy(host, device, sizeof(host), cudaMemcpyDeviceToHost), "copy back")) return 1;
  for (int i = 0; i < n; ++i) {
    if (host[i] != i) {
      std::fprintf(stderr, "probe: element %d is %d\n", i, host[i]);
      return 1;
    }
  }
  cudaFree(device);
  std::printf("probe %s: ran\n", oob ? "oob" : "clean");
  return 0;
}
