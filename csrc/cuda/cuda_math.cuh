// Element types, rounding, vector access and the MASK samples' pixel masks, shared by the CUDA
// kernels.
//
// Every value is rounded exactly as fastmix/backends/reference.py rounds it: a blend is
// x * lam + partner * (1 - lam) with each product rounded on its own in float32 (float64 for
// float64 images) and then summed -- the explicit _rn intrinsics keep nvcc from contracting the
// expression into an FMA whatever --fmad says. uint8 results are rounded half to even and
// saturated; float16 / bfloat16 are rounded to nearest even.
//
// This header (like the *_kernels.cuh headers that use it) does not include torch: the same code
// runs on the device and, for tests/test_cuda_compile.py, on the host (tests/cuda/emulate_on_host.cu),
// where the plain C++ operators round the same way (x86-64 SSE, -ffp-contract=off).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#define FASTMIX_HD __host__ __device__
#define FASTMIX_HDI __host__ __device__ __forceinline__

// Kernels cannot raise: impossible parameter values (a partner outside [0, B), a kind above 5, a
// MASK sample without pixel masks) trip a device-side assert where the torch glue defines this (as CUDA_KERNEL_ASSERT), and are
// otherwise treated as "leave this sample alone", so no kernel ever reads out of bounds.
#ifndef FASTMIX_KERNEL_ASSERT
#define FASTMIX_KERNEL_ASSERT(cond) ((void)0)
#define FASTMIX_KERNEL_ASSERT_IS_DEFAULT 1
#endif

namespace fastmix {
namespace cuda {

// Storage types of float16 / bfloat16 elements: the bits of c10::Half / c10::BFloat16.
struct alignas(2) Half16 {
  uint16_t bits;
};
struct alignas(2) BFloat16Bits {
  uint16_t bits;
};

// The accumulation type: float, except double for double.
template <typename T>
struct AccType {
  using type = float;
};
template <>
struct AccType<double> {
  using type = double;
};

FASTMIX_HDI float to_acc(uint8_t v) { return static_cast<float>(v); }
FASTMIX_HDI float to_acc(float v) { return v; }
FASTMIX_HDI double to_acc(double v) { return v; }
FASTMIX_HDI float to_acc(Half16 v) {
  __half_raw raw;
  raw.x = v.bits;
  return __half2float(__half(raw));
}
FASTMIX_HDI float to_acc(BFloat16Bits v) {
  __nv_bfloat16_raw raw;
  raw.x = v.bits;
  return __bfloat162float(__nv_bfloat16(raw));
}

// Products, sums and differences rounded on their own (never fused into an FMA).
FASTMIX_HDI float mul_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
FASTMIX_HDI float add_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
FASTMIX_HDI float sub_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
FASTMIX_HDI double mul_rn(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
FASTMIX_HDI double add_rn(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
FASTMIX_HDI double sub_rn(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}

// Accumulator -> storage type.
template <typename T>
struct FromAcc;

template <>
struct FromAcc<uint8_t> {
  // Round half to even, then saturate (torch: values.round().clamp(0, 255).to(uint8)).
  FASTMIX_HDI static uint8_t apply(float v) {
#ifdef __CUDA_ARCH__
    int i = __float2int_rn(v);  // round to nearest even; saturates at the int range, NaN -> 0
#else
    const float r = std::nearbyint(v);  // the default rounding mode: to nearest even
    int i = !(r >= 0.f) ? 0 : (r >= 255.f ? 255 : static_cast<int>(r));
#endif
    i = i < 0 ? 0 : (i > 255 ? 255 : i);
    return static_cast<uint8_t>(i);
  }
};
template <>
struct FromAcc<float> {
  FASTMIX_HDI static float apply(float v) { return v; }
};
template <>
struct FromAcc<double> {
  FASTMIX_HDI static double apply(double v) { return v; }
};
template <>
struct FromAcc<Half16> {
  FASTMIX_HDI static Half16 apply(float v) {
    const __half_raw raw = __half_raw(__float2half_rn(v));
    return Half16{raw.x};
  }
};
template <>
struct FromAcc<BFloat16Bits> {
  FASTMIX_HDI static BFloat16Bits apply(float v) {
    const __nv_bfloat16_raw raw = __nv_bfloat16_raw(__float2bfloat16_rn(v));
    return BFloat16Bits{raw.x};
  }
};

template <typename T>
FASTMIX_HDI T from_acc(typename AccType<T>::type v) {
  return FromAcc<T>::apply(v);
}

// own * lam + theirs * rest, each product rounded, then the sum, in the accumulation type.
template <typename Acc>
FASTMIX_HDI Acc blend_acc(Acc own, Acc theirs, Acc lam, Acc rest) {
  return add_rn(mul_rn(own, lam), mul_rn(theirs, rest));
}

template <typename T>
FASTMIX_HDI T blend_one(T own, T theirs, typename AccType<T>::type lam, typename AccType<T>::type rest) {
  return from_acc<T>(blend_acc(to_acc(own), to_acc(theirs), lam, rest));
}

// N consecutive elements, aligned to their size (at most 16 bytes on the device paths that
// load them whole; a 32-byte pack is loaded as two 16-byte halves), so that a pack load or store
// is one vector instruction. Callers check the alignment before using N > 1.
template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

template <typename T, int N>
FASTMIX_HDI Pack<T, N> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T, N>*>(p);
}

template <typename T, int N>
FASTMIX_HDI void store_pack(T* p, const Pack<T, N>& v) {
  *reinterpret_cast<Pack<T, N>*>(p) = v;
}

// The pixel masks of MASK samples (the ops' pixel_mask): sample i's (H, W) plane of uint8 at
// data + i * batch_stride, dense (pixel (h, w) at h * width + w); batch_stride may be 0 (one plane
// expanded over the batch). data is nullptr when the op got none.
struct PixelMask {
  const uint8_t* data;
  int64_t batch_stride;
  int64_t width;  // W, the images' last dim
};

// Sample i's plane, or nullptr (and a device-side assert) when there are no masks: a MASK sample
// without them keeps its own values instead of reading a null pointer.
FASTMIX_HDI const uint8_t* mask_plane(const PixelMask& m, int64_t i) {
  FASTMIX_KERNEL_ASSERT(m.data != nullptr);
  return m.data != nullptr ? m.data + i * m.batch_stride : nullptr;
}

// Whether pixel (h, w) of a plane comes from the partner (nonzero); no plane: never.
FASTMIX_HDI bool mask_takes(const uint8_t* plane, int64_t width, int64_t h, int64_t w) {
  return plane != nullptr && plane[h * width + w] != 0;
}

FASTMIX_HDI int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline bool is_aligned(const void* p, int64_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(bytes) == 0;
}

}  // namespace cuda
}  // namespace fastmix
