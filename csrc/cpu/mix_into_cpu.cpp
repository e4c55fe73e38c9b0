// CPU implementation of fastmix::mix_into_ and fastmix::collate_mix_: mix a batch out of place,
// into a new (B, C, H, W) tensor, converting layout (HWC -> CHW), dtype and normalisation on the
// way. Each input sample is read once and each output element written once: a swapped pair
// (a <-> b) is one unit of work that writes out[a] and out[b] from the same rows of a and b,
// a row block at a time, so the second read comes from cache.
//
// One output row (all channels of image row h) is made in up to three steps, each a short loop
// over a row that stays in L1:
//   1. assemble: the mixed row in the input's order (CHW planes or HWC pixels): a blend into a
//      staging row, a partial paste as copies into it, a mask (kMask) as a select into it; a kept
//      or wholly taken row is read where
//      it is, with no copy;
//   2. relayout: into the output's order (NCHW planes or NHWC pixels), converted to float32 and
//      normalised (v * scale[c] + bias[c]), or as uint8 for uint8 outputs;
//   3. narrow: float32 -> bfloat16 / float16 (float32 and uint8 outputs are written by step 2).
// The common collate case, blended or masked uint8 HWC pixels of 3 channels into uint8 / float32 /
// bfloat16 planes, does steps 1-3 in one loop (blend_planes_from_pixels, select_planes_from_pixels):
// no staging row at all.
// The element type is a runtime choice between these loops, not a template parameter of the
// whole kernel: against the memory traffic of the batch the extra passes over an L1 row cost
// little, and the build compiles ~30 small loops instead of ~40 copies of the whole kernel
// (csrc/cpu/mix_into_cpu.cpp took 224 s to compile that way, and now about 12 s).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#include "../checks.h"
#include "../mix_plan.h"
#include "blend_math.h"
#include "mask_field_cpu.h"
#include "resize_cpu.h"

