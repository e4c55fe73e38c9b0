// The CUDA in-place mixing kernel (fastmix::mix_): each thread owns a few element positions
// (the same positions in every sample) and walks the steps of one group of the plan for them.
//
// Hazards of an in-place mix only exist between the same element position of different samples,
// so a thread that owns positions [e, e + N) can apply a group of steps to them on its own: the
// cycle buffer is a register pack, and every sample is loaded at most once (the last loaded pack
// is cached: a tree's chain and a cycle read each sample once). Threads are (plan group) x
// (position pack), so a batch of swapped pairs keeps the whole GPU busy. The plan comes built on
// the host (csrc/mix_plan.h's make_device_plan): one launch, or two where long cycles were cut into
// segments whose heads the first launch saves to scratch.
//
// A MASK sample (FMix, ClassMix) is a paste whose box is the set of nonzero pixels of its plane of
// pixel_mask: lane_op reads the plane at each lane's (row, column) instead of comparing with a box,
// a runtime branch on the step's kind (the kernels' instantiations are those of blend and paste).
// A RESIZE sample (ResizeMix) is a paste whose lanes read its partner's whole original, resized
// (resize_value.cuh), from the partner's head slot: a batch with one gets mix_plan.h's copy plan,
// where every mixed step is a kApplyFromHead, so nothing else changes.
//
// Layouts: samples whose elements fill one block of memory (contiguous NCHW, channels_last,
// (B, T, C, H, W), any dense permutation) take the dense path, with 16-byte packs (8 bytes for
// uint8) where the data pointer, the batch stride and the sample size allow it; any other strided
// tensor takes the generic path (one element per thread, located by its multi-index).
//
// Torch-free: the glue (mix_cuda.cu) and the host emulation run the same code through a
// Runner (see torch_runner.cuh and tests/cuda/emulate_on_host.cu).
#pragma once

#include <cstdint>

#include "../mix_plan.h"
#include "cuda_math.cuh"
#include "launch.cuh"
#include "resize_value.cuh"

