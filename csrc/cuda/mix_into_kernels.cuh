// The CUDA fused out-of-place mix (fastmix::mix_into_): out = cast(normalize(mixed(images))).
//
// Out of place, so there is no plan: each output element reads its own input element and, when
// its sample is blended or the element lies in its sample's box, the partner's element at the
// same position. A swapped pair (partner[partner[b]] == b, as a flip makes) is one thread's work,
// the lower sample's: it reads both inputs once and writes both outputs. So each input element is
// read once per sample that needs it (once for both samples of a pair), and each output element is
// written once. Three kernels, picked per call:
//
//   same layout   (B,C,H,W) -> NCHW, or (B,H,W,C) -> channels_last: packs of N consecutive
//                 elements in and out (N = 16 bytes / the wider of the two element types);
//   HWC -> NCHW   with 3 or 4 channels: a thread reads N pixels x C channels (C packs) and
//                 writes one N-element pack to each channel plane;
//   general       one element per thread, any combination (misaligned data, odd sizes, other C).
//
// A position within a sample is split into channel, row and column in 32-bit arithmetic where a
// sample has fewer than 2^31 elements (a 64-bit division is a long instruction sequence on sm_90).
//
// mixed: a blend is x * lam + partner * (1 - lam) in float32 (products and sum rounded apart),
// a paste takes the partner's value inside the box, untouched samples keep their value;
// normalize is v * scale[c] + bias[c] (product and sum rounded apart) when enabled; the cast
// rounds to nearest even (uint8: then saturates). See fastmix.backends.reference.mix_into_.
#pragma once

#include <cstdint>

#include "../mix_plan.h"
#include "cuda_math.cuh"
#include "launch.cuh"

namespace fastmix {
namespace cuda {

struct IntoParams {
  const int64_t* partner;
  const float* lam;
  const uint8_t* kind;
  const int64_t* box;
  int64_t batch;
};

// The dims of a mix_into (mix_into_cpu.cpp's IntoGeometry; numba's mix_into_numba.IntoGeometry).
struct IntoGeometry {
  int64_t channels, height, width;
  bool hwc_in;    // input memory is (B, H, W, C), else (B, C, H, W)
  bool nhwc_out;  // output memory is channels_last, else contiguous NCHW
};

// Per-channel normalisation (mix_into_cpu.cpp's Normalize).
struct Normalize {
  const float* scale;  // (C,) or nullptr
  const float* bias;
};

struct SampleMix {
  bool mixed;  // mixed(partner, kind, b) of csrc/mix_plan.h
  bool blend;
  int64_t partner;  // the sample itself when not mixed
  float lam, rest;
  int32_t box[4];
};

FASTMIX_HDI SampleMix sample_mix(const IntoParams& p, int64_t b) {
  SampleMix s;
  const int64_t q = p.partner[b];
  const uint8_t k = p.kind[b];
  const bool valid = q >= 0 && q < p.batch && k <= kPaste;
  FASTMIX_KERNEL_ASSERT(valid);
  s.mixed = valid && k != kNone && q != b;
  s.blend = k == kBlend;
  s.partner = s.mixed ? q : b;
  s.lam = p.lam[b];
  s.rest = sub_rn(1.f, s.lam);
  for (int j = 0; j < 4; ++j) s.box[j] = clamp_box_bound(p.box[4 * b + j]);
  return s;
}

// Whether the element at (h, w) takes the partner's value; and whether the partner is read at all.
FASTMIX_HDI bool takes_partner(const SampleMix& s, int64_t h, int64_t w) {
  return s.mixed && !s.blend && h >= s.box[0] && h < s.box[1] && w >= s.box[2] && w < s.box[3];
}

template <typename In>
FASTMIX_HDI float mixed_value(In own, In theirs, const SampleMix& s, bool take) {
  if (s.mixed && s.blend) return blend_acc(to_acc(own), to_acc(theirs), s.lam, s.rest);
  return to_acc(take ? theirs : own);
}

// v normalised (when enabled) and cast to Out (mix_into_cpu.cpp's converted).
template <typename Out>
FASTMIX_HDI Out converted(float v, const Normalize& n, int64_t c) {
  if (n.scale != nullptr) v = add_rn(mul_rn(v, n.scale[c]), n.bias[c]);
  return from_acc<Out>(v);
}

template <typename In, typename Out>
constexpr int kIntoPackElems = 16 / static_cast<int>(sizeof(In) > sizeof(Out) ? sizeof(In) : sizeof(Out));

// The other output a thread of sample b writes: when b and its partner q are a swapped pair
// (partner[q] == b, q != b), the lower of the two writes both (returns q to it) and the higher
// none (kPairFollower); any other sample writes only its own (kAlone).
constexpr int64_t kAlone = -1;
constexpr int64_t kPairFollower = -2;
FASTMIX_HDI int64_t pair_partner(const IntoParams& p, int64_t b) {
  const int64_t q = p.partner[b];
  if (q < 0 || q >= p.batch || q == b || p.partner[q] != b) return kAlone;
  return q > b ? q : kPairFollower;
}

// Channel, pixel (h * W + w), row and column of element e of a sample, in out's memory order.
struct ElementAt {
  int64_t c, pixel, h, w;
};

template <typename I>
FASTMIX_HDI ElementAt element_at_as(const IntoGeometry& g, I e) {
  const I C = static_cast<I>(g.channels), W = static_cast<I>(g.width), HW = static_cast<I>(g.height) * W;
  I c, pixel;
  if (g.nhwc_out) {
    pixel = e / C;
    c = e - pixel * C;
  } else {
    c = e / HW;
    pixel = e - c * HW;
  }
  const I h = pixel / W;
  return {static_cast<int64_t>(c), static_cast<int64_t>(pixel), static_cast<int64_t>(h),
          static_cast<int64_t>(pixel - h * W)};
}

// In 32 bits where a sample has fewer than 2^31 elements.
FASTMIX_HDI ElementAt element_at(const IntoGeometry& g, int64_t e) {
  if (g.channels * g.height * g.width <= INT32_MAX) return element_at_as<uint32_t>(g, static_cast<uint32_t>(e));
  return element_at_as<uint64_t>(g, static_cast<uint64_t>(e));
}

// The N outputs of one sample: lane k has channel ch[k] and takes the partner's value where bit
// k of `take` is set.
template <typename Out, typename In, int N>
FASTMIX_HDI Pack<Out, N> mixed_pack(const Pack<In, N>& own, const Pack<In, N>& theirs, const SampleMix& s,
                                    uint32_t take, const Normalize& n, const int32_t* ch) {
  Pack<Out, N> r;
#pragma unroll
  for (int k = 0; k < N; ++k) r.v[k] = converted<Out>(mixed_value(own.v[k], theirs.v[k], s, (take >> k) & 1u), n, ch[k]);
  return r;
}

// In and out in the same memory order: thread (b, v) does elements [v N, v N + N) of sample b
// (and of its partner, when it leads a swapped pair).
template <typename In, typename Out, int N>
struct MixIntoSameLayoutFn {
  const In* in;
  Out* out;
  IntoParams p;
  IntoGeometry g;
  Normalize n;