namespace fastmix {
namespace cpu {
namespace {

// -- step 1: blend loops (multiversioned; products rounded apart as in the reference) --------------

// dst[k] = a[k] * lam + b[k] * rest, stored as S (uint8: rounded half to even and saturated).
template <typename In, typename S>
FASTMIX_MULTIVERSION __attribute__((noinline)) void blend_row(const In* __restrict__ a, const In* __restrict__ b,
                                                              S* __restrict__ dst, int64_t n, float lam, float rest) {
  for (int64_t k = 0; k < n; ++k) {
    const float own = static_cast<float>(a[k]) * lam;
    const float theirs = static_cast<float>(b[k]) * rest;
    dst[k] = from_acc<S>(own + theirs);
  }
}

// The two rows of a swapped pair that both blend, from one read of a and b.
template <typename In, typename S>
FASTMIX_MULTIVERSION __attribute__((noinline)) void blend_pair_row(const In* __restrict__ a, const In* __restrict__ b,
                                                                   S* __restrict__ da, S* __restrict__ db, int64_t n,
                                                                   float lam_a, float lam_b) {
  const float rest_a = 1.f - lam_a, rest_b = 1.f - lam_b;
  for (int64_t k = 0; k < n; ++k) {
    const float x = static_cast<float>(a[k]), y = static_cast<float>(b[k]);
    const float own_a = x * lam_a, their_a = y * rest_a;
    const float own_b = y * lam_b, their_b = x * rest_b;
    da[k] = from_acc<S>(own_a + their_a);
    db[k] = from_acc<S>(own_b + their_b);
  }
}

// -- step 2: relayout loops (S: uint8 or float32 source; D: uint8 (from uint8) or float32) ---------

// Per-channel normalisation (mix_into_kernels.cuh's Normalize); `on` false leaves values as they
// are (no multiply by 1, add of 0).
struct Normalize {
  bool on;
  const float* scale;      // (C,)
  const float* bias;       // (C,)
  const float* scale_row;  // (W * C,) the same values repeated per pixel, for HWC -> NHWC
  const float* bias_row;
};

// v normalised (when `norm`) and cast to D (mix_into_kernels.cuh's converted).
template <typename S, typename D>
FASTMIX_ALWAYS_INLINE D converted(S v, float s, float t, bool norm) {
  if constexpr (std::is_same_v<D, uint8_t>) {
    return static_cast<D>(v);  // uint8 -> uint8: no normalisation (checked)
  } else {
    float f = static_cast<float>(v);
    if (norm) {
      const float scaled = f * s;
      f = scaled + t;
    }
    return from_acc<D>(f);  // float32 as it is; bfloat16 rounded (the de-interleave below writes it directly)
  }
}

// Steps 1 and 2 in one loop for the decoded-image collate (HWC pixels, 3 channels -> float32 or
// bfloat16 planes): blended, normalised and de-interleaved without a staging row, the same
// arithmetic as blend_row followed by planes_from_pixels. `second` (may be null) receives the
// partner's output of a swapped pair from the same reads (b * lam_b + a * (1 - lam_b)).
template <bool kNorm, typename In, typename D>
FASTMIX_ALWAYS_INLINE void blend_planes_loop(const In* __restrict__ a, const In* __restrict__ b,
                                             D* __restrict__ first, D* __restrict__ second, int64_t plane,
                                             int64_t pixels, float lam_a, float lam_b, const float* scale,
                                             const float* bias) {
  const float rest_a = 1.f - lam_a, rest_b = 1.f - lam_b;
  float s[3], t[3];  // in locals: stores may alias what a pointer reads
  for (int c = 0; c < 3; ++c) {
    s[c] = kNorm ? scale[c] : 1.f;
    t[c] = kNorm ? bias[c] : 0.f;
  }
  auto value = [&](float x, float y, float lam, float rest, int c) {
    const float own = x * lam, theirs = y * rest;
    if constexpr (std::is_same_v<D, uint8_t>) return from_acc<uint8_t>(own + theirs);  // never normalised
    else return converted<float, D>(own + theirs, s[c], t[c], kNorm);
  };
  D* __restrict__ f0 = first;
  D* __restrict__ f1 = first + plane;
  D* __restrict__ f2 = first + 2 * plane;
  if (second == nullptr) {
    for (int64_t w = 0; w < pixels; ++w) {
      f0[w] = value(static_cast<float>(a[3 * w]), static_cast<float>(b[3 * w]), lam_a, rest_a, 0);
      f1[w] = value(static_cast<float>(a[3 * w + 1]), static_cast<float>(b[3 * w + 1]), lam_a, rest_a, 1);
      f2[w] = value(static_cast<float>(a[3 * w + 2]), static_cast<float>(b[3 * w + 2]), lam_a, rest_a, 2);
    }
    return;
  }
  D* __restrict__ g0 = second;
  D* __restrict__ g1 = second + plane;
  D* __restrict__ g2 = second + 2 * plane;
  for (int64_t w = 0; w < pixels; ++w) {
    const float x0 = static_cast<float>(a[3 * w]), x1 = static_cast<float>(a[3 * w + 1]),
                x2 = static_cast<float>(a[3 * w + 2]);
    const float y0 = static_cast<float>(b[3 * w]), y1 = static_cast<float>(b[3 * w + 1]),
                y2 = static_cast<float>(b[3 * w + 2]);
    f0[w] = value(x0, y0, lam_a, rest_a, 0);
    f1[w] = value(x1, y1, lam_a, rest_a, 1);
    f2[w] = value(x2, y2, lam_a, rest_a, 2);
    g0[w] = value(y0, x0, lam_b, rest_b, 0);
    g1[w] = value(y1, x1, lam_b, rest_b, 1);
    g2[w] = value(y2, x2, lam_b, rest_b, 2);
  }
}

// The loop above with the normalisation decided once per call, not per element.
template <typename In, typename D>
FASTMIX_MULTIVERSION __attribute__((noinline)) void blend_planes_from_pixels(
    const In* a, const In* b, D* first, D* second, int64_t plane, int64_t pixels, float lam_a, float lam_b,
    const float* scale, const float* bias, bool norm) {
  if (norm) blend_planes_loop<true>(a, b, first, second, plane, pixels, lam_a, lam_b, scale, bias);
  else blend_planes_loop<false>(a, b, first, second, plane, pixels, lam_a, lam_b, scale, bias);
}

// The decoded-image collate's mask rows (uint8 HWC pixels, 3 channels -> planes) in one loop: per
// pixel the partner's channels where m is set, else its own, normalised and de-interleaved; the
// values of select_from followed by planes_from_pixels, without their spread mask and staged row.
template <bool kNorm, typename D>
FASTMIX_ALWAYS_INLINE void select_planes_loop(const uint8_t* __restrict__ a, const uint8_t* __restrict__ b,
                                              const uint8_t* __restrict__ m, D* __restrict__ dst, int64_t plane,
                                              int64_t pixels, const float* scale, const float* bias) {
  float s[3], t[3];  // in locals: stores may alias what a pointer reads
  for (int c = 0; c < 3; ++c) {
    s[c] = kNorm ? scale[c] : 1.f;
    t[c] = kNorm ? bias[c] : 0.f;
  }
  D* __restrict__ f0 = dst;
  D* __restrict__ f1 = dst + plane;
  D* __restrict__ f2 = dst + 2 * plane;
  for (int64_t w = 0; w < pixels; ++w) {
    const uint8_t take = static_cast<uint8_t>(-(m[w] != 0));  // all ones or zero: a select the loop vectorises
    f0[w] = converted<uint8_t, D>(static_cast<uint8_t>((b[3 * w] & take) | (a[3 * w] & ~take)), s[0], t[0], kNorm);
    f1[w] = converted<uint8_t, D>(static_cast<uint8_t>((b[3 * w + 1] & take) | (a[3 * w + 1] & ~take)), s[1], t[1],
                                  kNorm);
    f2[w] = converted<uint8_t, D>(static_cast<uint8_t>((b[3 * w + 2] & take) | (a[3 * w + 2] & ~take)), s[2], t[2],
                                  kNorm);
  }
}

template <typename D>
FASTMIX_MULTIVERSION __attribute__((noinline)) void select_planes_from_pixels(const uint8_t* a, const uint8_t* b,
                                                                              const uint8_t* m, D* dst, int64_t plane,
                                                                              int64_t pixels, const float* scale,
                                                                              const float* bias, bool norm) {
  if (norm) select_planes_loop<true>(a, b, m, dst, plane, pixels, scale, bias);
  else select_planes_loop<false>(a, b, m, dst, plane, pixels, scale, bias);
}

// Same order, planar: C planes of W (the source's planes `src_plane` apart, the destination's `dst_plane`).
template <typename S, typename D>
FASTMIX_MULTIVERSION __attribute__((noinline)) void copy_planes(const S* __restrict__ src, int64_t src_plane,
                                                                D* __restrict__ dst, int64_t dst_plane, int64_t W,
                                                                int64_t C, Normalize n) {
  for (int64_t c = 0; c < C; ++c) {
    const S* __restrict__ s = src + c * src_plane;
    D* __restrict__ d = dst + c * dst_plane;
    const float sc = n.on ? n.scale[c] : 1.f, bi = n.on ? n.bias[c] : 0.f;
    if (n.on)
      for (int64_t w = 0; w < W; ++w) d[w] = converted<S, D>(s[w], sc, bi, true);
    else
      for (int64_t w = 0; w < W; ++w) d[w] = converted<S, D>(s[w], 1.f, 0.f, false);
  }
}

// Same order, interleaved: `rows` runs of `row` elements, with a (scale, bias) per element of a row.
template <typename S, typename D>
FASTMIX_MULTIVERSION __attribute__((noinline)) void copy_pixels(const S* __restrict__ src, D* __restrict__ dst,
                                                                int64_t row, int64_t rows, Normalize n) {
  if (!n.on) {
    for (int64_t k = 0; k < row * rows; ++k) dst[k] = converted<S, D>(src[k], 1.f, 0.f, false);
    return;
  }
  const float* __restrict__ s = n.scale_row;
  const float* __restrict__ t = n.bias_row;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < row; ++k) dst[r * row + k] = converted<S, D>(src[r * row + k], s[k], t[k], true);
}

// HWC pixels -> C planes. kC > 0 fixes the channel count so that the loop becomes de-interleaving
// shuffles; explicit per-plane pointers and factors in locals (uint8 stores may alias anything,
// so values read through a struct would be reloaded after every store).
template <typename S, typename D, int kC>
FASTMIX_MULTIVERSION __attribute__((noinline)) void planes_from_pixels(const S* __restrict__ src, D* __restrict__ dst,
                                                                       int64_t dst_plane, int64_t W, int64_t C_,
                                                                       Normalize n) {
  constexpr int kMaxC = kC > 0 ? kC : 1;
  if constexpr (kC > 0) {
    D* planes[kMaxC];
    float s[kMaxC], t[kMaxC];
    for (int c = 0; c < kC; ++c) {
      planes[c] = dst + c * dst_plane;
      s[c] = n.on ? n.scale[c] : 1.f;
      t[c] = n.on ? n.bias[c] : 0.f;
    }
    if (n.on) {
      for (int64_t w = 0; w < W; ++w) {
#pragma GCC unroll 4
        for (int c = 0; c < kC; ++c) planes[c][w] = converted<S, D>(src[w * kC + c], s[c], t[c], true);
      }
    } else {
      for (int64_t w = 0; w < W; ++w) {
#pragma GCC unroll 4
        for (int c = 0; c < kC; ++c) planes[c][w] = converted<S, D>(src[w * kC + c], 1.f, 0.f, false);
      }
    }
  } else {
    for (int64_t c = 0; c < C_; ++c) {
      D* __restrict__ d = dst + c * dst_plane;
      const float sc = n.on ? n.scale[c] : 1.f, bi = n.on ? n.bias[c] : 0.f;
      for (int64_t w = 0; w < W; ++w) d[w] = converted<S, D>(src[w * C_ + c], sc, bi, n.on);
    }
  }
}

// C planes -> HWC pixels (the CHW -> NHWC path), kC as above.
template <typename S, typename D, int kC>
FASTMIX_MULTIVERSION __attribute__((noinline)) void pixels_from_planes(const S* __restrict__ src, int64_t src_plane,
                                                                       D* __restrict__ dst, int64_t W, int64_t C_,
                                                                       Normalize n) {
  const int64_t C = kC > 0 ? kC : C_;
  for (int64_t c = 0; c < C; ++c) {
    const S* __restrict__ s = src + c * src_plane;
    const float sc = n.on ? n.scale[c] : 1.f, bi = n.on ? n.bias[c] : 0.f;
    if (n.on)
      for (int64_t w = 0; w < W; ++w) dst[w * C + c] = converted<S, D>(s[w], sc, bi, true);
    else
      for (int64_t w = 0; w < W; ++w) dst[w * C + c] = converted<S, D>(s[w], 1.f, 0.f, false);
  }
}

// -- step 3: narrowing -------------------------------------------------------------------------------

FASTMIX_MULTIVERSION __attribute__((noinline)) void narrow_bf16_row(c10::BFloat16* __restrict__ dst,
                                                                    const float* __restrict__ src, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dst[j] = from_acc<c10::BFloat16>(src[j]);
}

void narrow(void* dst, c10::ScalarType out, const float* src, int64_t n) {
  if (out == at::kBFloat16) narrow_bf16_row(static_cast<c10::BFloat16*>(dst), src, n);
  else narrow_row(static_cast<c10::Half*>(dst), src, n);  // float16: F16C / AVX-512 where the CPU has them
}

// -- a span of output rows ----------------------------------------------------------------------------

// The dims of a mix_into (mix_into_kernels.cuh's IntoGeometry). Input: B samples of C*H*W
// elements, (C, H, W) or (H, W, C) in memory. Output: (B, C, H, W) in NCHW or NHWC memory order.
struct IntoGeometry {
  int64_t channels, height, width;
  bool hwc_in;    // input memory is (H, W, C) per sample, else (C, H, W)
  bool nhwc_out;  // output memory is channels_last, else contiguous NCHW
  c10::ScalarType out_type;
  int64_t out_elem;  // bytes
};

// Rows [h0, h1) of one sample in the input's order: where row h0 starts, the element type, and
// (CHW) how far apart the planes are. Rows of a span are contiguous in every plane, in the input
// as in the output, so a span is one run of (h1 - h0) * W pixels for the loops.
struct Span {
  const void* data;
  bool is_float;
  int64_t plane;
};

// Writes `pixels` pixels from `src` (planes `src_plane` apart) to `dst` as the output wants them.
template <typename S, typename D>
void relayout(const S* src, int64_t src_plane, D* dst, int64_t dst_plane, int64_t pixels, const IntoGeometry& g,
              const Normalize& n) {
  const int64_t C = g.channels;
  if (g.hwc_in && g.nhwc_out) return copy_pixels<S, D>(src, dst, g.width * C, pixels / g.width, n);
  if (!g.hwc_in && !g.nhwc_out) return copy_planes<S, D>(src, src_plane, dst, dst_plane, pixels, C, n);
  if (g.hwc_in) {  // HWC -> NCHW, the decoded-image collate
    if (C == 3) return planes_from_pixels<S, D, 3>(src, dst, dst_plane, pixels, C, n);
    if (C == 1) return planes_from_pixels<S, D, 1>(src, dst, dst_plane, pixels, C, n);
    return planes_from_pixels<S, D, 0>(src, dst, dst_plane, pixels, C, n);
  }
  if (C == 3) return pixels_from_planes<S, D, 3>(src, src_plane, dst, pixels, C, n);
  return pixels_from_planes<S, D, 0>(src, src_plane, dst, pixels, C, n);
}

// Output rows [h0, h1) of one sample from span `r`; `scratch`: floats for `scratch_rows` rows, for
// bfloat16 / float16 outputs (made in float32 that many rows at a time, then narrowed).
void write_span(const Span& r, void* out_sample, int64_t h0, int64_t h1, const IntoGeometry& g, const Normalize& n,
                float* scratch, int64_t scratch_rows) {
  const int64_t HW = g.height * g.width;
  const int64_t out_row = g.nhwc_out ? g.width * g.channels : g.width;  // elements from one output row to the next
  char* out_rows = static_cast<char*>(out_sample) + h0 * out_row * g.out_elem;
  if (g.out_type == at::kByte) {
    relayout(static_cast<const uint8_t*>(r.data), r.plane, reinterpret_cast<uint8_t*>(out_rows), HW,
             (h1 - h0) * g.width, g, n);
    return;
  }
  if (g.out_type == at::kFloat) {
    float* dst = reinterpret_cast<float*>(out_rows);
    if (r.is_float) relayout(static_cast<const float*>(r.data), r.plane, dst, HW, (h1 - h0) * g.width, g, n);
    else relayout(static_cast<const uint8_t*>(r.data), r.plane, dst, HW, (h1 - h0) * g.width, g, n);
    return;
  }
  if (g.out_type == at::kBFloat16 && g.hwc_in && !g.nhwc_out && g.channels == 3) {
    // The decoded-image collate to bfloat16: de-interleaved and rounded in one pass.
    auto* dst = reinterpret_cast<c10::BFloat16*>(out_rows);
    const int64_t pixels = (h1 - h0) * g.width;
    if (r.is_float) planes_from_pixels<float, c10::BFloat16, 3>(static_cast<const float*>(r.data), dst, HW, pixels, 3, n);
    else planes_from_pixels<uint8_t, c10::BFloat16, 3>(static_cast<const uint8_t*>(r.data), dst, HW, pixels, 3, n);
    return;
  }
  const int64_t in_row = g.hwc_in ? g.width * g.channels : g.width;  // elements from one input row to the next
  const int64_t in_elem = r.is_float ? 4 : 1;
  for (int64_t a = h0; a < h1; a += scratch_rows) {
    const int64_t rows = std::min(scratch_rows, h1 - a), pixels = rows * g.width;
    const void* src = static_cast<const char*>(r.data) + (a - h0) * in_row * in_elem;
    if (r.is_float) relayout(static_cast<const float*>(src), r.plane, scratch, pixels, pixels, g, n);
    else relayout(static_cast<const uint8_t*>(src), r.plane, scratch, pixels, pixels, g, n);
    char* out = out_rows + (a - h0) * out_row * g.out_elem;
    if (g.nhwc_out) {
      narrow(out, g.out_type, scratch, pixels * g.channels);
    } else {
      for (int64_t c = 0; c < g.channels; ++c)
        narrow(out + c * HW * g.out_elem, g.out_type, scratch + c * pixels, pixels);
    }
  }
}

// -- one sample, one unit --------------------------------------------------------------------------

// The params' arrays (mix_into_kernels.cuh's IntoParams, less the batch size).
struct IntoParams {
  const int64_t* partner;
  const float* lam;
  const uint8_t* kind;
  const int64_t* box;   // (B, 4): y0, y1, x0, x1
  const uint8_t* mask;  // pixel_mask (B, H, W), planes dense, mask_stride bytes apart; null without one
  int64_t mask_stride;
  MaskField field;      // or the image the MASK samples' masks are cut from (their box: the window)
};

// Rows from h0 of a sample of type In, where they are.
template <typename In>
Span input_span(const In* sample, int64_t h0, const IntoGeometry& g) {
  return {sample + (g.hwc_in ? h0 * g.width * g.channels : h0 * g.width), std::is_same_v<In, float>,
          g.height * g.width};
}

// Calls f(segment_a, segment_b, staged, length) over the contiguous segments of rows [h0, h0 + rows):
// one of rows * W * C (HWC), or C of rows * W (CHW), the staging buffer's planes rows * W apart.
template <typename In, typename S, typename F>
void for_each_segment(const In* a, const In* b, S* staged, int64_t h0, int64_t rows, const IntoGeometry& g, F&& f) {
  if (g.hwc_in) {
    const int64_t offset = h0 * g.width * g.channels;
    f(a + offset, b + offset, staged, rows * g.width * g.channels);
    return;
  }
  const int64_t HW = g.height * g.width;
  for (int64_t c = 0; c < g.channels; ++c)
    f(a + c * HW + h0 * g.width, b + c * HW + h0 * g.width, staged + c * rows * g.width, rows * g.width);
}

// Buffers of one worker: staging rows of each type (two, for pairs) and the float scratch, each
// for `stage_rows` rows: staged values are read back while they are still in L1/L2. And the taps of
// the last box it resized: a batch-mode draw gives every sample the same box, which each of a
// sample's row blocks resizes. (Keyed by the box alone: a worker's Buffers live within one call,
// whose geometry and input type are fixed.)
struct Buffers {
  int64_t stage_rows;
  std::vector<uint8_t> u8_a, u8_b;
  std::vector<float> f32_a, f32_b, scratch;
  std::optional<ResizeTaps<float>> taps;
#ifdef FASTMIX_VECTOR_RESIZE
  std::optional<VectorTaps> interleaved;  // of `taps`, for uint8 HWC rows: a row's channels at once
#endif
  WidthPassCache width_passes;  // of `taps` over the inputs' rows (the callers' samples, never written)
  std::vector<uint8_t> field_plane;  // a MASK sample's rows cut from the mask field, where the plane has them
  Buffers(int64_t rows, int64_t row, int64_t field_pixels)
      : stage_rows(rows), u8_a(rows * row), u8_b(rows * row), f32_a(rows * row), f32_b(rows * row),
        scratch(rows * row), field_plane(field_pixels) {}
};

// f(first, second) with out_a and out_b as the output type's pointers, for the outputs the fused
// loops write (float32, uint8 and bfloat16 planes); false for the others.
template <typename F>
bool with_plane_outputs(at::ScalarType type, void* out_a, void* out_b, F&& f) {
  if (type == at::kFloat) f(static_cast<float*>(out_a), static_cast<float*>(out_b));
  else if (type == at::kByte) f(static_cast<uint8_t*>(out_a), static_cast<uint8_t*>(out_b));
  else if (type == at::kBFloat16) f(static_cast<c10::BFloat16*>(out_a), static_cast<c10::BFloat16*>(out_b));
  else return false;
  return true;
}

// The decoded-image collate (uint8 HWC pixels, 3 channels, to planes): the case of the fused loops.
// uint8 pixels only: float32 HWC input is rare and takes the staged path (each instance is compiled
// for three ISAs, so this halves the loops' share of the build).
template <typename In>
constexpr bool fused_planes_type() {
  return std::is_same_v<In, uint8_t>;
}
inline bool fused_planes_case(const IntoGeometry& g) { return g.hwc_in && !g.nhwc_out && g.channels == 3; }

// Blended output rows [h0, h1) of sample a (and of b, its swapped partner, when out_b is not null)
// by the fused loop, in the decoded-image collate's case.
template <typename In>
bool write_blended_planes(const In* a, const In* b, float lam_a, float lam_b, void* out_a, void* out_b, int64_t h0,
                          int64_t h1, const IntoGeometry& g, const Normalize& n) {
  if constexpr (!fused_planes_type<In>()) {
    return false;
  } else {
    if (!fused_planes_case(g)) return false;
    const int64_t in_offset = h0 * g.width * 3, out_offset = h0 * g.width, plane = g.height * g.width,
                  pixels = (h1 - h0) * g.width;
    return with_plane_outputs(g.out_type, out_a, out_b, [&](auto* first, auto* second) {
      blend_planes_from_pixels(a + in_offset, b + in_offset, first + out_offset, second ? second + out_offset : second,
                               plane, pixels, lam_a, lam_b, n.scale, n.bias, n.on);
    });
  }
}

// Masked output rows [h0, h1) of a sample (`mask` its (H, W) plane) by the fused loop, in the
// decoded-image collate's case.
template <typename In>
bool write_selected_planes(const In* own, const In* theirs, const uint8_t* mask, void* out, int64_t h0, int64_t h1,
                           const IntoGeometry& g, const Normalize& n) {
  if constexpr (!fused_planes_type<In>()) {
    return false;
  } else {
    if (!fused_planes_case(g)) return false;
    const int64_t in_offset = h0 * g.width * 3, out_offset = h0 * g.width, plane = g.height * g.width,
                  pixels = (h1 - h0) * g.width;
    return with_plane_outputs(g.out_type, out, nullptr, [&](auto* first, auto*) {
      select_planes_from_pixels(own + in_offset, theirs + in_offset, mask + h0 * g.width, first + out_offset, plane,
                                pixels, n.scale, n.bias, n.on);
    });
  }
}

// Output rows [h0, h1) of a resizing sample (kResize, kResizeNearest): kept rows where they are,
// the box's rows staged as S (uint8 for uint8 outputs, else float32, as the reference mixes): own
// values, then the partner resized into the box's columns, read from the partner where it lies.
template <typename In, typename S>
void write_resized_rows(const In* own, const In* theirs, bool nearest, const int64_t* box, void* out_sample,
                        int64_t h0, int64_t h1, const IntoGeometry& g, const Normalize& n, Buffers& buf, S* staged) {
  float* scratch = buf.scratch.data();
  const bool any = box[0] < box[1] && box[2] < box[3];
  const int64_t y0 = any ? std::clamp(box[0], h0, h1) : h1, y1 = any ? std::clamp(box[1], h0, h1) : h1;
  if (h0 < y0) write_span(input_span(own, h0, g), out_sample, h0, y0, g, n, scratch, buf.stage_rows);
  if (y1 < h1) write_span(input_span(own, y1, g), out_sample, y1, h1, g, n, scratch, buf.stage_rows);
  if (y0 >= y1) return;
  const int64_t C = g.channels, W = g.width, HW = g.height * g.width;
  const ResizeSource source{g.height, W, g.hwc_in ? W * C : W, g.hwc_in ? C : 1};
  const int64_t box_rows = box[1] - box[0], box_cols = box[3] - box[2];
  if (!buf.taps || buf.taps->rows != box_rows || buf.taps->cols != box_cols || buf.taps->nearest != nearest) {
    buf.taps.emplace(source, box_rows, box_cols, nearest, vector_window<In>());
    buf.width_passes.clear();
#ifdef FASTMIX_VECTOR_RESIZE
    buf.interleaved.reset();
    if (std::is_same_v<In, uint8_t> && g.hwc_in && C > 1 && W * C <= INT32_MAX && vector_window<In>() > 0) {
      const ResizeTaps<float>& t = *buf.taps;
      buf.interleaved.emplace(t.col_lo, t.col_hi, t.col_w_lo, t.col_w_hi, t.cols, C, W * C, vector_window<In>());
    }
#endif
  }
  const ResizeTaps<float>& taps = *buf.taps;
  const int64_t pixel = g.hwc_in ? C : 1;  // elements of a pixel in a row of a segment
  for (int64_t a = y0; a < y1; a += buf.stage_rows) {
    const int64_t rows = std::min(buf.stage_rows, y1 - a);
    // Own values outside the box's columns: the resize writes every one inside.
    const int64_t left = box[2] * pixel, right = box[3] * pixel, row_len = W * pixel;  // (locals: st may alias box)
    for_each_segment(own, own, staged, a, rows, g, [&](const In* x, const In*, S* st, int64_t len) {
      for (int64_t row = 0; row < len; row += row_len) {
        if constexpr (std::is_same_v<S, In>) {  // (memcpy's wide stores: the transform's were 16 bytes)
          std::memcpy(st + row, x + row, static_cast<size_t>(left) * sizeof(S));
          std::memcpy(st + row + right, x + row + right, static_cast<size_t>(row_len - right) * sizeof(S));
        } else {
          std::transform(x + row, x + row + left, st + row, as_value<S, In>);
          std::transform(x + row + right, x + row + row_len, st + row + right, as_value<S, In>);
        }
      }
    });
#ifdef FASTMIX_VECTOR_RESIZE
    if constexpr (std::is_same_v<In, uint8_t>) {
      if (buf.interleaved) {  // the decoded-image collate: a row's channels at once
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t rr = a + r - box[0];
          fetch_ahead(theirs, source, taps, rr);
          const uint8_t* top = theirs + taps.row_lo[rr] * source.row_stride;
          S* row = staged + (r * W + box[2]) * C;
          if (nearest) {
            nearest_row_vector(top, *buf.interleaved, row);
          } else {
            bilinear_row_vector(top, theirs + taps.row_hi[rr] * source.row_stride, *buf.interleaved,
                                taps.row_w_lo[rr], taps.row_w_hi[rr], row, buf.width_passes);
          }
        }
        write_span({staged, std::is_same_v<S, float>, rows * W}, out_sample, a, a + rows, g, n, scratch,
                   buf.stage_rows);
        continue;
      }
    }
#endif
    for (int64_t c = 0; c < C; ++c) {
      const In* channel = theirs + (g.hwc_in ? c : c * HW);
      for (int64_t r = 0; r < rows; ++r) {
        S* row = g.hwc_in ? staged + (r * W + box[2]) * C + c : staged + c * rows * W + r * W + box[2];
        resize_box_row(channel, source, taps, a + r - box[0], row, g.hwc_in ? C : int64_t{1}, buf.width_passes);
      }
    }
    write_span({staged, std::is_same_v<S, float>, rows * W}, out_sample, a, a + rows, g, n, scratch, buf.stage_rows);
  }
}

// Output rows [h0, h1) of sample i, made from `own` and `theirs` (its partner) as kind k says;
// `mask`: its (H, W) plane of pixel_mask (read for kMask only).
template <typename In>
void write_sample_rows(const In* own, const In* theirs, uint8_t k, float lam, const int64_t* box, const uint8_t* mask,
                       void* out_sample, int64_t h0, int64_t h1, const IntoGeometry& g, const Normalize& n,
                       Buffers& buf) {
  float* scratch = buf.scratch.data();
  if (resizes(k)) {
    if (g.out_type == at::kByte) {
      if constexpr (std::is_same_v<In, uint8_t>)
        write_resized_rows(own, theirs, k == kResizeNearest, box, out_sample, h0, h1, g, n, buf, buf.u8_a.data());
      return;
    }
    return write_resized_rows(own, theirs, k == kResizeNearest, box, out_sample, h0, h1, g, n, buf, buf.f32_a.data());
  }
  if (k == kMask) {
    if (write_selected_planes(own, theirs, mask, out_sample, h0, h1, g, n)) return;
    // Own rows with the partner's pixels where the mask is set, staged in the input type: a CHW
    // plane's rows have the plane's mask rows as they are, HWC pixels the bytes spread over C.
    In* staged = reinterpret_cast<In*>(std::is_same_v<In, uint8_t> ? static_cast<void*>(buf.u8_a.data())
                                                                     : static_cast<void*>(buf.f32_a.data()));
    uint8_t* spread = std::is_same_v<In, uint8_t> ? buf.u8_b.data() : buf.u8_a.data();  // (not the staged row)
    for (int64_t a = h0; a < h1; a += buf.stage_rows) {
      const int64_t rows = std::min(buf.stage_rows, h1 - a);
      const uint8_t* m = mask + a * g.width;
      for_each_segment(own, theirs, staged, a, rows, g, [&](const In* x, const In* y, In* s, int64_t len) {
        if (g.hwc_in) spread_mask(m, g.channels, 0, len, spread);
        select_from(x, y, g.hwc_in ? spread : m, s, len);
      });
      write_span({staged, std::is_same_v<In, float>, rows * g.width}, out_sample, a, a + rows, g, n, scratch,
                 buf.stage_rows);
    }
    return;
  }
  if (k == kBlend) {
    if (write_blended_planes(own, theirs, lam, 0.f, out_sample, nullptr, h0, h1, g, n)) return;
    const float rest = 1.f - lam;
    for (int64_t a = h0; a < h1; a += buf.stage_rows) {
      const int64_t rows = std::min(buf.stage_rows, h1 - a);
      if (g.out_type == at::kByte) {
        if constexpr (std::is_same_v<In, uint8_t>) {
          for_each_segment(own, theirs, buf.u8_a.data(), a, rows, g,
                           [&](const In* x, const In* y, uint8_t* s, int64_t len) { blend_row(x, y, s, len, lam, rest); });
          write_span({buf.u8_a.data(), false, rows * g.width}, out_sample, a, a + rows, g, n, scratch,
                     buf.stage_rows);
        }
        continue;
      }
      for_each_segment(own, theirs, buf.f32_a.data(), a, rows, g,
                       [&](const In* x, const In* y, float* s, int64_t len) { blend_row(x, y, s, len, lam, rest); });
      write_span({buf.f32_a.data(), true, rows * g.width}, out_sample, a, a + rows, g, n, scratch, buf.stage_rows);
    }
    return;
  }
  // Kept rows above and below the box, pasted rows inside it.
  const bool paste = k == kPaste && box[2] < box[3];
  const int64_t y0 = paste ? std::clamp(box[0], h0, h1) : h1, y1 = paste ? std::clamp(box[1], h0, h1) : h1;
  if (h0 < y0) write_span(input_span(own, h0, g), out_sample, h0, y0, g, n, scratch, buf.stage_rows);
  if (y1 < h1) write_span(input_span(own, y1, g), out_sample, y1, h1, g, n, scratch, buf.stage_rows);
  if (y0 >= y1) return;
  if (box[2] == 0 && box[3] == g.width)
    return write_span(input_span(theirs, y0, g), out_sample, y0, y1, g, n, scratch, buf.stage_rows);
  // A partial paste: own rows with the box's columns from the partner, staged in the input type.
  In* staged = reinterpret_cast<In*>(std::is_same_v<In, uint8_t> ? static_cast<void*>(buf.u8_a.data())
                                                                   : static_cast<void*>(buf.f32_a.data()));
  const int64_t unit = g.hwc_in ? g.channels : 1;  // elements per pixel within a row of a segment
  const int64_t row_len = g.width * unit, x0 = box[2] * unit, x1 = box[3] * unit;
  for (int64_t a = y0; a < y1; a += buf.stage_rows) {
    const int64_t rows = std::min(buf.stage_rows, y1 - a);
    for_each_segment(own, theirs, staged, a, rows, g, [&](const In* x, const In* y, In* s, int64_t) {
      for (int64_t r = 0; r < rows; ++r, x += row_len, y += row_len, s += row_len) {
        std::memcpy(s, x, x0 * sizeof(In));
        std::memcpy(s + x0, y + x0, (x1 - x0) * sizeof(In));
        std::memcpy(s + x1, x + x1, (row_len - x1) * sizeof(In));
      }
    });
    write_span({staged, std::is_same_v<In, float>, rows * g.width}, out_sample, a, a + rows, g, n, scratch,
               buf.stage_rows);
  }
}

// Output rows [h0, h1) of a swapped pair that both blend: each input row read once for both outputs.
template <typename In>
void write_blended_pair_rows(const In* a, const In* b, float lam_a, float lam_b, void* out_a, void* out_b, int64_t h0,
                             int64_t h1, const IntoGeometry& g, const Normalize& n, Buffers& buf) {
  if (write_blended_planes(a, b, lam_a, lam_b, out_a, out_b, h0, h1, g, n)) return;
  float* scratch = buf.scratch.data();
  for (int64_t h = h0; h < h1; h += buf.stage_rows) {
    const int64_t rows = std::min(buf.stage_rows, h1 - h);
    if (g.out_type == at::kByte) {
      if constexpr (std::is_same_v<In, uint8_t>) {
        uint8_t *sa = buf.u8_a.data(), *sb = buf.u8_b.data();
        for_each_segment(a, b, sa, h, rows, g, [&](const In* x, const In* y, uint8_t* s, int64_t len) {
          blend_pair_row(x, y, s, sb + (s - sa), len, lam_a, lam_b);
        });
        write_span({sa, false, rows * g.width}, out_a, h, h + rows, g, n, scratch, buf.stage_rows);
        write_span({sb, false, rows * g.width}, out_b, h, h + rows, g, n, scratch, buf.stage_rows);
      }
      continue;
    }
    float *sa = buf.f32_a.data(), *sb = buf.f32_b.data();
    for_each_segment(a, b, sa, h, rows, g, [&](const In* x, const In* y, float* s, int64_t len) {
      blend_pair_row(x, y, s, sb + (s - sa), len, lam_a, lam_b);
    });
    write_span({sa, true, rows * g.width}, out_a, h, h + rows, g, n, scratch, buf.stage_rows);
    write_span({sb, true, rows * g.width}, out_b, h, h + rows, g, n, scratch, buf.stage_rows);
  }
}

// One unit of work: output sample `first` (and `second`, its swapped partner, when >= 0).
struct Unit {
  int64_t first, second;
};

std::vector<Unit> make_units(const int64_t* partner, const uint8_t* kind, int64_t batch) {
  std::vector<Unit> units;
  std::vector<char> taken(batch, 0);
  for (int64_t i = 0; i < batch; ++i) {
    if (taken[i]) continue;
    const int64_t j = partner[i];
    if (mixed(partner, kind, i) && mixed(partner, kind, j) && partner[j] == i && !taken[j]) {
      units.push_back({i, j});
      taken[i] = taken[j] = 1;
    } else {
      units.push_back({i, -1});
      taken[i] = 1;
    }
  }
  return units;
}

// A unit's output rows are made in blocks of about this many input bytes, a task each.
constexpr int64_t kRowBlockBytes = 32 * 1024;

template <typename In>
void run(const std::vector<const In*>& inputs, char* out, const IntoGeometry& g, const Normalize& n,
         const IntoParams& p) {
  const int64_t batch = static_cast<int64_t>(inputs.size());
  const std::vector<Unit> units = make_units(p.partner, p.kind, batch);
  const int64_t row_bytes = g.width * g.channels * static_cast<int64_t>(sizeof(In));
  const int64_t rows_per_block = std::max<int64_t>(1, kRowBlockBytes / std::max<int64_t>(row_bytes, 1));
  const int64_t blocks = (g.height + rows_per_block - 1) / rows_per_block;
  const int64_t tasks = static_cast<int64_t>(units.size()) * blocks;
  const int64_t out_sample_bytes = g.channels * g.height * g.width * g.out_elem;
  auto sample_out = [&](int64_t i) { return static_cast<void*>(out + i * out_sample_bytes); };
  // Staged spans of at most 8 KiB of float32 per sample (two for a pair): read back from L1.
  const int64_t stage_rows = std::max<int64_t>(1, std::min(rows_per_block, (8 * 1024) / (4 * g.width * g.channels)));
  at::parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
    Buffers buf(stage_rows, g.width * g.channels, p.field.values != nullptr ? g.height * g.width : 0);
    for (int64_t t = t0; t < t1; ++t) {
      const Unit& u = units[t / blocks];
      const int64_t h0 = (t % blocks) * rows_per_block, h1 = std::min(g.height, h0 + rows_per_block);
      if (u.second >= 0 && p.kind[u.first] == kBlend && p.kind[u.second] == kBlend) {
        write_blended_pair_rows(inputs[u.first], inputs[u.second], p.lam[u.first], p.lam[u.second],
                                sample_out(u.first), sample_out(u.second), h0, h1, g, n, buf);
        continue;
      }
      for (const int64_t i : {u.first, u.second}) {
        if (i < 0) continue;
        const bool mixed = fastmix::mixed(p.partner, p.kind, i);
        const int64_t partner = mixed ? p.partner[i] : i;
        const uint8_t k = mixed ? p.kind[i] : static_cast<uint8_t>(kNone);
        const uint8_t* mask = nullptr;
        if (k == kMask && p.field.values != nullptr) {  // this block's rows, cut where they are read
          cut_field_rows(p.field, i, p.box + 4 * i, h0, h1, buf.field_plane.data());
          mask = buf.field_plane.data();
        } else if (k == kMask) {
          mask = p.mask + i * p.mask_stride;
        }
        write_sample_rows(inputs[i], inputs[partner], k, p.lam[i], p.box + 4 * i, mask, sample_out(i), h0, h1, g, n,
                          buf);
      }
    }
  });
}

