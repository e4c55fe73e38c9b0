// CPU implementation of fastmix::mix_into_ and fastmix::collate_mix_: mix a batch out of place,
// into a new (B, C, H, W) tensor, converting layout (HWC -> CHW), dtype and normalisation on the
// way. Each input sample is read once and each output element written once: a swapped pair
// (a <-> b) is one unit of work that writes out[a] and out[b] from the same rows of a and b,
// a row block at a time, so the second read comes from cache.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <c10/util/irange.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../checks.h"
#include "../mix_plan.h"
#include "blend_math.h"

namespace fastmix {
namespace cpu {
namespace {

enum class Op { kKeep, kTake, kBlend };  // what an output element is made of: own, partner's, both

// Input: B samples of C*H*W elements, (C, H, W) or (H, W, C) in memory.
// Output: (B, C, H, W) in NCHW or NHWC memory order.
struct Geometry {
  int64_t channels, height, width;
  bool hwc_in, nhwc_out;
  int64_t out_batch_stride;
};

// always_inline, like every per-element step here: the float16 rounding (half_convert.h) is large
// enough that GCC otherwise calls it per element instead of vectorising the loops that use it.
template <typename Out, bool kNorm>
FASTMIX_ALWAYS_INLINE Out convert(float v, float scale, float bias) {
  if constexpr (kNorm) {
    const float scaled = v * scale;
    v = scaled + bias;
  }
  return from_acc<Out>(v);
}

template <Op kOp, typename In>
FASTMIX_ALWAYS_INLINE float mixed(In a, In b, float lam, float rest) {
  if constexpr (kOp == Op::kKeep) return static_cast<float>(a);
  else if constexpr (kOp == Op::kTake) return static_cast<float>(b);
  else {
    const float own = static_cast<float>(a) * lam;
    const float theirs = static_cast<float>(b) * rest;
    return own + theirs;
  }
}

struct Norm {
  const float* scale;      // (C,)
  const float* bias;       // (C,)
  const float* scale_hwc;  // (W*C,) the same values repeated per pixel, for the HWC -> NHWC path
  const float* bias_hwc;
};

// Visits pixels [w0, w1) of row h in the order that suits the two layouts, calling
// f(in_index, out_index, scale_ptr, bias_ptr) per element (indices within a sample; the pointers
// address that element's normalisation). kC > 0 fixes the channel count at compile time so the
// de-interleaving HWC -> NCHW loop vectorises.
template <int kC, typename F>
__attribute__((always_inline)) inline void for_each_element(const Geometry& g, const Norm& n, int64_t h, int64_t w0,
                                                            int64_t w1, F&& f) {
  const int64_t C = kC > 0 ? kC : g.channels, H = g.height, W = g.width, HW = H * W;
  const Norm local = n;  // not read through a reference: uint8 stores in f may alias it
  if (g.hwc_in && g.nhwc_out) {  // one contiguous run of pixels x channels
    const int64_t base = h * W * C;
    for (int64_t k = w0 * C; k < w1 * C; ++k) f(base + k, base + k, local.scale_hwc + k, local.bias_hwc + k);
  } else if (!g.hwc_in && !g.nhwc_out) {  // one contiguous run per channel
    for (int64_t c = 0; c < C; ++c) {
      const int64_t base = c * HW + h * W;
      for (int64_t w = w0; w < w1; ++w) f(base + w, base + w, local.scale + c, local.bias + c);
    }
  } else if (g.hwc_in) {  // HWC -> NCHW: all channels of a pixel per iteration (a grouped access)
    const int64_t in_base = h * W * C, out_base = h * W;
    for (int64_t w = w0; w < w1; ++w) {
#pragma GCC unroll 4
      for (int64_t c = 0; c < C; ++c) f(in_base + w * C + c, c * HW + out_base + w, local.scale + c, local.bias + c);
    }
  } else {  // CHW -> NHWC
    for (int64_t c = 0; c < C; ++c)
      for (int64_t w = w0; w < w1; ++w) f(c * HW + h * W + w, (h * W + w) * C + c, local.scale + c, local.bias + c);
  }
}

// float16 outputs where input and output share their layout (CHW -> NCHW, HWC -> NHWC): there,
// pixels [w0, w1) of row h are contiguous runs with the same element indices in input and output.
// Each run is computed in blocks of float32 values, f(i, scale, bias) giving the kOut values of
// element i, and each block is rounded into outs[0..kOut) by narrow_row, which has F16C /
// AVX-512 versions: cheaper than rounding on the bits per element (see deinterleave_row).
template <int kOut, bool kPerElementNorm, typename F>
FASTMIX_ALWAYS_INLINE void staged_run(c10::Half* const* outs, int64_t first, int64_t count, const float* scale,
                                      const float* bias, F&& f) {
  constexpr int64_t kBlock = 256;
  float staged[kOut][kBlock];
  for (int64_t k0 = 0; k0 < count; k0 += kBlock) {
    const int64_t m = std::min(kBlock, count - k0);
    for (int64_t k = 0; k < m; ++k) {
      const int64_t e = kPerElementNorm ? k0 + k : 0;
      const std::array<float, kOut> v = f(first + k0 + k, scale[e], bias[e]);
      for (int o = 0; o < kOut; ++o) staged[o][k] = v[o];
    }
    for (int o = 0; o < kOut; ++o) narrow_row(outs[o] + first + k0, staged[o], m);
  }
}

template <int kC, int kOut, typename F>
FASTMIX_ALWAYS_INLINE void for_each_staged_run(const Geometry& g, const Norm& n, int64_t h, int64_t w0, int64_t w1,
                                               c10::Half* const* outs, F&& f) {
  const int64_t C = kC > 0 ? kC : g.channels, W = g.width, HW = g.height * W;
  if (g.hwc_in) {  // HWC -> NHWC: one run of pixels x channels, normalised per element
    const int64_t first = h * W * C + w0 * C;
    staged_run<kOut, true>(outs, first, (w1 - w0) * C, n.scale_hwc + w0 * C, n.bias_hwc + w0 * C, f);
  } else {  // CHW -> NCHW: one run per channel
    for (int64_t c = 0; c < C; ++c) staged_run<kOut, false>(outs, c * HW + h * W + w0, w1 - w0, n.scale + c, n.bias + c, f);
  }
}

// Row h of an HWC sample (its W * kC elements at `row`) into the kC planes of an NCHW output,
// converted and normalised: explicit per-plane pointers and a compile-time channel count are the
// form the vectoriser turns into de-interleaving shuffles.
template <typename In, typename Out, bool kNorm, int kC>
__attribute__((always_inline)) inline void deinterleave_row(const In* __restrict__ row, Out* out, const Geometry& g,
                                                            const Norm& n, int64_t h) {
  // Loop bounds and factors in locals: uint8 stores may alias anything, so values read through g
  // or n inside the loop would be reloaded after every store and block vectorisation.
  const int64_t W = g.width, HW = g.height * W;
  Out* planes[kC];
  float s[kC], t[kC];
  for (int c = 0; c < kC; ++c) {
    planes[c] = out + c * HW + h * W;
    s[c] = kNorm ? n.scale[c] : 1.f;
    t[c] = kNorm ? n.bias[c] : 0.f;
  }
  if constexpr (std::is_same_v<Out, c10::Half>) {
    // float16: de-interleave blocks of pixels as float32, then round each plane's block with
    // narrow_row, which has F16C / AVX-512 versions: cheaper than rounding on the bits here.
    constexpr int64_t kBlock = 256;
    float staged[kC][kBlock];
    for (int64_t w0 = 0; w0 < W; w0 += kBlock) {
      const int64_t m = std::min(kBlock, W - w0);
      const In* __restrict__ block = row + w0 * kC;
      for (int64_t w = 0; w < m; ++w) {
#pragma GCC unroll 4
        for (int c = 0; c < kC; ++c) staged[c][w] = convert<float, kNorm>(static_cast<float>(block[w * kC + c]), s[c], t[c]);
      }
      for (int c = 0; c < kC; ++c) narrow_row(planes[c] + w0, staged[c], m);
    }
    return;
  }
  for (int64_t w = 0; w < W; ++w) {
#pragma GCC unroll 4
    for (int c = 0; c < kC; ++c) planes[c][w] = convert<Out, kNorm>(static_cast<float>(row[w * kC + c]), s[c], t[c]);
  }
}

// dst[k] = blend(a[k], b[k]) for a row in pixel order. Its own multiversioned function with
// restrict parameters: inlined into the row loop below, GCC did not vectorise it for uint8.
template <typename In, typename Blended>
FASTMIX_MULTIVERSION __attribute__((noinline)) void blend_row(const In* __restrict__ a, const In* __restrict__ b,
                                                              Blended* __restrict__ dst, int64_t n, float lam,
                                                              float rest) {
  for (int64_t k = 0; k < n; ++k) {
    const float x = static_cast<float>(a[k]), y = static_cast<float>(b[k]);
    dst[k] = from_acc<Blended>(mixed<Op::kBlend>(x, y, lam, rest));
  }
}

// Rows of one output sample from HWC input into NCHW planes: each row is first assembled in pixel
// order (memcpy for pasted and kept spans, a contiguous vectorised blend for Mixup) in a staging
// row, then de-interleaved by the one loop above, so every kind costs about a copy.
// uint8 outputs stage blends as rounded uint8, others as float32.
template <typename In, typename Out, bool kNorm, int kC>
__attribute__((always_inline)) inline void write_hwc_rows_to_planes(const In* a, const In* b, Out* out, const Geometry& g, const Norm& n, uint8_t kind,
                              float lam, const int64_t* box, int64_t h0, int64_t h1) {
  using Blended = std::conditional_t<std::is_same_v<Out, uint8_t>, uint8_t, float>;
  const int64_t row = g.width * kC;
  std::vector<In> staged(kind == kPaste ? row : 0);
  std::vector<Blended> blended(kind == kBlend ? row : 0);
  const float rest = 1.f - lam;
  for (int64_t h = h0; h < h1; ++h) {
    const In* __restrict__ ar = a + h * row;
    const In* __restrict__ br = b + h * row;
    if (kind == kBlend) {
      blend_row(ar, br, blended.data(), row, lam, rest);
      deinterleave_row<Blended, Out, kNorm, kC>(blended.data(), out, g, n, h);
    } else if (kind == kPaste && h >= box[0] && h < box[1] && box[2] < box[3]) {
      const int64_t x0 = box[2] * kC, x1 = box[3] * kC;
      std::memcpy(staged.data(), ar, x0 * sizeof(In));
      std::memcpy(staged.data() + x0, br + x0, (x1 - x0) * sizeof(In));
      std::memcpy(staged.data() + x1, ar + x1, (row - x1) * sizeof(In));
      deinterleave_row<In, Out, kNorm, kC>(staged.data(), out, g, n, h);
    } else {
      deinterleave_row<In, Out, kNorm, kC>(ar, out, g, n, h);
    }
  }
}

// Pixels [w0, w1) of row h of one output sample, made as kOp says.
template <Op kOp, typename In, typename Out, bool kNorm, int kC>
__attribute__((always_inline)) inline void segment(const In* a, const In* b, Out* out, const Geometry& g,
                                                   const Norm& n, int64_t h, int64_t w0, int64_t w1, float lam,
                                                   float rest) {
  if constexpr (kOp != Op::kBlend && !kNorm && std::is_same_v<In, Out>) {
    if (g.hwc_in == g.nhwc_out) {  // a plain copy of contiguous runs
      const In* src = kOp == Op::kKeep ? a : b;
      const int64_t C = g.channels, W = g.width, HW = g.height * W;
      if (g.hwc_in) std::memcpy(out + (h * W + w0) * C, src + (h * W + w0) * C, (w1 - w0) * C * sizeof(Out));
      else
        for (int64_t c = 0; c < C; ++c)
          std::memcpy(out + c * HW + h * W + w0, src + c * HW + h * W + w0, (w1 - w0) * sizeof(Out));
      return;
    }
  }
  if constexpr (std::is_same_v<Out, c10::Half>) {
    if (g.hwc_in == g.nhwc_out) {
      c10::Half* const outs[1] = {out};
      for_each_staged_run<kC, 1>(g, n, h, w0, w1, outs, [=](int64_t i, float s, float t) {
        return std::array<float, 1>{convert<float, kNorm>(mixed<kOp>(a[i], b[i], lam, rest), s, t)};
      });
      return;
    }
  }
  // Captures by value: uint8 stores may alias anything a reference capture points at.
  for_each_element<kC>(g, n, h, w0, w1, [=](int64_t i, int64_t o, const float* s, const float* t) {
    out[o] = convert<Out, kNorm>(mixed<kOp>(a[i], b[i], lam, rest), kNorm ? *s : 1.f, kNorm ? *t : 0.f);
  });
}

// Compiled for AVX-512, AVX2 and baseline x86-64, picked at load time (see blend_math.h); all
// the loops above are always_inline so that they are compiled into each clone.
template <typename In, typename Out, bool kNorm, int kC>
FASTMIX_MULTIVERSION void write_rows(const In* a, const In* b, Out* out, const Geometry& g, const Norm& n, uint8_t kind,
                                     float lam, const int64_t* box, int64_t h0, int64_t h1) {
  if constexpr (kC > 0) {
    if (g.hwc_in && !g.nhwc_out) return write_hwc_rows_to_planes<In, Out, kNorm, kC>(a, b, out, g, n, kind, lam, box, h0, h1);
  }
  const float rest = 1.f - lam;
  for (int64_t h = h0; h < h1; ++h) {
    if (kind == kBlend) {
      segment<Op::kBlend, In, Out, kNorm, kC>(a, b, out, g, n, h, 0, g.width, lam, rest);
    } else if (kind == kPaste && h >= box[0] && h < box[1] && box[2] < box[3]) {
      segment<Op::kKeep, In, Out, kNorm, kC>(a, b, out, g, n, h, 0, box[2], lam, rest);
      segment<Op::kTake, In, Out, kNorm, kC>(a, b, out, g, n, h, box[2], box[3], lam, rest);
      segment<Op::kKeep, In, Out, kNorm, kC>(a, b, out, g, n, h, box[3], g.width, lam, rest);
    } else {
      segment<Op::kKeep, In, Out, kNorm, kC>(a, b, out, g, n, h, 0, g.width, lam, rest);
    }
  }
}

// Rows [h0, h1) of a swapped pair that both blend: each element of a and b is read and
// converted once for both outputs.
template <typename In, typename Out, bool kNorm, int kC>
FASTMIX_MULTIVERSION void write_blended_pair_rows(const In* a, const In* b, Out* out_a, Out* out_b, const Geometry& g,
                                                  const Norm& n, float lam_a, float lam_b, int64_t h0, int64_t h1) {
  const float rest_a = 1.f - lam_a, rest_b = 1.f - lam_b;
  if constexpr (kC > 0) {
    if (g.hwc_in && !g.nhwc_out) {
      // Blend each row pair in pixel order (contiguous, vectorised like the in-place kernel) into
      // a staging row, then de-interleave it into the planes: cheaper than blending while
      // de-interleaving. uint8 outputs stage rounded uint8, others float32.
      using Staged = std::conditional_t<std::is_same_v<Out, uint8_t>, uint8_t, float>;
      const int64_t row = g.width * kC;
      std::vector<Staged> staged(2 * row);
      Staged* __restrict__ sa = staged.data();
      Staged* __restrict__ sb = staged.data() + row;
      for (int64_t h = h0; h < h1; ++h) {
        const In* __restrict__ ar = a + h * row;
        const In* __restrict__ br = b + h * row;
        for (int64_t k = 0; k < row; ++k) {
          const float x = static_cast<float>(ar[k]), y = static_cast<float>(br[k]);
          sa[k] = from_acc<Staged>(mixed<Op::kBlend>(x, y, lam_a, rest_a));
          sb[k] = from_acc<Staged>(mixed<Op::kBlend>(y, x, lam_b, rest_b));
        }
        deinterleave_row<Staged, Out, kNorm, kC>(sa, out_a, g, n, h);
        deinterleave_row<Staged, Out, kNorm, kC>(sb, out_b, g, n, h);
      }
      return;
    }
  }
  if constexpr (std::is_same_v<Out, c10::Half>) {
    if (g.hwc_in == g.nhwc_out) {
      c10::Half* const outs[2] = {out_a, out_b};
      for (int64_t h = h0; h < h1; ++h)
        for_each_staged_run<kC, 2>(g, n, h, 0, g.width, outs, [=](int64_t i, float s, float t) {
          const float x = static_cast<float>(a[i]), y = static_cast<float>(b[i]);
          return std::array<float, 2>{convert<float, kNorm>(mixed<Op::kBlend>(x, y, lam_a, rest_a), s, t),
                                      convert<float, kNorm>(mixed<Op::kBlend>(y, x, lam_b, rest_b), s, t)};
        });
      return;
    }
  }
  for (int64_t h = h0; h < h1; ++h) {
    for_each_element<kC>(g, n, h, 0, g.width, [=](int64_t i, int64_t o, const float* s, const float* t) {
      const float x = static_cast<float>(a[i]), y = static_cast<float>(b[i]);
      const float sv = kNorm ? *s : 1.f, tv = kNorm ? *t : 0.f;
      out_a[o] = convert<Out, kNorm>(mixed<Op::kBlend>(x, y, lam_a, rest_a), sv, tv);
      out_b[o] = convert<Out, kNorm>(mixed<Op::kBlend>(y, x, lam_b, rest_b), sv, tv);
    });
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
    if (is_written(partner, kind, i) && is_written(partner, kind, j) && partner[j] == i && !taken[j]) {
      units.push_back({i, j});
      taken[i] = taken[j] = 1;
    } else {
      units.push_back({i, -1});
      taken[i] = 1;
    }
  }
  return units;
}

template <typename In, typename Out, bool kNorm, int kC>
void run(const std::vector<const In*>& inputs, Out* out, const Geometry& g, const Norm& n,
         const int64_t* partner, const float* lam, const uint8_t* kind, const int64_t* box) {
  const int64_t batch = static_cast<int64_t>(inputs.size());
  const std::vector<Unit> units = make_units(partner, kind, batch);
  const int64_t row_bytes = g.width * g.channels * static_cast<int64_t>(sizeof(In));
  const int64_t rows_per_block = std::max<int64_t>(1, (32 * 1024) / std::max<int64_t>(row_bytes, 1));
  const int64_t blocks = (g.height + rows_per_block - 1) / rows_per_block;
  const int64_t tasks = static_cast<int64_t>(units.size()) * blocks;
  auto write_sample = [&](int64_t i, int64_t h0, int64_t h1) {
    const int64_t p = is_written(partner, kind, i) ? partner[i] : i;
    const uint8_t k = is_written(partner, kind, i) ? kind[i] : static_cast<uint8_t>(kNone);
    write_rows<In, Out, kNorm, kC>(inputs[i], inputs[p], out + i * g.out_batch_stride, g, n, k, lam[i], box + 4 * i,
                                   h0, h1);
  };
  at::parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const Unit& u = units[t / blocks];
      const int64_t h0 = (t % blocks) * rows_per_block, h1 = std::min(g.height, h0 + rows_per_block);
      if (u.second >= 0 && kind[u.first] == kBlend && kind[u.second] == kBlend) {
        write_blended_pair_rows<In, Out, kNorm, kC>(inputs[u.first], inputs[u.second], out + u.first * g.out_batch_stride,
                                                    out + u.second * g.out_batch_stride, g, n, lam[u.first],
                                                    lam[u.second], h0, h1);
        continue;
      }
      write_sample(u.first, h0, h1);
      if (u.second >= 0) write_sample(u.second, h0, h1);
    }
  });
}

