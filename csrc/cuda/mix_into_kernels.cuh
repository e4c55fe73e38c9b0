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
//   general       one element per thread, any combination (misaligned data, odd sizes, other C),
//                 its element types a runtime argument (one kernel for every pair of them).
//
// The general kernel splits its element's position into channel, row and column in 32-bit
// arithmetic where a sample has fewer than 2^31 elements (a 64-bit division is a long instruction
// sequence on sm_90); the packed kernels do it once per pack.
//
// mixed: a blend is x * lam + partner * (1 - lam) in float32 (products and sum rounded apart),
// a paste takes the partner's value inside the box, a mask (FMix, ClassMix) where its sample's plane
// of pixel_mask is nonzero (a runtime branch on the kind: no more instantiations), a resize
// (ResizeMix) the whole partner resized into the box (resize_value.cuh, in float32, as the
// reference stages it; such a sample is never half of a thread's pair), untouched samples keep
// their value;
// normalize is v * scale[c] + bias[c] (product and sum rounded apart) when enabled; the cast
// rounds to nearest even (uint8: then saturates). See fastmix.backends.reference.mix_into_.
#pragma once

#include <cstdint>
#include <type_traits>

#include "../mix_plan.h"
#include "cuda_math.cuh"
#include "launch.cuh"
#include "resize_value.cuh"