// The kernel, on checked arguments. `inputs` point at B samples laid out as `hwc` says, with dims
// (C, H, W); `nhwc_out`: out is channels_last.
template <typename In>
void mix_samples_into(const at::Tensor& out, const std::vector<const In*>& inputs, const at::Tensor& partner,
                      const at::Tensor& lam, const at::Tensor& kind, const at::Tensor& box, const at::Tensor& scale,
                      const at::Tensor& bias, bool hwc, bool nhwc_out, const std::optional<at::Tensor>& pixel_mask,
                      const std::optional<at::Tensor>& mask_field, const std::optional<at::Tensor>& field_threshold) {
  const at::Tensor partner_c = partner.contiguous(), lam_c = lam.contiguous(), kind_c = kind.contiguous(),
                   box_c = box.contiguous();
  if (out.numel() == 0) return;

  const int64_t C = out.size(1), H = out.size(2), W = out.size(3);
  const bool normalize = scale.numel() > 0;
  const IntoGeometry g{C, H, W, hwc, nhwc_out, out.scalar_type(), static_cast<int64_t>(out.element_size())};
  // Per-channel values, and the same repeated per pixel for the contiguous HWC -> NHWC loop.
  std::vector<float> scale_c(C, 1.f), bias_c(C, 0.f);
  if (normalize) {
    const at::Tensor sc = scale.contiguous(), bc = bias.contiguous();
    std::copy_n(sc.data_ptr<float>(), C, scale_c.begin());
    std::copy_n(bc.data_ptr<float>(), C, bias_c.begin());
  }
  std::vector<float> scale_row(hwc && nhwc_out ? W * C : 0), bias_row(scale_row.size());
  for (size_t k = 0; k < scale_row.size(); ++k) {
    scale_row[k] = scale_c[k % C];
    bias_row[k] = bias_c[k % C];
  }
  const Normalize n{normalize, scale_c.data(), bias_c.data(), scale_row.data(), bias_row.data()};
  const at::Tensor threshold_c = field_threshold.has_value() ? field_threshold->contiguous() : at::Tensor();
  at::Tensor field_rows_twice;
  const IntoParams p{partner_c.data_ptr<int64_t>(), lam_c.data_ptr<float>(), kind_c.data_ptr<uint8_t>(),
                     box_c.data_ptr<int64_t>(), pixel_mask.has_value() ? pixel_mask->data_ptr<uint8_t>() : nullptr,
                     pixel_mask.has_value() ? pixel_mask->stride(0) : 0,
                     mask_field_of(mask_field, threshold_c, field_rows_twice)};
  run<In>(inputs, static_cast<char*>(out.data_ptr()), g, n, p);
}