template <typename In, typename Out, bool kNorm>
void run_for_channels(const std::vector<const In*>& inputs, Out* out, const Geometry& g, const Norm& n,
                      const int64_t* partner, const float* lam, const uint8_t* kind, const int64_t* box) {
  if (g.hwc_in != g.nhwc_out && g.channels == 3) run<In, Out, kNorm, 3>(inputs, out, g, n, partner, lam, kind, box);
  else if (g.hwc_in != g.nhwc_out && g.channels == 1) run<In, Out, kNorm, 1>(inputs, out, g, n, partner, lam, kind, box);
  else run<In, Out, kNorm, 0>(inputs, out, g, n, partner, lam, kind, box);
}

// The checks of out, params and affine, then the dtype dispatch. `inputs` point at B samples laid out as
// described by `hwc` with dims (c, h, w).
template <typename In>
void mix_samples_into(const at::Tensor& out, const std::vector<const In*>& inputs, const at::Tensor& partner,
                      const at::Tensor& lam, const at::Tensor& kind, const at::Tensor& box,
                      const at::Tensor& scale, const at::Tensor& bias, bool hwc) {
  const int64_t C = out.size(1), H = out.size(2), W = out.size(3);
  const bool normalize = scale.numel() > 0;
  const bool nhwc_out = check_out_params_and_affine(out, partner, lam, kind, box, scale, bias,
                                                    std::is_same_v<In, uint8_t>);
  const at::Tensor partner_c = partner.contiguous(), lam_c = lam.contiguous(), kind_c = kind.contiguous(),
                   box_c = box.contiguous();
  check_params_values(out, partner_c, lam_c, kind_c, box_c);
  if (out.numel() == 0) return;

  const Geometry g{C, H, W, hwc, nhwc_out, C * H * W};
  // Per-channel values (identity when not normalising, never read then), and the same repeated
  // per pixel for the contiguous HWC -> NHWC loop.
  std::vector<float> scale_c(C, 1.f), bias_c(C, 0.f);
  if (normalize) {
    const at::Tensor sc = scale.contiguous(), bc = bias.contiguous();
    std::copy_n(sc.data_ptr<float>(), C, scale_c.begin());
    std::copy_n(bc.data_ptr<float>(), C, bias_c.begin());
  }
  std::vector<float> scale_hwc(hwc && nhwc_out ? W * C : 0), bias_hwc(scale_hwc.size());
  for (size_t k = 0; k < scale_hwc.size(); ++k) {
    scale_hwc[k] = scale_c[k % C];
    bias_hwc[k] = bias_c[k % C];
  }
  const Norm n{scale_c.data(), bias_c.data(), scale_hwc.data(), bias_hwc.data()};
  const int64_t* p = partner_c.data_ptr<int64_t>();
  const float* l = lam_c.data_ptr<float>();
  const uint8_t* k = kind_c.data_ptr<uint8_t>();
  const int64_t* b = box_c.data_ptr<int64_t>();
  switch (out.scalar_type()) {
    case at::kByte:
      if constexpr (std::is_same_v<In, uint8_t>)
        run_for_channels<In, uint8_t, false>(inputs, out.data_ptr<uint8_t>(), g, n, p, l, k, b);
      break;
    case at::kFloat:
      if (normalize) run_for_channels<In, float, true>(inputs, out.data_ptr<float>(), g, n, p, l, k, b);
      else run_for_channels<In, float, false>(inputs, out.data_ptr<float>(), g, n, p, l, k, b);
      break;
    case at::kBFloat16:
      if (normalize) run_for_channels<In, c10::BFloat16, true>(inputs, out.data_ptr<c10::BFloat16>(), g, n, p, l, k, b);
      else run_for_channels<In, c10::BFloat16, false>(inputs, out.data_ptr<c10::BFloat16>(), g, n, p, l, k, b);
      break;
    default:
      if (normalize) run_for_channels<In, c10::Half, true>(inputs, out.data_ptr<c10::Half>(), g, n, p, l, k, b);
      else run_for_channels<In, c10::Half, false>(inputs, out.data_ptr<c10::Half>(), g, n, p, l, k, b);
  }
}

