// The test program of the CUDA host emulation, not part of the extension: it runs the code of the
// kernel headers (csrc/cuda/*_kernels.cuh) on the CPU, so that tests/test_cuda_compile.py can check
// it bit for bit against fastmix/backends/reference.py on machines without a GPU. nvcc compiles it
// as CUDA with -I csrc, so the kernel headers are the very code the extension builds, and the
// in-place plan comes from csrc/mix_plan.h's make_device_plan, the host builder the CUDA op takes
// its plan from; only the launches differ: "threads" run one after another (in reverse order, so a
// hidden dependence on launch order would show), launches one after another, and the _rn
// intrinsics are the plain C++ operators (built with -ffp-contract=off). Workspace (the plan's head
// slots) starts poisoned, and a failed device-side assert aborts the program. What it cannot
// show: races between real threads, device-only rounding intrinsics, alignment faults, launch
// configurations. It lives under tests/ so that setup.py's glob of csrc/cuda/*.cu never builds it.
//
//   emulate_on_host IN OUT
//
// IN is a sequence of cases, each a list of little-endian int64 fields and raw arrays (see
// read_* below and tests/test_cuda_compile.py); OUT gets each case's result bytes in turn.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

// Before the kernel headers: the device-side asserts of the kernels, checked here.
#define FASTMIX_KERNEL_ASSERT(cond) fastmix_emulated_assert((cond), #cond, __FILE__, __LINE__)
__host__ __device__ inline void fastmix_emulated_assert(bool ok, const char* what, const char* file, int line) {
#ifndef __CUDA_ARCH__
  if (!ok) {
    fprintf(stderr, "emulate_on_host: device-side assert failed: %s (%s:%d)\n", what, file, line);
    std::abort();
  }
#endif
}

#include "cuda/mask_field_kernels.cuh"
#include "cuda/mix_into_kernels.cuh"
#include "cuda/mix_kernels.cuh"
#include "cuda/mix_targets_kernels.cuh"

namespace fastmix {
namespace cuda {
namespace emulation {

class HostRunner {
 public:
  uint8_t* workspace(size_t bytes) {
    // Poisoned, as fresh device memory may be: a head slot read before it is saved shows.
    workspaces_.emplace_back(bytes + 64, 0xA5);
    uint8_t* p = workspaces_.back().data();
    return p + (64 - reinterpret_cast<uintptr_t>(p) % 64) % 64;
  }

  template <typename F>
  void for_each_2d(const F& f, int64_t ny, int64_t nx) {
    if (ny <= 0 || nx <= 0) return;
    ++launches;
    for (int64_t y = ny - 1; y >= 0; --y)
      for (int64_t x = nx - 1; x >= 0; --x) f(y, x);
  }

  int64_t launches = 0;

 private:
  std::vector<std::vector<uint8_t>> workspaces_;
};

class Reader {
 public:
  explicit Reader(std::vector<uint8_t> data) : data_(std::move(data)) {}
  bool done() const { return pos_ >= data_.size(); }
  int64_t i64() {
    int64_t v;
    bytes(&v, sizeof v);
    return v;
  }
  double f64() {
    double v;
    bytes(&v, sizeof v);
    return v;
  }
  template <typename T>
  std::vector<T> array(int64_t n) {
    std::vector<T> v(static_cast<size_t>(n));
    bytes(v.data(), static_cast<size_t>(n) * sizeof(T));
    return v;
  }
  void bytes(void* dst, size_t n) {
    if (pos_ + n > data_.size()) throw std::runtime_error("truncated input");
    if (n) std::memcpy(dst, data_.data() + pos_, n);
    pos_ += n;
  }