// Calls f(In{}) for the input element type (uint8 or float32, checked by the callers).
template <typename F>
void with_input_type(c10::ScalarType dtype, F&& f) {
  if (dtype == at::kByte) f(uint8_t{});
  else f(float{});
}

void mix_into_cpu_(const at::Tensor& out, const at::Tensor& images, const at::Tensor& partner, const at::Tensor& lam,
                   const at::Tensor& kind, const at::Tensor& box, const at::Tensor& scale, const at::Tensor& bias,
                   bool hwc, const std::optional<at::Tensor>& pixel_mask, const std::optional<at::Tensor>& mask_field,
                   const std::optional<at::Tensor>& field_threshold) {
  const bool nhwc_out = check_mix_into_args(out, images, partner, lam, kind, box, scale, bias, hwc, pixel_mask,
                                            mask_field, field_threshold);
  const int64_t B = out.size(0), C = out.size(1), H = out.size(2), W = out.size(3);
  const at::Tensor src = images.contiguous();
  with_input_type(src.scalar_type(), [&](auto tag) {
    using In = decltype(tag);
    std::vector<const In*> inputs(B);
    for (int64_t i = 0; i < B; ++i) inputs[i] = src.data_ptr<In>() + i * C * H * W;
    mix_samples_into(out, inputs, partner, lam, kind, box, scale, bias, hwc, nhwc_out, pixel_mask, mask_field,
                     field_threshold);
  });
}