  FASTMIX_HD void operator()(int64_t b, int64_t v) const {
    const int64_t other = pair_partner(p, b);
    if (other == kPairFollower) return;
    const int64_t C = g.channels, H = g.height, W = g.width, numel = C * H * W;
    const SampleMix s = sample_mix(p, b);
    SampleMix so{};  // the pair's other sample (not mixed: none)
    if (other >= 0) so = sample_mix(p, other);
    const int64_t e0 = v * N;
    const ElementAt at = element_at(g, e0);
    int64_t c = at.c, h = at.h, w = at.w;
    int32_t ch[N];
    uint32_t take = 0, take_other = 0;
#pragma unroll
    for (int k = 0; k < N; ++k) {
      ch[k] = static_cast<int32_t>(c);
      take |= static_cast<uint32_t>(takes_partner(s, h, w)) << k;
      take_other |= static_cast<uint32_t>(takes_partner(so, h, w)) << k;
      if (g.nhwc_out) {
        if (++c == C) {
          c = 0;
          if (++w == W) {
            w = 0;
            ++h;
          }
        }
      } else if (++w == W) {
        w = 0;
        if (++h == H) {
          h = 0;
          ++c;
        }
      }
    }
    const Pack<In, N> own = load_pack<In, N>(in + b * numel + e0);
    if (other >= 0) {  // both from the two inputs, each read once
      const Pack<In, N> theirs = load_pack<In, N>(in + other * numel + e0);
      store_pack<Out, N>(out + b * numel + e0, mixed_pack<Out>(own, theirs, s, take, n, ch));
      store_pack<Out, N>(out + other * numel + e0, mixed_pack<Out>(theirs, own, so, take_other, n, ch));
      return;
    }
    const bool need_theirs = s.mixed && (s.blend || take != 0);
    const Pack<In, N> theirs = need_theirs ? load_pack<In, N>(in + s.partner * numel + e0) : own;
    store_pack<Out, N>(out + b * numel + e0, mixed_pack<Out>(own, theirs, s, take, n, ch));
  }
};

// (B, H, W, C) in, NCHW out, C fixed: thread (b, v) does pixels [v N, v N + N) of sample b (and
// of its partner, when it leads a swapped pair).
template <typename In, typename Out, int N, int C>
struct MixIntoHwcToNchwFn {
  const In* in;
  Out* out;
  IntoParams p;
  IntoGeometry g;
  Normalize n;

  // The C planes of one sample's N pixels, from N pixels x C channels = C packs of own and theirs.
  FASTMIX_HDI void write_planes(const Pack<In, N>* own, const Pack<In, N>* theirs, const SampleMix& s, uint32_t take,
                                Out* dst, int64_t plane) const {
#pragma unroll
    for (int c = 0; c < C; ++c) {
      Pack<Out, N> r;
#pragma unroll
      for (int k = 0; k < N; ++k) {
        const int idx = k * C + c;
        r.v[k] = converted<Out>(mixed_value(own[idx / N].v[idx % N], theirs[idx / N].v[idx % N], s, (take >> k) & 1u),
                                n, c);
      }
      store_pack<Out, N>(dst + c * plane, r);
    }
  }