namespace fastmix {
namespace cuda {

struct IntoParams {
  const int64_t* partner;
  const float* lam;
  const uint8_t* kind;
  const int64_t* box;
  int64_t batch;
  PixelMask pixel_mask;  // the MASK samples' planes (width: W)
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
  bool resize, nearest;  // a mixed RESIZE sample, and whether it resizes by nearest neighbour
  int64_t partner;  // the sample itself when not mixed
  float lam, rest;
  int32_t box[4];
  const uint8_t* plane;  // a mixed MASK sample's plane of pixel_mask, else nullptr
  int64_t width;
};

FASTMIX_HDI SampleMix sample_mix(const IntoParams& p, int64_t b) {
  SampleMix s;
  const int64_t q = p.partner[b];
  const uint8_t k = p.kind[b];
  const bool valid = q >= 0 && q < p.batch && k <= kResizeNearest;
  FASTMIX_KERNEL_ASSERT(valid);
  s.mixed = valid && k != kNone && q != b;
  s.resize = s.mixed && resizes(k);
  s.nearest = k == kResizeNearest;
  s.plane = s.mixed && k == kMask ? mask_plane(p.pixel_mask, b) : nullptr;
  s.mixed = s.mixed && (k != kMask || s.plane != nullptr);  // no masks: asserted, left alone
  s.width = p.pixel_mask.width;
  s.blend = k == kBlend;
  s.partner = s.mixed ? q : b;
  s.lam = p.lam[b];
  s.rest = sub_rn(1.f, s.lam);
  for (int j = 0; j < 4; ++j) s.box[j] = clamp_box_bound(p.box[4 * b + j]);
  return s;
}

// Whether the element at (h, w) takes the partner's value: inside the box of a paste, on a nonzero
// pixel of a mask's plane.
FASTMIX_HDI bool takes_partner(const SampleMix& s, int64_t h, int64_t w) {
  if (!s.mixed || s.blend) return false;
  if (s.plane != nullptr) return mask_takes(s.plane, s.width, h, w);
  return h >= s.box[0] && h < s.box[1] && w >= s.box[2] && w < s.box[3];
}

template <typename In>
FASTMIX_HDI float mixed_value(In own, In theirs, const SampleMix& s, bool take) {
  if (s.mixed && s.blend) return blend_acc(to_acc(own), to_acc(theirs), s.lam, s.rest);
  return to_acc(take ? theirs : own);
}

// v normalised when enabled (v * scale[c] + bias[c]); converted: that, cast to Out (mix_into_cpu.cpp's
// converted).
FASTMIX_HDI float normalized(float v, const Normalize& n, int64_t c) {
  return n.scale != nullptr ? add_rn(mul_rn(v, n.scale[c]), n.bias[c]) : v;
}
template <typename Out>
FASTMIX_HDI Out converted(float v, const Normalize& n, int64_t c) {
  return from_acc<Out>(normalized(v, n, c));
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
  if (resizes(p.kind[b]) || resizes(p.kind[q])) return kAlone;  // a resize reads its partner anywhere
  return q > b ? q : kPairFollower;
}

// Element (c, h, w) of a resizing sample's output, (h, w) inside its box: its partner's input
// (`sample`, laid out as g.hwc_in says) resized into the box. Not inlined: one copy per input type
// instead of one per lane of every packed kernel (a rare path, and nvcc's time is every user's).
template <typename In>
__noinline__ FASTMIX_HD float resized_input(const In* sample, const IntoGeometry& g, const SampleMix& s, int64_t c,
                                            int64_t h, int64_t w) {
  const In* channel = sample + (g.hwc_in ? c : c * g.height * g.width);
  const ResizeGrid grid{g.height, g.width, g.hwc_in ? g.width * g.channels : g.width, g.hwc_in ? g.channels : 1};
  const auto load = [channel](int64_t offset) { return to_acc(channel[offset]); };
  return resized_acc<float>(load, grid, int64_t(s.box[1]) - s.box[0], int64_t(s.box[3]) - s.box[2], h - s.box[0],
                            w - s.box[2], s.nearest);
}

// The next element in out's memory order after (c, h, w).
FASTMIX_HDI void advance(const IntoGeometry& g, int64_t& c, int64_t& h, int64_t& w) {
  if (g.nhwc_out) {
    if (++c == g.channels) {
      c = 0;
      if (++w == g.width) {
        w = 0;
        ++h;
      }
    }
  } else if (++w == g.width) {
    w = 0;
    if (++h == g.height) {
      h = 0;
      ++c;
    }
  }
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

// In 32 bits where a sample has fewer than 2^31 elements: the general kernel's, once per element
// (the packed kernels split a position once per pack, in 64 bits, which costs them no more).
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
    const int64_t numel = g.channels * g.height * g.width;
    const int64_t e0 = v * N;
    const ElementAt at = element_at_as<uint64_t>(g, static_cast<uint64_t>(e0));  // once per pack
    const Pack<In, N> own = load_pack<In, N>(in + b * numel + e0);
    Pack<In, N> theirs = own;
    // Sample b's output, then (a pair) its partner's from the same two inputs: one copy of the
    // code, run once or twice.
#pragma unroll 1
    for (int side = 0; side < (other >= 0 ? 2 : 1); ++side) {
      const SampleMix s = sample_mix(p, side ? other : b);
      int64_t c = at.c, h = at.h, w = at.w;
      int32_t ch[N];
      uint32_t take = 0;
#pragma unroll
      for (int k = 0; k < N; ++k) {
        ch[k] = static_cast<int32_t>(c);
        take |= static_cast<uint32_t>(takes_partner(s, h, w)) << k;
        advance(g, c, h, w);
      }
      if (s.resize) {  // (never a pair) the box's lanes from the partner, resized
        const In* src = in + s.partner * numel;
        Pack<Out, N> r;
        c = at.c, h = at.h, w = at.w;
#pragma unroll
        for (int k = 0; k < N; ++k) {
          r.v[k] = converted<Out>((take >> k) & 1u ? resized_input(src, g, s, c, h, w) : to_acc(own.v[k]), n, ch[k]);
          advance(g, c, h, w);
        }
        store_pack<Out, N>(out + b * numel + e0, r);
        continue;
      }
      if (side == 0 && (other >= 0 || (s.mixed && (s.blend || take != 0))))
        theirs = load_pack<In, N>(in + (other >= 0 ? other : s.partner) * numel + e0);
      store_pack<Out, N>(out + (side ? other : b) * numel + e0,
                         mixed_pack<Out>(side ? theirs : own, side ? own : theirs, s, take, n, ch));
    }
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
    const int64_t p0 = v * N;
    const ElementAt at = element_at_as<uint64_t>(IntoGeometry{1, H, W, false, false}, static_cast<uint64_t>(p0));
    Pack<In, N> own[C], theirs[C];  // N pixels x C channels = C packs, of b and of its partner
    const In* src = in + (b * HW + p0) * C;
#pragma unroll
    for (int j = 0; j < C; ++j) own[j] = theirs[j] = load_pack<In, N>(src + j * N);
    // Sample b's planes, then (a pair) its partner's from the same inputs: one copy of the code.
#pragma unroll 1
    for (int side = 0; side < (other >= 0 ? 2 : 1); ++side) {
      const SampleMix s = sample_mix(p, side ? other : b);
      int64_t h = at.h, w = at.w;
      uint32_t take = 0;
#pragma unroll
      for (int k = 0; k < N; ++k) {
        take |= static_cast<uint32_t>(takes_partner(s, h, w)) << k;
        if (++w == W) {
          w = 0;
          ++h;
        }
      }
      if (s.resize) {  // (never a pair) the box's pixels from the partner, resized
        const In* partner_sample = in + s.partner * HW * C;
#pragma unroll
        for (int c = 0; c < C; ++c) {
          Pack<Out, N> r;
          int64_t h = at.h, w = at.w;
#pragma unroll
          for (int k = 0; k < N; ++k) {
            const int idx = k * C + c;
            r.v[k] = converted<Out>((take >> k) & 1u ? resized_input(partner_sample, g, s, c, h, w) : to_acc(own[idx / N].v[idx % N]),
                                    n, c);
            if (++w == W) {
              w = 0;
              ++h;
            }
          }
          store_pack<Out, N>(out + b * C * HW + p0 + c * HW, r);
        }
        continue;
      }
      if (side == 0 && (other >= 0 || (s.mixed && (s.blend || take != 0)))) {
        const In* partner_src = in + ((other >= 0 ? other : s.partner) * HW + p0) * C;
#pragma unroll
        for (int j = 0; j < C; ++j) theirs[j] = load_pack<In, N>(partner_src + j * N);
      }
      write_planes(own, theirs, s, take, out + (side ? other : b) * C * HW + p0, HW);
#pragma unroll
      for (int j = 0; j < C; ++j) {  // the partner's turn: the roles swap (registers, no indexing)
        const Pack<In, N> t = own[j];
        own[j] = theirs[j];
        theirs[j] = t;
      }
    }
  }
};

// The general kernel's element types, a runtime argument: one kernel for every (In, Out) pair.
// It is the fallback of odd layouts and sizes, bound by memory, so a warp-uniform switch per
// element costs it nothing measurable and saves nvcc six of its seven instantiations.
enum class IntoType : uint8_t { kUint8, kFloat32, kBFloat16, kFloat16 };

template <typename T>
constexpr IntoType into_type() {
  if constexpr (std::is_same_v<T, uint8_t>) return IntoType::kUint8;
  else if constexpr (std::is_same_v<T, float>) return IntoType::kFloat32;
  else if constexpr (std::is_same_v<T, BFloat16Bits>) return IntoType::kBFloat16;
  else {
    static_assert(std::is_same_v<T, Half16>, "mix_into's element types: uint8, float32, bfloat16, float16");
    return IntoType::kFloat16;
  }
}

// Element i of `data` (of type t) in the accumulation type, as to_acc gives it.
FASTMIX_HDI float load_acc(const void* data, int64_t i, IntoType t) {
  switch (t) {
    case IntoType::kUint8: return to_acc(static_cast<const uint8_t*>(data)[i]);
    case IntoType::kFloat32: return to_acc(static_cast<const float*>(data)[i]);
    case IntoType::kBFloat16: return to_acc(static_cast<const BFloat16Bits*>(data)[i]);
    default: return to_acc(static_cast<const Half16*>(data)[i]);
  }
}

// v cast to type t (from_acc) into element i of `data`.
FASTMIX_HDI void store_acc(void* data, int64_t i, IntoType t, float v) {
  switch (t) {
    case IntoType::kUint8: static_cast<uint8_t*>(data)[i] = from_acc<uint8_t>(v); break;
    case IntoType::kFloat32: static_cast<float*>(data)[i] = from_acc<float>(v); break;
    case IntoType::kBFloat16: static_cast<BFloat16Bits*>(data)[i] = from_acc<BFloat16Bits>(v); break;
    default: static_cast<Half16*>(data)[i] = from_acc<Half16>(v); break;
  }
}

// Any layouts, one element per thread: (b, e) with e the element's offset in out's memory order
// (of sample b, and of its partner when it leads a swapped pair). Values pass through float as in
// the typed kernels (mixed_value converts both inputs with to_acc first), so the bits are theirs.
struct MixIntoGeneralFn {
  const void* in;
  void* out;
  IntoType in_type, out_type;
  IntoParams p;
  IntoGeometry g;
  Normalize n;