void collate_mix_cpu_(const at::Tensor& out, at::TensorList samples, const at::Tensor& partner, const at::Tensor& lam,
                      const at::Tensor& kind, const at::Tensor& box, const at::Tensor& scale, const at::Tensor& bias,
                      bool hwc, const std::optional<at::Tensor>& pixel_mask,
                      const std::optional<at::Tensor>& mask_field, const std::optional<at::Tensor>& field_threshold) {
  const bool nhwc_out = check_collate_mix_args(out, samples, partner, lam, kind, box, scale, bias, hwc, pixel_mask,
                                               mask_field, field_threshold);
  const int64_t B = out.size(0);
  if (B == 0) return;
  const c10::ScalarType dtype = samples[0].scalar_type();
  std::vector<at::Tensor> contiguous(B);
  for (int64_t i = 0; i < B; ++i) contiguous[i] = samples[i].contiguous();
  with_input_type(dtype, [&](auto tag) {
    using In = decltype(tag);
    std::vector<const In*> inputs(B);
    for (int64_t i = 0; i < B; ++i) inputs[i] = contiguous[i].data_ptr<In>();
    mix_samples_into(out, inputs, partner, lam, kind, box, scale, bias, hwc, nhwc_out, pixel_mask, mask_field,
                     field_threshold);
  });
}

}  // namespace
}  // namespace cpu
}  // namespace fastmix

TORCH_LIBRARY_IMPL(fastmix, CPU, m) {
  m.impl("mix_into_", &fastmix::cpu::mix_into_cpu_);
  m.impl("collate_mix_", &fastmix::cpu::collate_mix_cpu_);
}