// Calls f(In{}) for the input element type (uint8 or float32, checked by the callers).
template <typename F>
void with_input_type(c10::ScalarType dtype, F&& f) {
  if (dtype == at::kByte) f(uint8_t{});
  else f(float{});
}

void mix_into_cpu_(const at::Tensor& out, const at::Tensor& images, const at::Tensor& partner, const at::Tensor& lam,
                  const at::Tensor& kind, const at::Tensor& box, const at::Tensor& scale, const at::Tensor& bias,
                  bool hwc) {
  check_mix_into_images(out, images, hwc);
  const int64_t B = out.size(0), C = out.size(1), H = out.size(2), W = out.size(3);
  const at::Tensor src = images.contiguous();
  with_input_type(src.scalar_type(), [&](auto tag) {
    using In = decltype(tag);
    std::vector<const In*> inputs(B);
    for (int64_t i = 0; i < B; ++i) inputs[i] = src.data_ptr<In>() + i * C * H * W;
    mix_samples_into(out, inputs, partner, lam, kind, box, scale, bias, hwc);
  });
}

void collate_mix_cpu_(const at::Tensor& out, at::TensorList samples, const at::Tensor& partner, const at::Tensor& lam,
                     const at::Tensor& kind, const at::Tensor& box, const at::Tensor& scale, const at::Tensor& bias,
                     bool hwc) {
  check_collate_samples(out, samples, hwc);
  const int64_t B = out.size(0);
  if (B == 0) {
    check_out_params_and_affine(out, partner, lam, kind, box, scale, bias, true);
    return;
  }
  const c10::ScalarType dtype = samples[0].scalar_type();
  std::vector<at::Tensor> contiguous(B);
  for (int64_t i = 0; i < B; ++i) contiguous[i] = samples[i].contiguous();
  with_input_type(dtype, [&](auto tag) {
    using In = decltype(tag);
    std::vector<const In*> inputs(B);
    for (int64_t i = 0; i < B; ++i) inputs[i] = contiguous[i].data_ptr<In>();
    mix_samples_into(out, inputs, partner, lam, kind, box, scale, bias, hwc);
  });
}

}  // namespace
}  // namespace cpu
}  // namespace fastmix

TORCH_LIBRARY_IMPL(fastmix, CPU, m) {
  m.impl("mix_into_", &fastmix::cpu::mix_into_cpu_);
  m.impl("collate_mix_", &fastmix::cpu::collate_mix_cpu_);
}