  FASTMIX_HD void operator()(int64_t b, int64_t e) const {
    const int64_t other = pair_partner(p, b);
    if (other == kPairFollower) return;
    const int64_t C = g.channels, HW = g.height * g.width, numel = C * HW;
    const ElementAt x = element_at(g, e);
    const int64_t at = g.hwc_in ? x.pixel * C + x.c : x.c * HW + x.pixel;
    const float own = load_acc(in, b * numel + at, in_type);
    float theirs = own;
    // Sample b's output, then (a pair) its partner's from the same two inputs: one copy of the code.
#pragma unroll 1
    for (int side = 0; side < (other >= 0 ? 2 : 1); ++side) {
      const SampleMix s = sample_mix(p, side ? other : b);
      const bool take = takes_partner(s, x.h, x.w);
      if (s.resize) {  // (never a pair)
        // (mix_into's inputs: uint8 or float32)
        const float v = !take ? own
                        : in_type == IntoType::kUint8
                            ? resized_input(static_cast<const uint8_t*>(in) + s.partner * numel, g, s, x.c, x.h, x.w)
                            : resized_input(static_cast<const float*>(in) + s.partner * numel, g, s, x.c, x.h, x.w);
        store_acc(out, b * numel + e, out_type, normalized(v, n, x.c));
        continue;
      }
      if (side == 0 && (other >= 0 || (s.mixed && (s.blend || take))))
        theirs = load_acc(in, (other >= 0 ? other : s.partner) * numel + at, in_type);
      store_acc(out, (side ? other : b) * numel + e, out_type,
                normalized(mixed_value(side ? theirs : own, side ? own : theirs, s, take), n, x.c));
    }
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
    runner.for_each_2d(MixIntoGeneralFn{in, out, into_type<In>(), into_type<Out>(), p, g, n}, p.batch, numel);
  }
}

}  // namespace cuda
}  // namespace fastmix
