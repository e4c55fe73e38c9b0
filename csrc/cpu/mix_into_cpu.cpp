// CPU implementation of fastmix::mix_into_ and fastmix::collate_mix_: mix a batch out of place,
// into a new (B, C, H, W) tensor, converting layout (HWC -> CHW), dtype and normalisation on the
// way. Each input sample is read once and each output element written once: a swapped pair
// (a <-> b) is one unit of work that writes out[a] and out[b] from the same rows of a and b,
// a row block at a time, so the second read comes from cache.
//
// One output row (all channels of image row h) is made in up to three steps, each a short loop
// over a row that stays in L1:
//   1. assemble: the mixed row in the input's order (CHW planes or HWC pixels): a blend into a
//      staging row, a partial paste as copies into it; a kept or wholly taken row is read where
//      it is, with no copy;
//   2. relayout: into the output's order (NCHW planes or NHWC pixels), converted to float32 and
//      normalised (v * scale[c] + bias[c]), or as uint8 for uint8 outputs;
//   3. narrow: float32 -> bfloat16 / float16 (float32 and uint8 outputs are written by step 2).
// The element type is a runtime choice between these loops, not a template parameter of the
// whole kernel: against the memory traffic of the batch the extra passes over an L1 row cost
// little, and the build compiles ~30 small loops instead of ~40 copies of the whole kernel
// (csrc/cpu/mix_into_cpu.cpp took 4.9 minutes to compile that way, and now about half a minute).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../checks.h"
#include "../mix_plan.h"
#include "blend_math.h"

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

// Per-channel normalisation; `on` false leaves values as they are (no multiply by 1, add of 0).
struct Norm {
  bool on;
  const float* scale;      // (C,)
  const float* bias;       // (C,)
  const float* scale_row;  // (W * C,) the same values repeated per pixel, for HWC -> NHWC
  const float* bias_row;
};

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
    return f;
  }
}