namespace fastmix {
namespace cuda {

constexpr int kMaxLayoutDims = 16;  // batch dim included; more goes through a contiguous copy
constexpr int kMaxStridedDims = 12;  // non-batch dims of size > 1 on the generic path

// Sizes and strides (in elements) of a (B, ...) tensor.
struct TensorLayout {
  int ndim;
  int64_t sizes[kMaxLayoutDims];
  int64_t strides[kMaxLayoutDims];
};

// The batch to mix in place, described for the dense path (mix_cpu.cpp's DenseLayout; numba's
// mix_numba.DenseLayout): samples that each fill one block of numel elements, batch_stride apart.
// Element e of a sample lies in image row (e / h_stride) % height and column (e / w_stride) %
// width, whatever the order of the dims in memory (a dense block is a mixed-radix number in its
// dims); the CPU's walk of memory rows (row_len, col_unit) takes only layouts with W innermost.
struct DenseLayout {
  int64_t numel;
  int64_t batch_stride;
  int64_t h_stride, height;
  int64_t w_stride, width;
};

// Anything else, for the generic path (mix_cpu.cpp's StridedLayout): the non-batch dims of size
// > 1, outermost (largest stride) first.
struct StridedLayout {
  int32_t ndim;
  int32_t h_dim, w_dim;  // which of them are the image rows / columns (-1: size 1 or absent)
  int64_t sizes[kMaxStridedDims];
  int64_t strides[kMaxStridedDims];
  int64_t numel;
  int64_t batch_stride;
};

inline bool describe_dense(const TensorLayout& x, DenseLayout* out) {
  int64_t stride[kMaxLayoutDims], size[kMaxLayoutDims];
  int n = 0;
  int64_t numel = 1;
  for (int d = 1; d < x.ndim; ++d) {
    numel *= x.sizes[d];
    if (x.sizes[d] <= 1) continue;
    int k = n++;  // insertion sort by stride
    while (k > 0 && stride[k - 1] > x.strides[d]) {
      stride[k] = stride[k - 1];
      size[k] = size[k - 1];
      --k;
    }
    stride[k] = x.strides[d];
    size[k] = x.sizes[d];
  }
  int64_t expected = 1;
  for (int k = 0; k < n; ++k) {
    if (stride[k] != expected) return false;
    expected *= size[k];
  }
  if (x.sizes[0] > 1 && x.strides[0] < numel) return false;  // samples interleave
  out->numel = numel;
  out->batch_stride = x.strides[0];
  out->h_stride = out->w_stride = 1;
  out->height = out->width = 1;
  if (x.ndim >= 3) {
    if (x.sizes[x.ndim - 2] > 1) {
      out->h_stride = x.strides[x.ndim - 2];
      out->height = x.sizes[x.ndim - 2];
    }
    if (x.sizes[x.ndim - 1] > 1) {
      out->w_stride = x.strides[x.ndim - 1];
      out->width = x.sizes[x.ndim - 1];
    }
  }
  return true;
}

inline bool describe_strided(const TensorLayout& x, StridedLayout* out) {
  StridedLayout g;
  g.ndim = 0;
  g.h_dim = g.w_dim = -1;
  g.numel = 1;
  g.batch_stride = x.strides[0];
  int source[kMaxStridedDims];
  for (int d = 1; d < x.ndim; ++d) {
    g.numel *= x.sizes[d];
    if (x.sizes[d] <= 1) continue;
    if (g.ndim == kMaxStridedDims) return false;
    int k = g.ndim++;  // insertion sort, largest stride first
    while (k > 0 && g.strides[k - 1] < x.strides[d]) {
      g.strides[k] = g.strides[k - 1];
      g.sizes[k] = g.sizes[k - 1];
      source[k] = source[k - 1];
      --k;
    }
    g.strides[k] = x.strides[d];
    g.sizes[k] = x.sizes[d];
    source[k] = d;
  }
  for (int k = 0; k < g.ndim; ++k) {
    if (x.ndim >= 3 && source[k] == x.ndim - 2) g.h_dim = k;
    if (x.ndim >= 3 && source[k] == x.ndim - 1) g.w_dim = k;
  }
  *out = g;
  return true;
}

// Row / column of elements e, e + 1, ..., e + N - 1 of a dense sample: two divisions, then steps.
template <typename I, int N>
FASTMIX_HDI void dense_coords_as(const DenseLayout& g, int64_t e64, int32_t* hh, int32_t* ww) {
  const I e = static_cast<I>(e64), hs = static_cast<I>(g.h_stride), ws = static_cast<I>(g.w_stride);
  const I height = static_cast<I>(g.height), width = static_cast<I>(g.width);
  const I qh = e / hs, qw = e / ws;
  I rh = e - qh * hs, rw = e - qw * ws;
  I h = qh % height, w = qw % width;
#pragma unroll
  for (int k = 0; k < N; ++k) {
    hh[k] = static_cast<int32_t>(h);
    ww[k] = static_cast<int32_t>(w);
    if (++rh == hs) {
      rh = 0;
      if (++h == height) h = 0;
    }
    if (++rw == ws) {
      rw = 0;
      if (++w == width) w = 0;
    }
  }
}

template <int N>
FASTMIX_HDI void dense_coords(const DenseLayout& g, int64_t e, int32_t* hh, int32_t* ww) {
  if (g.numel <= INT32_MAX) dense_coords_as<uint32_t, N>(g, e, hh, ww);
  else dense_coords_as<uint64_t, N>(g, e, hh, ww);
}

// Offset of element p of a strided sample (row-major over the layout's dims) and its row/column:
// one division per dim, in 32 bits where the sample has fewer than 2^31 elements (a 64-bit
// division is a long instruction sequence on the GPU), the offset in 64.
template <typename I>
FASTMIX_HDI int64_t strided_coords_as(const StridedLayout& g, I p, int32_t* h, int32_t* w) {
  int64_t off = 0;
  *h = 0;
  *w = 0;
  for (int d = g.ndim - 1; d >= 0; --d) {
    const I size = static_cast<I>(g.sizes[d]);
    const I q = p / size;
    const I idx = p - q * size;
    p = q;
    off += static_cast<int64_t>(idx) * g.strides[d];
    if (d == g.h_dim) *h = static_cast<int32_t>(idx);
    if (d == g.w_dim) *w = static_cast<int32_t>(idx);
  }
  return off;
}

FASTMIX_HDI int64_t strided_coords(const StridedLayout& g, int64_t p, int32_t* h, int32_t* w) {
  if (g.numel <= INT32_MAX) return strided_coords_as<uint32_t>(g, static_cast<uint32_t>(p), h, w);
  return strided_coords_as<uint64_t>(g, static_cast<uint64_t>(p), h, w);
}

// What one sample of a step does to this thread's N elements.
struct LaneOp {
  bool changes;    // anything is written
  bool needs_own;  // some lane keeps or blends its own value
  bool blend;
  uint32_t take;   // paste, mask: the lanes that take the partner's value
};

// Sample i's lanes: a blend, a paste of its box, or (kMask) a paste of its plane's nonzero pixels.
template <int N>
FASTMIX_HDI LaneOp lane_op(uint8_t kind, const int32_t* box, const PixelMask& mask, int32_t i, const int32_t* hh,
                           const int32_t* ww) {
  constexpr uint32_t kAll = N >= 32 ? 0xffffffffu : ((1u << N) - 1u);
  LaneOp o;
  if (kind == kBlend) {
    o.changes = o.needs_own = o.blend = true;
    o.take = 0;
    return o;
  }
  uint32_t take = 0;
  if (kind == kMask) {
    const uint8_t* plane = mask_plane(mask, i);
#pragma unroll
    for (int k = 0; k < N; ++k) take |= static_cast<uint32_t>(mask_takes(plane, mask.width, hh[k], ww[k])) << k;
  } else {
#pragma unroll
    for (int k = 0; k < N; ++k)
      take |= static_cast<uint32_t>(hh[k] >= box[0] && hh[k] < box[1] && ww[k] >= box[2] && ww[k] < box[3]) << k;
  }
  o.blend = false;
  o.take = take;
  o.changes = take != 0;
  o.needs_own = take != kAll;
  return o;
}

template <typename T, int N>
FASTMIX_HDI Pack<T, N> mix_lanes(const Pack<T, N>& own, const Pack<T, N>& theirs, const LaneOp& o, float lam) {
  using Acc = typename AccType<T>::type;
  Pack<T, N> r;
  if (o.blend) {
    const Acc l = static_cast<Acc>(lam);
    const Acc rest = sub_rn(Acc(1), l);
#pragma unroll
    for (int k = 0; k < N; ++k) r.v[k] = blend_one(own.v[k], theirs.v[k], l, rest);
  } else {
#pragma unroll
    for (int k = 0; k < N; ++k) r.v[k] = ((o.take >> k) & 1u) ? theirs.v[k] : own.v[k];
  }
  return r;
}

// The plan as the kernels read it: the sections of its device buffer, and its shape as the host
// read it (the header's fields: plan_shape of the op).
struct PlanView {
  const int32_t* header;
  const PlanGroup* groups;
  const DeviceStep* steps;
  DevicePlanShape shape;
};

inline PlanView plan_view(const uint8_t* bytes, const DevicePlanShape& shape) {
  return {reinterpret_cast<const int32_t*>(bytes), reinterpret_cast<const PlanGroup*>(bytes + kPlanHeaderBytes),
          reinterpret_cast<const DeviceStep*>(bytes + plan_steps_offset(shape)), shape};
}

// Whether the buffer's header holds the shape the host passed.
FASTMIX_HDI bool header_matches(const PlanView& p) {
  bool same = p.header[0] == kPlanMagic;
  for (int k = 0; k < kPlanShapeFields; ++k) same = same && p.header[1 + k] == plan_shape_field(p.shape, k);
  return same;
}

// Whether a step names samples of the batch (and head slots of the plan) only.
FASTMIX_HDI bool step_in_bounds(const DeviceStep& s, const DevicePlanShape& shape) {
  const bool a = s.a >= 0 && s.a < shape.batch;
  switch (static_cast<StepOp>(s.op)) {
    case StepOp::kSave:
    case StepOp::kApplyFromBuffer:
      return a;
    case StepOp::kApply:
    case StepOp::kPair:
      return a && s.b >= 0 && s.b < shape.batch;
    case StepOp::kSaveHead:
    case StepOp::kApplyFromHead:
      return a && s.b >= 0 && s.b < shape.head_slots;
    default:
      return false;
  }
}

// Where a resize step reads its partner's original from its head slot, whole: the slots' origin
// (slot 0, position 0; slot h at h * numel), this thread's first position (lane k's is position +
// k), and the steps of a row and a column in position space (a dense sample's strides; a strided
// sample's positions are row-major over its dims), with the image's (H, W).
template <typename T>
struct HeadReads {
  const T* heads;
  int64_t numel, position;
  int64_t row_step, col_step, height, width;
};

// Position `position` (row h, column w, inside the box) of a resize step's sample a: its partner's
// original (head slot s.b) resized into a's box. Not inlined: one copy per element type instead of
// one per lane of every kernel (nvcc's time is every user's).
template <typename T>
__noinline__ FASTMIX_HD T resized_lane(const HeadReads<T>& r, const DeviceStep& s, int64_t position, int32_t h,
                                       int32_t w) {
  using Acc = typename AccType<T>::type;
  const T* channel = r.heads + static_cast<int64_t>(s.b) * r.numel + (position - h * r.row_step - w * r.col_step);
  const ResizeGrid grid{r.height, r.width, r.row_step, r.col_step};
  const auto load = [channel](int64_t offset) { return to_acc(channel[offset]); };
  return from_acc<T>(resized_acc<Acc>(load, grid, int64_t(s.box_a[1]) - s.box_a[0], int64_t(s.box_a[3]) - s.box_a[2],
                                      h - s.box_a[0], w - s.box_a[2], s.kind_a == kResizeNearest));
}

// The lanes of `take` of a resize step's sample a (resized_lane); the other lanes are not read.
template <typename T, int N>
FASTMIX_HDI Pack<T, N> resized_pack(const HeadReads<T>& r, const DeviceStep& s, uint32_t take, const int32_t* hh,
                                    const int32_t* ww) {
  Pack<T, N> out{};
#pragma unroll
  for (int k = 0; k < N; ++k)
    if ((take >> k) & 1u) out.v[k] = resized_lane<T>(r, s, r.position + k, hh[k], ww[k]);
  return out;
}

// Applies steps [0, len) to the N elements at `base` (sample 0's address of them) of every sample;
// head slot h of them is at heads + h * head_stride; their rows and columns are hh, ww; a resize
// step reads its partner's slot through `reads`.
template <typename T, int N>
FASTMIX_HD void walk_plan(T* base, int64_t batch_stride, T* heads, int64_t head_stride, const DeviceStep* steps,
                          int32_t len, const DevicePlanShape& shape, const PixelMask& mask, const int32_t* hh,
                          const int32_t* ww, const HeadReads<T>& reads) {
  using P = Pack<T, N>;
  P buffer{}, cache{};
  int32_t cached = -1;  // the sample whose current elements `cache` holds
  auto at = [&](int32_t i) { return base + static_cast<int64_t>(i) * batch_stride; };
  auto head = [&](int32_t h) { return heads + static_cast<int64_t>(h) * head_stride; };
  auto get = [&](int32_t i) -> P {
    if (i != cached) {
      cache = load_pack<T, N>(at(i));
      cached = i;
    }
    return cache;
  };
  auto put = [&](int32_t i, const P& v) {
    store_pack<T, N>(at(i), v);
    if (i == cached) cache = v;
  };
  for (int32_t t = 0; t < len; ++t) {
    const DeviceStep s = steps[t];
    const StepOp op = static_cast<StepOp>(s.op);
    // A resize reads its partner's original anywhere: only from a head slot (the copy plan's steps).
    const bool resize_a = resizes(s.kind_a) && op != StepOp::kSave && op != StepOp::kSaveHead;
    const bool valid = step_in_bounds(s, shape) && (!resize_a || (op == StepOp::kApplyFromHead && reads.heads)) &&
                       !(op == StepOp::kPair && resizes(s.kind_b));
    FASTMIX_KERNEL_ASSERT(valid);
    if (!valid) continue;
    if (op == StepOp::kSave) {
      buffer = get(s.a);
      continue;
    }
    if (op == StepOp::kSaveHead) {
      store_pack<T, N>(head(s.b), get(s.a));
      continue;
    }
    // kApply, kApplyFromBuffer, kApplyFromHead: sample a from itself and its partner's original;
    // kPair: a and b, both from the originals, each read and written once.
    const bool pair = op == StepOp::kPair;
    const LaneOp oa = lane_op<N>(s.kind_a, s.box_a, mask, s.a, hh, ww);
    LaneOp ob{false, false, false, 0u};
    if (pair) ob = lane_op<N>(s.kind_b, s.box_b, mask, s.b, hh, ww);
    if (!oa.changes && !ob.changes) continue;
    P va{}, vb{};
    if ((oa.changes && oa.needs_own) || ob.changes) va = get(s.a);  // before b: the cache may hold a
    if (pair) {
      if (oa.changes || (ob.changes && ob.needs_own)) vb = get(s.b);
    } else {
      vb = op == StepOp::kApply ? get(s.b) : op == StepOp::kApplyFromBuffer ? buffer
           : resize_a ? resized_pack<T, N>(reads, s, oa.take, hh, ww) : load_pack<T, N>(head(s.b));
    }
    // One write, or a pair's two (one copy of the blend code: most of the kernel).
#pragma unroll 1
    for (int side = 0; side < (pair ? 2 : 1); ++side) {
      const LaneOp o = side ? ob : oa;
      if (o.changes) put(side ? s.b : s.a, mix_lanes<T, N>(side ? vb : va, side ? va : vb, o, side ? s.lam_b : s.lam_a));
    }
  }
}

// One thread: group first_group + g of the plan, position pack v.
template <typename T, int N, bool kDense>
struct MixInplaceFn {
  T* data;
  DenseLayout dense;
  StridedLayout strided;
  PixelMask mask;
  T* heads;  // head_slots x numel elements, in position order (nullptr: no head slots)
  PlanView plan;
  int64_t first_group;  // this launch runs groups [first_group, first_group + ny)
  HeadReads<T> reads;   // its position unset: each thread's own