 private:
  std::vector<uint8_t> data_;
  size_t pos_ = 0;
};

// A buffer whose data pointer is 64-byte aligned plus `offset` bytes.
struct Storage {
  std::vector<uint8_t> raw;
  uint8_t* data;
  Storage(size_t bytes, int64_t offset) : raw(bytes + 128) {
    uint8_t* p = raw.data();
    data = p + (64 - reinterpret_cast<uintptr_t>(p) % 64) % 64 + offset;
  }
};

struct Params {
  std::vector<int64_t> partner;
  std::vector<float> lam;
  std::vector<uint8_t> kind;
  std::vector<int64_t> box;
};

Params read_params(Reader& r, int64_t batch) {
  Params p;
  p.partner = r.array<int64_t>(batch);
  p.lam = r.array<float>(batch);
  p.kind = r.array<uint8_t>(batch);
  p.box = r.array<int64_t>(4 * batch);
  return p;
}

// The ops' pixel_mask: a flag, then (when set) its storage elements, storage offset and batch stride
// (elements; 0: one plane expanded over the batch) and the storage's bytes. Absent: a null mask, so
// a MASK sample trips the kernels' assert.
struct HostMask {
  std::unique_ptr<Storage> storage;
  PixelMask mask{nullptr, 0, 0};
};

HostMask read_mask(Reader& r, int64_t width) {
  HostMask m;
  m.mask.width = width;
  if (r.i64() == 0) return m;
  const int64_t elems = r.i64(), offset = r.i64(), batch_stride = r.i64();
  m.storage = std::make_unique<Storage>(static_cast<size_t>(elems), 0);
  r.bytes(m.storage->data, static_cast<size_t>(elems));
  m.mask.data = m.storage->data + offset;
  m.mask.batch_stride = batch_stride;
  return m;
}

size_t elem_size(int64_t code) {
  static const size_t sizes[] = {1, 2, 2, 4, 8};  // uint8, float16, bfloat16, float32, float64
  if (code < 0 || code > 4) throw std::runtime_error("bad dtype code");
  return sizes[code];
}

// The plan bytes of make_device_plan (segment 0: kSegmentSteps), in a 64-byte aligned buffer.
struct HostPlan {
  Storage bytes;
  DevicePlanShape shape;
  HostPlan(const Params& p, int64_t batch, int64_t segment)
      : HostPlan(make_device_plan(p.partner.data(), p.lam.data(), p.kind.data(), p.box.data(), batch,
                                  segment > 0 ? segment : kSegmentSteps)) {}
  explicit HostPlan(const DevicePlan& plan) : bytes(static_cast<size_t>(plan.bytes()), 0), shape(plan.shape) {
    plan.write(bytes.data);
  }
};

template <typename T>
bool mix_typed(HostRunner& runner, uint8_t* data, const TensorLayout& layout, const PlanView& plan,
               const PixelMask& mask) {
  return mix_inplace<T>(runner, reinterpret_cast<T*>(data), layout, plan, mask);
}

// mix_: dtype, ndim, sizes, strides, storage elements, storage offset (elements), misalignment of
// the storage (bytes), plan (0: make_device_plan's, as the CUDA op gets it; 1: CopyPlanFn's, the
// one a raw call builds on the device inside graph capture), segment (make_device_plan's; 0: its
// default), params, storage, pixel mask (read_mask; its width is the last dim, as the CUDA op
// passes it) -> the launches (int64), then the storage after the mix.
void run_mix(Reader& r, FILE* out) {
  const int64_t dtype = r.i64(), ndim = r.i64();
  TensorLayout layout;
  layout.ndim = static_cast<int>(ndim);
  for (int64_t d = 0; d < ndim; ++d) layout.sizes[d] = r.i64();
  for (int64_t d = 0; d < ndim; ++d) layout.strides[d] = r.i64();
  const int64_t storage_elems = r.i64(), storage_offset = r.i64(), misalign = r.i64();
  const int64_t plan_source = r.i64(), segment = r.i64();
  const int64_t batch = layout.sizes[0];
  const Params p = read_params(r, batch);
  const size_t bytes = static_cast<size_t>(storage_elems) * elem_size(dtype);
  Storage s(bytes, misalign);
  r.bytes(s.data, bytes);
  const HostMask mask = read_mask(r, ndim >= 3 ? layout.sizes[ndim - 1] : 0);
  uint8_t* data = s.data + storage_offset * static_cast<int64_t>(elem_size(dtype));
  int64_t numel = 1;
  for (int64_t d = 0; d < ndim; ++d) numel *= layout.sizes[d];
  HostRunner runner;
  if (numel > 0) {
    PlanView plan;
    std::unique_ptr<HostPlan> host;
    if (plan_source == 0) {
      host = std::make_unique<HostPlan>(p, batch, segment);
      plan = plan_view(host->bytes.data, host->shape);
    } else {
      const DevicePlanShape shape = copy_plan_shape(batch);
      uint8_t* built = runner.workspace(static_cast<size_t>(plan_bytes(shape)));
      runner.for_each_2d(CopyPlanFn{p.partner.data(), p.lam.data(), p.kind.data(), p.box.data(), built, shape}, 1,
                         batch);
      plan = plan_view(built, shape);
    }
    bool ok = false;
    switch (dtype) {
      case 0:
        ok = mix_typed<uint8_t>(runner, data, layout, plan, mask.mask);
        break;
      case 1:
        ok = mix_typed<Half16>(runner, data, layout, plan, mask.mask);
        break;
      case 2:
        ok = mix_typed<BFloat16Bits>(runner, data, layout, plan, mask.mask);
        break;
      case 3:
        ok = mix_typed<float>(runner, data, layout, plan, mask.mask);
        break;
      default:
        ok = mix_typed<double>(runner, data, layout, plan, mask.mask);
    }
    if (!ok) throw std::runtime_error("layout not taken by the kernels");
  }
  fwrite(&runner.launches, sizeof runner.launches, 1, out);
  fwrite(s.data, 1, bytes, out);
}

// plan: batch, segment (0: the default), params -> the bytes of make_device_plan, after their count.
void run_plan(Reader& r, FILE* out) {
  const int64_t batch = r.i64(), segment = r.i64();
  const Params p = read_params(r, batch);
  const HostPlan plan(p, batch, segment);
  const int64_t n = plan_bytes(plan.shape);
  fwrite(&n, sizeof n, 1, out);
  fwrite(plan.bytes.data, 1, static_cast<size_t>(n), out);
}

template <typename In, typename Out>
void run_into_typed(const In* in, Out* out, const IntoParams& p, const IntoGeometry& g, const Normalize& n) {
  HostRunner runner;
  mix_into_launch<In, Out>(runner, in, out, p, g, n);
}

// mix_into: in dtype (0 uint8, 3 float32), out dtype (0, 2, 1, 3), B, C, H, W, hwc_in, nhwc_out,
// normalize, in offset, out offset (bytes), params, scale[C], bias[C], input, pixel mask (read_mask)
// -> output bytes.
void run_into(Reader& r, FILE* out) {
  const int64_t in_dtype = r.i64(), out_dtype = r.i64();
  const int64_t B = r.i64(), C = r.i64(), H = r.i64(), W = r.i64();
  const bool hwc_in = r.i64() != 0, nhwc_out = r.i64() != 0, normalize = r.i64() != 0;
  const int64_t in_offset = r.i64(), out_offset = r.i64();
  const Params params = read_params(r, B);
  const std::vector<float> scale = r.array<float>(C), bias = r.array<float>(C);
  const size_t numel = static_cast<size_t>(B * C * H * W);
  Storage src(numel * elem_size(in_dtype), in_offset);
  r.bytes(src.data, numel * elem_size(in_dtype));
  const HostMask mask = read_mask(r, W);
  Storage dst(numel * elem_size(out_dtype), out_offset);
  std::memset(dst.data, 0xEE, numel * elem_size(out_dtype));  // poison
  const IntoParams p{params.partner.data(), params.lam.data(), params.kind.data(), params.box.data(), B, mask.mask};
  const IntoGeometry g{C, H, W, hwc_in, nhwc_out};
  const Normalize n{normalize ? scale.data() : nullptr, normalize ? bias.data() : nullptr};
  auto with_out = [&](auto in_ptr) {
    using In = std::remove_const_t<std::remove_pointer_t<decltype(in_ptr)>>;
    switch (out_dtype) {
      case 0:
        if constexpr (std::is_same_v<In, uint8_t>) run_into_typed<In, uint8_t>(in_ptr, dst.data, p, g, n);
        else throw std::runtime_error("uint8 out needs uint8 in");
        break;
      case 1:
        run_into_typed<In, Half16>(in_ptr, reinterpret_cast<Half16*>(dst.data), p, g, n);
        break;
      case 2:
        run_into_typed<In, BFloat16Bits>(in_ptr, reinterpret_cast<BFloat16Bits*>(dst.data), p, g, n);
        break;
      default:
        run_into_typed<In, float>(in_ptr, reinterpret_cast<float*>(dst.data), p, g, n);
    }
  };
  if (in_dtype == 0) with_out(static_cast<const uint8_t*>(src.data));
  else with_out(reinterpret_cast<const float*>(src.data));
  fwrite(dst.data, 1, numel * elem_size(out_dtype), out);
}

// mix_targets: dense (0: int64 indices (B,), 1: float32 (B, C)), B, C, smoothing (float64),
// params, labels -> float32 (B, C).
void run_targets(Reader& r, FILE* out) {
  const bool dense = r.i64() != 0;
  const int64_t B = r.i64(), C = r.i64();
  const double smoothing = r.f64();
  const Params params = read_params(r, B);
  std::vector<float> result(static_cast<size_t>(B * C), -12345.f);
  TargetParams p{params.partner.data(), params.lam.data(), params.kind.data(), B, C,
                 smoothing_values(C, smoothing), result.data()};
  HostRunner runner;
  if (dense) {
    const std::vector<float> labels = r.array<float>(B * C);
    targets_from_dense(runner, p, labels.data());
  } else {
    const std::vector<int64_t> labels = r.array<int64_t>(B);
    targets_from_indices(runner, p, labels.data());
  }
  fwrite(result.data(), sizeof(float), result.size(), out);
}

// The MASK samples' planes cut from a mask field (the ops' mask_field): B, H, W, params, the
// field (H * W float32), the thresholds (B float32) -> the planes (B * H * W uint8).
void run_cut_field(Reader& r, FILE* out) {
  const int64_t B = r.i64(), H = r.i64(), W = r.i64();
  const Params params = read_params(r, B);
  const std::vector<float> field = r.array<float>(H * W), threshold = r.array<float>(B);
  HostRunner runner;
  const PixelMask planes = cut_field_planes(runner, field.data(), threshold.data(), params.kind.data(),
                                            params.box.data(), B, H, W);
  fwrite(planes.data, 1, static_cast<size_t>(B * H * W), out);
}

}  // namespace emulation
}  // namespace cuda
}  // namespace fastmix

int main(int argc, char** argv) {
  using namespace fastmix::cuda::emulation;
  if (argc != 3) {
    fprintf(stderr, "usage: %s IN OUT\n", argv[0]);
    return 2;
  }
  FILE* f = fopen(argv[1], "rb");
  if (!f) return 2;
  std::vector<uint8_t> data;
  uint8_t chunk[1 << 16];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) data.insert(data.end(), chunk, chunk + n);
  fclose(f);
  FILE* out = fopen(argv[2], "wb");
  if (!out) return 2;
  try {
    Reader r(std::move(data));
    while (!r.done()) {
      const int64_t op = r.i64();
      if (op == 0) run_mix(r, out);
      else if (op == 1) run_into(r, out);
      else if (op == 2) run_targets(r, out);
      else if (op == 3) run_plan(r, out);
      else if (op == 4) run_cut_field(r, out);
      else throw std::runtime_error("bad op " + std::to_string(op));
    }
  } catch (const std::exception& e) {
    fprintf(stderr, "emulate_on_host: %s\n", e.what());
    fclose(out);
    return 1;
  }
  fclose(out);
  return 0;
}