// Same order, planar: C planes of W (the source's planes `src_plane` apart, the destination's `dst_plane`).
template <typename S, typename D>
FASTMIX_MULTIVERSION __attribute__((noinline)) void copy_planes(const S* __restrict__ src, int64_t src_plane,
                                                                D* __restrict__ dst, int64_t dst_plane, int64_t W,
                                                                int64_t C, Norm n) {
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

// Same order, interleaved: one run of W * C with a (scale, bias) per element.
template <typename S, typename D>
FASTMIX_MULTIVERSION __attribute__((noinline)) void copy_pixels(const S* __restrict__ src, D* __restrict__ dst,
                                                                int64_t count, Norm n) {
  if (n.on) {
    const float* __restrict__ s = n.scale_row;
    const float* __restrict__ t = n.bias_row;
    for (int64_t k = 0; k < count; ++k) dst[k] = converted<S, D>(src[k], s[k], t[k], true);
  } else {
    for (int64_t k = 0; k < count; ++k) dst[k] = converted<S, D>(src[k], 1.f, 0.f, false);
  }
}

// HWC pixels -> C planes. kC > 0 fixes the channel count so that the loop becomes de-interleaving
// shuffles; explicit per-plane pointers and factors in locals (uint8 stores may alias anything,
// so values read through a struct would be reloaded after every store).
template <typename S, typename D, int kC>
FASTMIX_MULTIVERSION __attribute__((noinline)) void planes_from_pixels(const S* __restrict__ src, D* __restrict__ dst,
                                                                       int64_t dst_plane, int64_t W, int64_t C_, Norm n) {
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
                                                                       D* __restrict__ dst, int64_t W, int64_t C_, Norm n) {
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

// -- one output row ----------------------------------------------------------------------------------

// Input: B samples of C*H*W elements, (C, H, W) or (H, W, C) in memory.
// Output: (B, C, H, W) in NCHW or NHWC memory order.
struct Geometry {
  int64_t C, H, W;
  bool hwc_in, nhwc_out;
  c10::ScalarType out_type;
  int64_t out_elem;  // bytes
};

// A row of the input's order: where its elements are, their type, and how far apart its planes are
// (CHW input; ignored for HWC).
struct SourceRow {
  const void* data;
  bool is_float;
  int64_t plane;
};

// Writes source row `r` (image row h) of one sample into `out_sample` as the output wants it;
// `scratch`: a float row of W * C for bfloat16 / float16 outputs.
template <typename S, typename D>
void relayout(const S* src, int64_t src_plane, D* dst, int64_t dst_plane, const Geometry& g, const Norm& n) {
  const int64_t C = g.C, W = g.W;
  if (g.hwc_in && g.nhwc_out) return copy_pixels<S, D>(src, dst, W * C, n);
  if (!g.hwc_in && !g.nhwc_out) return copy_planes<S, D>(src, src_plane, dst, dst_plane, W, C, n);
  if (g.hwc_in) {  // HWC -> NCHW, the decoded-image collate
    if (C == 3) return planes_from_pixels<S, D, 3>(src, dst, dst_plane, W, C, n);
    if (C == 1) return planes_from_pixels<S, D, 1>(src, dst, dst_plane, W, C, n);
    return planes_from_pixels<S, D, 0>(src, dst, dst_plane, W, C, n);
  }
  if (C == 3) return pixels_from_planes<S, D, 3>(src, src_plane, dst, W, C, n);
  return pixels_from_planes<S, D, 0>(src, src_plane, dst, W, C, n);
}

void write_row(const SourceRow& r, void* out_sample, int64_t h, const Geometry& g, const Norm& n, float* scratch) {
  const int64_t HW = g.H * g.W;
  // Where row h starts in the output sample, and how far apart its planes are.
  const int64_t out_offset = g.nhwc_out ? h * g.W * g.C : h * g.W;
  char* out_row = static_cast<char*>(out_sample) + out_offset * g.out_elem;
  if (g.out_type == at::kByte) {
    relayout(static_cast<const uint8_t*>(r.data), r.plane, reinterpret_cast<uint8_t*>(out_row), HW, g, n);
    return;
  }
  const bool direct = g.out_type == at::kFloat;
  float* dst = direct ? reinterpret_cast<float*>(out_row) : scratch;
  const int64_t dst_plane = direct ? HW : g.W;
  if (r.is_float) relayout(static_cast<const float*>(r.data), r.plane, dst, dst_plane, g, n);
  else relayout(static_cast<const uint8_t*>(r.data), r.plane, dst, dst_plane, g, n);
  if (direct) return;
  if (g.nhwc_out) return narrow(out_row, g.out_type, scratch, g.W * g.C);
  for (int64_t c = 0; c < g.C; ++c)
    narrow(out_row + c * HW * g.out_elem, g.out_type, scratch + c * g.W, g.W);
}

// -- one sample, one unit --------------------------------------------------------------------------

struct Params {
  const int64_t* partner;
  const float* lam;
  const uint8_t* kind;
  const int64_t* box;  // (B, 4): y0, y1, x0, x1
};

// The rows of image row h of a sample of type In: where the row starts, and its plane spacing.
template <typename In>
SourceRow input_row(const In* sample, int64_t h, const Geometry& g) {
  const int64_t offset = g.hwc_in ? h * g.W * g.C : h * g.W;
  return {sample + offset, std::is_same_v<In, float>, g.H * g.W};
}

// Calls f(segment_a, segment_b, staged, length) over the row's contiguous segments: one of W * C
// (HWC), or C of W (CHW), with the staging row's segments W apart.
template <typename In, typename S, typename F>
void for_each_segment(const In* a, const In* b, S* staged, int64_t h, const Geometry& g, F&& f) {
  if (g.hwc_in) {
    const int64_t offset = h * g.W * g.C;
    f(a + offset, b + offset, staged, g.W * g.C);
    return;
  }
  const int64_t HW = g.H * g.W;
  for (int64_t c = 0; c < g.C; ++c) f(a + c * HW + h * g.W, b + c * HW + h * g.W, staged + c * g.W, g.W);
}

// Buffers of one worker: two staging rows of each type and the float scratch row.
struct Rows {
  std::vector<uint8_t> u8_a, u8_b;
  std::vector<float> f32_a, f32_b, scratch;
  explicit Rows(int64_t n) : u8_a(n), u8_b(n), f32_a(n), f32_b(n), scratch(n) {}
};

// Image row h of output sample i, made from `own` and `theirs` (its partner) as kind k says.
template <typename In>
void write_sample_row(const In* own, const In* theirs, uint8_t k, float lam, const int64_t* box, void* out_sample,
                      int64_t h, const Geometry& g, const Norm& n, Rows& rows) {
  const bool u8_out = g.out_type == at::kByte;
  if (k == kBlend) {
    const float rest = 1.f - lam;
    if (u8_out) {
      if constexpr (std::is_same_v<In, uint8_t>) {
        for_each_segment(own, theirs, rows.u8_a.data(), h, g,
                         [&](const In* a, const In* b, uint8_t* s, int64_t len) { blend_row(a, b, s, len, lam, rest); });
        write_row({rows.u8_a.data(), false, g.W}, out_sample, h, g, n, rows.scratch.data());
      }
      return;
    }
    for_each_segment(own, theirs, rows.f32_a.data(), h, g,
                     [&](const In* a, const In* b, float* s, int64_t len) { blend_row(a, b, s, len, lam, rest); });
    write_row({rows.f32_a.data(), true, g.W}, out_sample, h, g, n, rows.scratch.data());
    return;
  }
  const bool in_box = k == kPaste && h >= box[0] && h < box[1] && box[2] < box[3];
  if (!in_box) return write_row(input_row(own, h, g), out_sample, h, g, n, rows.scratch.data());
  if (box[2] == 0 && box[3] == g.W) return write_row(input_row(theirs, h, g), out_sample, h, g, n, rows.scratch.data());
  // A partial paste: own row with the box's columns from the partner, staged in the input type.
  In* staged = reinterpret_cast<In*>(std::is_same_v<In, uint8_t> ? static_cast<void*>(rows.u8_a.data())
                                                                   : static_cast<void*>(rows.f32_a.data()));
  const int64_t unit = g.hwc_in ? g.C : 1;  // elements per pixel within a segment
  for_each_segment(own, theirs, staged, h, g, [&](const In* a, const In* b, In* s, int64_t len) {
    const int64_t x0 = box[2] * unit, x1 = box[3] * unit;
    std::memcpy(s, a, x0 * sizeof(In));
    std::memcpy(s + x0, b + x0, (x1 - x0) * sizeof(In));
    std::memcpy(s + x1, a + x1, (len - x1) * sizeof(In));
  });
  write_row({staged, std::is_same_v<In, float>, g.W}, out_sample, h, g, n, rows.scratch.data());
}

// Image row h of a swapped pair that both blend: each input row read once for both outputs.
template <typename In>
void write_blended_pair_row(const In* a, const In* b, float lam_a, float lam_b, void* out_a, void* out_b, int64_t h,
                            const Geometry& g, const Norm& n, Rows& rows) {
  if (g.out_type == at::kByte) {
    if constexpr (std::is_same_v<In, uint8_t>) {
      uint8_t* sb = rows.u8_b.data();
      for_each_segment(a, b, rows.u8_a.data(), h, g, [&](const In* x, const In* y, uint8_t* sa, int64_t len) {
        blend_pair_row(x, y, sa, sb + (sa - rows.u8_a.data()), len, lam_a, lam_b);
      });
      write_row({rows.u8_a.data(), false, g.W}, out_a, h, g, n, rows.scratch.data());
      write_row({rows.u8_b.data(), false, g.W}, out_b, h, g, n, rows.scratch.data());
    }
    return;
  }
  float* sb = rows.f32_b.data();
  for_each_segment(a, b, rows.f32_a.data(), h, g, [&](const In* x, const In* y, float* sa, int64_t len) {
    blend_pair_row(x, y, sa, sb + (sa - rows.f32_a.data()), len, lam_a, lam_b);
  });
  write_row({rows.f32_a.data(), true, g.W}, out_a, h, g, n, rows.scratch.data());
  write_row({rows.f32_b.data(), true, g.W}, out_b, h, g, n, rows.scratch.data());
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

template <typename In>
void run(const std::vector<const In*>& inputs, char* out, const Geometry& g, const Norm& n, const Params& p) {
  const int64_t batch = static_cast<int64_t>(inputs.size());
  const std::vector<Unit> units = make_units(p.partner, p.kind, batch);
  const int64_t row_bytes = g.W * g.C * static_cast<int64_t>(sizeof(In));
  const int64_t rows_per_block = std::max<int64_t>(1, (32 * 1024) / std::max<int64_t>(row_bytes, 1));
  const int64_t blocks = (g.H + rows_per_block - 1) / rows_per_block;
  const int64_t tasks = static_cast<int64_t>(units.size()) * blocks;
  const int64_t out_sample_bytes = g.C * g.H * g.W * g.out_elem;
  auto sample_out = [&](int64_t i) { return static_cast<void*>(out + i * out_sample_bytes); };
  auto write_sample = [&](int64_t i, int64_t h, Rows& rows) {
    const bool written = is_written(p.partner, p.kind, i);
    const int64_t partner = written ? p.partner[i] : i;
    const uint8_t k = written ? p.kind[i] : static_cast<uint8_t>(kNone);
    write_sample_row(inputs[i], inputs[partner], k, p.lam[i], p.box + 4 * i, sample_out(i), h, g, n, rows);
  };
  at::parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
    Rows rows(g.W * g.C);
    for (int64_t t = t0; t < t1; ++t) {
      const Unit& u = units[t / blocks];
      const int64_t h0 = (t % blocks) * rows_per_block, h1 = std::min(g.H, h0 + rows_per_block);
      const bool blended_pair = u.second >= 0 && p.kind[u.first] == kBlend && p.kind[u.second] == kBlend;
      for (int64_t h = h0; h < h1; ++h) {
        if (blended_pair) {
          write_blended_pair_row(inputs[u.first], inputs[u.second], p.lam[u.first], p.lam[u.second],
                                 sample_out(u.first), sample_out(u.second), h, g, n, rows);
          continue;
        }
        write_sample(u.first, h, rows);
        if (u.second >= 0) write_sample(u.second, h, rows);
      }
    }
  });
}

// The checks of out, params and affine, then the kernel. `inputs` point at B samples laid out as
// `hwc` says, with dims (C, H, W).
template <typename In>
void mix_samples_into(const at::Tensor& out, const std::vector<const In*>& inputs, const at::Tensor& partner,
                      const at::Tensor& lam, const at::Tensor& kind, const at::Tensor& box, const at::Tensor& scale,
                      const at::Tensor& bias, bool hwc) {
  const bool nhwc_out = check_out_params_and_affine(out, partner, lam, kind, box, scale, bias,
                                                    std::is_same_v<In, uint8_t>);
  const at::Tensor partner_c = partner.contiguous(), lam_c = lam.contiguous(), kind_c = kind.contiguous(),
                   box_c = box.contiguous();
  check_params_values(out, partner_c, lam_c, kind_c, box_c);
  if (out.numel() == 0) return;

  const int64_t C = out.size(1), H = out.size(2), W = out.size(3);
  const bool normalize = scale.numel() > 0;
  const Geometry g{C, H, W, hwc, nhwc_out, out.scalar_type(), static_cast<int64_t>(out.element_size())};
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
  const Norm n{normalize, scale_c.data(), bias_c.data(), scale_row.data(), bias_row.data()};
  const Params p{partner_c.data_ptr<int64_t>(), lam_c.data_ptr<float>(), kind_c.data_ptr<uint8_t>(),
                 box_c.data_ptr<int64_t>()};
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