  FASTMIX_HD void operator()(int64_t g, int64_t v) const {
    if (g == 0 && v == 0 && first_group == 0) FASTMIX_KERNEL_ASSERT(header_matches(plan));
    const PlanGroup group = plan.groups[first_group + g];
    const bool valid = group.start >= 0 && group.len >= 0 && group.start + int64_t(group.len) <= plan.shape.steps;
    FASTMIX_KERNEL_ASSERT(valid);
    if (!valid || group.len == 0) return;
    int32_t hh[N], ww[N];
    int64_t offset, position, batch_stride, numel;
    if constexpr (kDense) {
      offset = position = v * N;
      batch_stride = dense.batch_stride;
      numel = dense.numel;
      if (plan.shape.paste != 0) {
        dense_coords<N>(dense, offset, hh, ww);
      } else {
#pragma unroll
        for (int k = 0; k < N; ++k) hh[k] = ww[k] = 0;
      }
    } else {
      offset = strided_coords(strided, v, &hh[0], &ww[0]);
      position = v;
      batch_stride = strided.batch_stride;
      numel = strided.numel;
    }
    HeadReads<T> at = reads;
    at.position = position;
    walk_plan<T, N>(data + offset, batch_stride, heads ? heads + position : nullptr, numel, plan.steps + group.start,
                    group.len, plan.shape, mask, hh, ww, at);
  }
};

// 16 bytes, but at most 8 elements: 16 uint8 lanes per thread (their blends, their coordinates)
// take ~140 registers, which would leave too few threads per SM to keep memory busy.
template <typename T>
constexpr int kPackElems = 16 / static_cast<int>(sizeof(T)) < 8 ? 16 / static_cast<int>(sizeof(T)) : 8;

// Mixes the batch at `data` (laid out as `layout`, no internal overlap, numel > 0, layout.sizes[0]
// == plan.shape.batch) in place as `plan` says: its first launch, then its second (if any), with
// plan.shape.head_slots samples of scratch from the runner; `mask` the MASK samples' planes (width:
// the layout's last dim). Returns false, having launched nothing, for layouts it does not take (too
// many dims): the caller mixes a contiguous copy instead.
template <typename T, typename Runner>
bool mix_inplace(Runner& runner, T* data, const TensorLayout& layout, const PlanView& plan, const PixelMask& mask) {
  DenseLayout dense{};
  StridedLayout strided{};
  const bool is_dense = describe_dense(layout, &dense);
  if (!is_dense && !describe_strided(layout, &strided)) return false;
  constexpr int kVec = kPackElems<T>;
  const bool vector = is_dense && dense.numel % kVec == 0 && dense.batch_stride % kVec == 0 &&
                      is_aligned(data, kVec * static_cast<int64_t>(sizeof(T)));
  const int64_t numel = is_dense ? dense.numel : strided.numel;
  const int64_t positions = vector ? numel / kVec : numel;
  T* heads = nullptr;
  if (plan.shape.head_slots > 0)
    heads = reinterpret_cast<T*>(runner.workspace(static_cast<size_t>(plan.shape.head_slots * numel) * sizeof(T)));
  // A resize's rows and columns in position space: a dense sample's strides, else the row-major
  // steps of the strided dims.
  HeadReads<T> reads{heads, numel, 0, dense.h_stride, dense.w_stride, 1, 1};
  if (layout.ndim >= 3) reads.height = layout.sizes[layout.ndim - 2], reads.width = layout.sizes[layout.ndim - 1];
  if (!is_dense) {
    reads.row_step = reads.col_step = 0;
    for (int64_t d = strided.ndim - 1, inner = 1; d >= 0; inner *= strided.sizes[d--]) {
      if (d == strided.h_dim) reads.row_step = inner;
      if (d == strided.w_dim) reads.col_step = inner;
    }
  }
  for (int launch = 0; launch < 2; ++launch) {
    const int64_t first = launch == 0 ? 0 : plan.shape.first_groups;
    const int64_t groups = launch == 0 ? plan.shape.first_groups : plan.shape.second_groups;
    if (vector) {
      runner.for_each_2d(MixInplaceFn<T, kVec, true>{data, dense, strided, mask, heads, plan, first, reads}, groups,
                         positions);
    } else if (is_dense) {
      runner.for_each_2d(MixInplaceFn<T, 1, true>{data, dense, strided, mask, heads, plan, first, reads}, groups,
                         positions);
    } else {
      runner.for_each_2d(MixInplaceFn<T, 1, false>{data, dense, strided, mask, heads, plan, first, reads}, groups,
                         positions);
    }
  }
  return true;
}

// The plan of a raw call inside CUDA graph capture, where params on the device cannot be read on
// the host: mix_plan.h's copy plan, which needs no order, so the device builds it (one thread per
// sample) at the cost of a batch of scratch and one more pass than a host-built plan.
// Thread i writes sample i's two groups and steps (thread 0 the header too) into `bytes`
// (plan_bytes(shape) of them, shape = copy_plan_shape(batch)).
struct CopyPlanFn {
  const int64_t* partner;
  const float* lam;
  const uint8_t* kind;
  const int64_t* box;
  uint8_t* bytes;
  DevicePlanShape shape;

  FASTMIX_HD void operator()(int64_t, int64_t i) const {
    if (i == 0) write_plan_header(reinterpret_cast<int32_t*>(bytes), shape);
    bool valid = true;
    write_copy_plan_sample(i, partner, lam, kind, box, shape.batch,
                           reinterpret_cast<PlanGroup*>(bytes + kPlanHeaderBytes),
                           reinterpret_cast<DeviceStep*>(bytes + plan_steps_offset(shape)), &valid);
    FASTMIX_KERNEL_ASSERT(valid);
  }
};

}  // namespace cuda
}  // namespace fastmix