  FASTMIX_HD void operator()(int64_t b, int64_t v) const {
    const int64_t other = pair_partner(p, b);
    if (other == kPairFollower) return;
    const int64_t H = g.height, W = g.width, HW = H * W;
    const SampleMix s = sample_mix(p, b);
    SampleMix so{};
    if (other >= 0) so = sample_mix(p, other);
    const int64_t p0 = v * N;
    const ElementAt at = element_at(IntoGeometry{1, H, W, false, false}, p0);
    int64_t h = at.h, w = at.w;
    uint32_t take = 0, take_other = 0;
#pragma unroll
    for (int k = 0; k < N; ++k) {
      take |= static_cast<uint32_t>(takes_partner(s, h, w)) << k;
      take_other |= static_cast<uint32_t>(takes_partner(so, h, w)) << k;
      if (++w == W) {
        w = 0;
        ++h;
      }
    }
    Pack<In, N> own[C], theirs[C];
    const In* src = in + (b * HW + p0) * C;
#pragma unroll
    for (int j = 0; j < C; ++j) own[j] = load_pack<In, N>(src + j * N);
    if (other >= 0 || (s.mixed && (s.blend || take != 0))) {
      const In* partner_src = in + ((other >= 0 ? other : s.partner) * HW + p0) * C;
#pragma unroll
      for (int j = 0; j < C; ++j) theirs[j] = load_pack<In, N>(partner_src + j * N);
    } else {
#pragma unroll
      for (int j = 0; j < C; ++j) theirs[j] = own[j];
    }
    write_planes(own, theirs, s, take, out + b * C * HW + p0, HW);
    if (other >= 0) write_planes(theirs, own, so, take_other, out + other * C * HW + p0, HW);
  }
};

// Any layouts, one element per thread: (b, e) with e the element's offset in out's memory order
// (of sample b, and of its partner when it leads a swapped pair).
template <typename In, typename Out>
struct MixIntoGeneralFn {
  const In* in;
  Out* out;
  IntoParams p;
  IntoGeometry g;
  Normalize n;

  FASTMIX_HD void operator()(int64_t b, int64_t e) const {
    const int64_t other = pair_partner(p, b);
    if (other == kPairFollower) return;
    const int64_t C = g.channels, HW = g.height * g.width, numel = C * HW;
    const SampleMix s = sample_mix(p, b);
    const ElementAt x = element_at(g, e);
    const int64_t at = g.hwc_in ? x.pixel * C + x.c : x.c * HW + x.pixel;
    const bool take = takes_partner(s, x.h, x.w);
    const In own = in[b * numel + at];
    if (other >= 0) {
      const SampleMix so = sample_mix(p, other);
      const In theirs = in[other * numel + at];
      out[b * numel + e] = converted<Out>(mixed_value(own, theirs, s, take), n, x.c);
      out[other * numel + e] = converted<Out>(mixed_value(theirs, own, so, takes_partner(so, x.h, x.w)), n, x.c);
      return;
    }
    const In theirs = s.mixed && (s.blend || take) ? in[s.partner * numel + at] : own;
    out[b * numel + e] = converted<Out>(mixed_value(own, theirs, s, take), n, x.c);
  }
};

// in: B samples of C*H*W elements laid out as g.hwc_in says; out: B samples in g.nhwc_out order.
template <typename In, typename Out, typename Runner>
void mix_into_launch(Runner& runner, const In* in, Out* out, const IntoParams& p, IntoGeometry g, const Normalize& n) {
  const int64_t C = g.channels, HW = g.height * g.width, numel = C * HW;
  if (p.batch == 0 || numel == 0) return;
  if (C == 1) g.hwc_in = g.nhwc_out = false;  // one channel: HWC and CHW are the same memory
  constexpr int N = kIntoPackElems<In, Out>;
  const bool aligned = is_aligned(in, N * static_cast<int64_t>(sizeof(In))) &&
                       is_aligned(out, N * static_cast<int64_t>(sizeof(Out)));
  if (g.hwc_in == g.nhwc_out && aligned && numel % N == 0) {
    runner.for_each_2d(MixIntoSameLayoutFn<In, Out, N>{in, out, p, g, n}, p.batch, numel / N);
  } else if (g.hwc_in && !g.nhwc_out && C == 3 && aligned && HW % N == 0) {
    runner.for_each_2d(MixIntoHwcToNchwFn<In, Out, N, 3>{in, out, p, g, n}, p.batch, HW / N);
  } else if (g.hwc_in && !g.nhwc_out && C == 4 && aligned && HW % N == 0) {
    runner.for_each_2d(MixIntoHwcToNchwFn<In, Out, N, 4>{in, out, p, g, n}, p.batch, HW / N);
  } else {
    runner.for_each_2d(MixIntoGeneralFn<In, Out>{in, out, p, g, n}, p.batch, numel);
  }
}

}  // namespace cuda
}  // namespace fastmix
