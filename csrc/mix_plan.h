// The order in which a MixParams is applied in place, built on the host for every backend.
//
// Sample i is rewritten from itself and sample partner[i]. Doing that in place is safe as long as
// every sample is read as a partner before it is overwritten. The partner map is a functional graph:
// trees (samples nobody else reads, written first, leaves inwards) hanging off cycles (a flip pairs
// samples into 2-cycles, a roll is one B-cycle). A cycle is broken by saving its first sample to a
// small per-chunk buffer. The plan is O(B) and independent of the data, so every element position
// can walk it on its own: that is what makes the CPU chunks and the CUDA threads independent.
//
// make_inplace_plan is the plan the CPU kernels walk (csrc/cpu/mix_cpu.cpp; numba takes the same
// steps from torch.ops.fastmix.inplace_plan). make_device_plan regroups those steps for the CUDA
// kernels (csrc/cuda/mix_kernels.cuh) and serialises them into one byte buffer, which
// fastmix.Mixup builds beside the params and copies to the GPU with them.
#pragma once

#include <cstddef>
#include <climits>
#include <cstdint>
#include <cstring>
#include <vector>

#ifdef __CUDACC__
#define FASTMIX_KIND_HD __host__ __device__
#else
#define FASTMIX_KIND_HD
#endif

namespace fastmix {

// Per-sample kind of mixing, as in fastmix.MixKind.
// kMask (FMix, ClassMix): the pixels where the sample's plane of pixel_mask is nonzero come from
// the partner; like a paste it is local to a position, so the plan below serves it unchanged.
// kResize, kResizeNearest (ResizeMix): the whole partner, resized to the box (resize_taps.h), is
// pasted into it. A resize reads its partner anywhere, not at the positions it writes, so on the
// CPU its steps run a sample at a time (the plan's order is the same; only the chunking differs),
// and on the GPU every mixed sample reads its partner's original from scratch (make_copy_plan).
enum MixKind : uint8_t { kNone = 0, kBlend = 1, kPaste = 2, kMask = 3, kResize = 4, kResizeNearest = 5 };

// Whether a kind writes inside MixParams.box (a paste, or a resized partner).
FASTMIX_KIND_HD inline bool writes_box(uint8_t kind) { return kind == kPaste || kind == kResize || kind == kResizeNearest; }
FASTMIX_KIND_HD inline bool resizes(uint8_t kind) { return kind == kResize || kind == kResizeNearest; }

enum class StepOp : uint8_t {
  kSave,             // buffer <- x[a]
  kApply,            // x[a] <- mix(x[a], x[b]); x[b] is still original
  kApplyFromBuffer,  // x[a] <- mix(x[a], buffer), the saved original of its partner
  kPair,             // x[a] <- mix(x[a], x[b]) and x[b] <- mix(x[b], x[a]), both from originals
  // Only in the device plan (make_device_plan), where head slot b holds one sample's original:
  kSaveHead,         // head[b] <- x[a] (first launch)
  kApplyFromHead,    // x[a] <- mix(x[a], head[b]) (second launch)
};

struct PlanStep {
  StepOp op;
  int64_t a;
  int64_t b;
};

// Whether sample i is changed by the mix: its kind is not kNone and its partner is another sample
// (fastmix.backends.mix_kind.mixed, for the whole batch).
inline bool mixed(const int64_t* partner, const uint8_t* kind, int64_t i) {
  return kind[i] != kNone && partner[i] != i;
}

// partner values must already be checked to lie in [0, batch).
inline std::vector<PlanStep> make_inplace_plan(const int64_t* partner, const uint8_t* kind,
                                               int64_t batch) {
  std::vector<PlanStep> plan;
  plan.reserve(static_cast<size_t>(batch) + 8);
  // readers[j]: mixed samples that still have to read sample j before j may be overwritten.
  std::vector<int64_t> readers(batch, 0);
  for (int64_t i = 0; i < batch; ++i)
    if (mixed(partner, kind, i)) ++readers[partner[i]];

  std::vector<char> done(batch, 0);
  std::vector<int64_t> ready;
  for (int64_t i = 0; i < batch; ++i) {
    if (!mixed(partner, kind, i)) done[i] = 1;
    else if (readers[i] == 0) ready.push_back(i);
  }
  // Trees: write a sample once nobody needs its original any more.
  while (!ready.empty()) {
    const int64_t i = ready.back();
    ready.pop_back();
    plan.push_back({StepOp::kApply, i, partner[i]});
    done[i] = 1;
    const int64_t j = partner[i];
    if (!done[j] && --readers[j] == 0) ready.push_back(j);
  }
  // What is left are disjoint cycles of mixed samples. Swapped pairs (a flip) are one fused
  // step that reads both samples once; longer cycles go through the buffer.
  for (int64_t start = 0; start < batch; ++start) {
    if (done[start]) continue;
    const int64_t next = partner[start];
    if (partner[next] == start) {
      plan.push_back({StepOp::kPair, start, next});
      done[start] = done[next] = 1;
      continue;
    }
    plan.push_back({StepOp::kSave, start, -1});
    int64_t i = start;
    while (true) {
      done[i] = 1;
      const int64_t j = partner[i];
      if (j == start) {
        plan.push_back({StepOp::kApplyFromBuffer, i, -1});
        break;
      }
      plan.push_back({StepOp::kApply, i, j});
      i = j;
    }
  }
  return plan;
}

// -- the device plan -----------------------------------------------------------------------------
//
// The CUDA kernels run one thread per (group of steps, element position), each walking its group's
// steps for its positions. make_device_plan builds the groups on the host from make_inplace_plan's
// steps: they are partitioned by connected component of the partner graph (a stable partition:
// every dependency lies inside a component, so each component's steps keep their order), and each
// component is one group. A component of more than `segment` steps (a roll, a long cycle of a
// random permutation, a chain) is cut into chunks of at most `segment` consecutive steps that run in
// parallel: a sample that one chunk writes and another reads is first saved to a head slot (for a
// cycle, the first sample of each segment: its head), and the reader takes it from there
// (kApplyFromHead; a cycle's last segment reads the slot of the cycle's first sample, instead of
// the buffer). So the plan runs in up to two launches:
//
//   first:  every group that reads no head slot and writes no saved sample (whole components, and
//           chunks that only read samples nobody writes, as a star's), and one group per head slot
//           that copies its sample there (kSaveHead) while it is still original;
//   second: the chunks that read a head slot or write a saved sample.
//
// No thread walks more than segment + 1 steps (a chunk that keeps its cycle's kSave), and there is no
// second launch when no component needs cutting. The kernel needs one sample of scratch per head
// slot: ceil(B / segment) for a roll of B samples, none for a flip.
//
// The plan travels as one byte buffer (64-byte aligned sections, as the device reads them):
//   header  kPlanHeaderBytes: int32 kPlanMagic, then the kPlanShapeFields of DevicePlanShape as
//           int32, zeros after;
//   groups  (first_groups + second_groups) PlanGroup {int32 start, int32 len}: the first launch's
//           groups, then the second's, each a range of steps;
//   steps   steps x DeviceStep (64 bytes: the samples, op, kinds, lams and boxes a step reads).
// The host reads the shape before it copies the buffer, and the CUDA op takes it as plan_shape:
// a kernel cannot size its launch from device memory without a sync. The kernel asserts that the
// header says the same.

// device_step and plan_steps_offset also run on the GPU, for the one plan the device builds: a raw
// call inside CUDA graph capture (csrc/cuda/mix_kernels.cuh, CopyPlanFn).
#ifdef __CUDACC__
#define FASTMIX_PLAN_HD __host__ __device__
#else
#define FASTMIX_PLAN_HD
#endif

constexpr int64_t kSegmentSteps = 32;
constexpr int32_t kPlanMagic = 0x4c504d46;  // "FMPL"
constexpr int kPlanShapeFields = 6;
constexpr int64_t kPlanHeaderBytes = 64;
constexpr int64_t kMaxBatch = int64_t(1) << 30;  // samples and steps are int32 on the device

// The header's fields, in order: plan_shape of fastmix::mix_.
struct DevicePlanShape {
  int64_t batch;          // B, the params' batch size
  int64_t first_groups;   // groups of the first launch
  int64_t second_groups;  // groups of the second launch (0: no second launch)
  int64_t head_slots;     // samples of scratch the kernel needs
  int64_t steps;
  int64_t paste;  // 1 when some mixed sample pastes or masks: the kernel then needs rows and columns
};

struct PlanGroup {
  int32_t start, len;  // steps[start, start + len)
};

// One step of the device plan, with what the mixing kernel needs of its samples.
struct alignas(16) DeviceStep {
  int32_t a, b;  // samples; b is a head slot for kSaveHead / kApplyFromHead, -1 where unused
  uint8_t op, kind_a, kind_b, pad;
  float lam_a, lam_b;
  int32_t box_a[4], box_b[4];  // y0, y1, x0, x1, clamped to [0, 2^31 - 1]
};
static_assert(sizeof(DeviceStep) == 64, "the kernel reads one 64-byte record per step");
static_assert(sizeof(PlanGroup) == 8, "a group is two int32");

// Field k of the header, in plan_shape's order.
FASTMIX_PLAN_HD inline int64_t plan_shape_field(const DevicePlanShape& s, int k) {
  switch (k) {
    case 0: return s.batch;
    case 1: return s.first_groups;
    case 2: return s.second_groups;
    case 3: return s.head_slots;
    case 4: return s.steps;
    default: return s.paste;
  }
}

// A plan's header (kPlanHeaderBytes): kPlanMagic, the shape's fields as int32, zeros after. The one
// writer, on the host (make_device_plan's buffer) and on the device (CopyPlanFn).
FASTMIX_PLAN_HD inline void write_plan_header(int32_t* header, const DevicePlanShape& s) {
  header[0] = kPlanMagic;
  for (int k = 0; k < kPlanShapeFields; ++k) header[1 + k] = static_cast<int32_t>(plan_shape_field(s, k));
  for (int k = 1 + kPlanShapeFields; k < kPlanHeaderBytes / 4; ++k) header[k] = 0;
}

FASTMIX_PLAN_HD inline int64_t plan_steps_offset(const DevicePlanShape& s) {
  return kPlanHeaderBytes + (8 * (s.first_groups + s.second_groups) + 63) / 64 * 64;
}
FASTMIX_PLAN_HD inline int64_t plan_bytes(const DevicePlanShape& s) {
  return plan_steps_offset(s) + static_cast<int64_t>(sizeof(DeviceStep)) * s.steps;
}

// Box bounds as int32: any h, w of a real image lies in [0, 2^31 - 1), so clamping a bound into
// [0, 2^31 - 1] changes no comparison h >= y0, h < y1.
FASTMIX_PLAN_HD inline int32_t clamp_box_bound(int64_t v) {
  return static_cast<int32_t>(v < 0 ? 0 : (v > INT32_MAX ? INT32_MAX : v));
}

FASTMIX_PLAN_HD inline DeviceStep device_step(StepOp op, int64_t a, int64_t b, const float* lam, const uint8_t* kind,
                                              const int64_t* box) {
  DeviceStep s{};
  s.a = static_cast<int32_t>(a);
  s.b = static_cast<int32_t>(b);
  s.op = static_cast<uint8_t>(op);
  s.kind_a = kind[a];
  s.lam_a = lam[a];
  for (int k = 0; k < 4; ++k) s.box_a[k] = clamp_box_bound(box[4 * a + k]);
  if (op == StepOp::kPair) {
    s.kind_b = kind[b];
    s.lam_b = lam[b];
    for (int k = 0; k < 4; ++k) s.box_b[k] = clamp_box_bound(box[4 * b + k]);
  } else {
    s.kind_b = kNone;
    s.lam_b = 1.f;
  }
  return s;
}

// A plan and its shape, as make_device_plan builds it on the host.
struct DevicePlan {
  DevicePlanShape shape{};
  std::vector<PlanGroup> groups;  // the first launch's, then the second's
  std::vector<DeviceStep> steps;

  int64_t bytes() const { return plan_bytes(shape); }
  // The buffer, bytes() of them.
  void write(uint8_t* out) const {
    std::memset(out, 0, static_cast<size_t>(bytes()));
    int32_t header[kPlanHeaderBytes / 4];
    write_plan_header(header, shape);
    std::memcpy(out, header, sizeof header);
    if (!groups.empty()) std::memcpy(out + kPlanHeaderBytes, groups.data(), groups.size() * sizeof(PlanGroup));
    if (!steps.empty()) std::memcpy(out + plan_steps_offset(shape), steps.data(), steps.size() * sizeof(DeviceStep));
  }
};

// The shape a plan buffer's header holds (the host reads it so to size the launches: plan_shape).
inline DevicePlanShape plan_shape_of(const uint8_t* buffer) {
  int32_t header[1 + kPlanShapeFields];
  std::memcpy(header, buffer, sizeof header);
  return {header[1], header[2], header[3], header[4], header[5], header[6]};
}

// -- the copy plan ----------------------------------------------------------------------------
//
// The one plan that needs no order: every sample copied to its own head slot (the first launch),
// then every mixed sample mixed from its partner's slot (the second), at the cost of a batch of
// scratch and one pass more. The device builds it for a raw call inside CUDA graph capture, where
// the params cannot be read on the host (mix_kernels.cuh's CopyPlanFn), and make_device_plan
// builds it for a batch with a mixed resize, which reads its partner's original at any position:
// a slot holds it whole while the partner is written.
FASTMIX_PLAN_HD inline DevicePlanShape copy_plan_shape(int64_t batch) { return {batch, batch, batch, batch, 2 * batch, 1}; }

// Sample i's two groups and steps of the copy plan, at `groups` and `steps` (the plan buffer's
// sections). An invalid partner or kind (the device's params are not checked) leaves i alone.
FASTMIX_PLAN_HD inline void write_copy_plan_sample(int64_t i, const int64_t* partner, const float* lam,
                                                   const uint8_t* kind, const int64_t* box, int64_t batch,
                                                   PlanGroup* groups, DeviceStep* steps, bool* valid) {
  const int64_t p = partner[i];
  const uint8_t k = kind[i];
  *valid = p >= 0 && p < batch && k <= kResizeNearest;
  const bool is_mixed = *valid && k != kNone && p != i;
  groups[i] = {static_cast<int32_t>(i), 1};
  steps[i] = device_step(StepOp::kSaveHead, i, i, lam, kind, box);
  groups[batch + i] = {static_cast<int32_t>(batch + i), is_mixed ? 1 : 0};
  steps[batch + i] = device_step(StepOp::kApplyFromHead, i, is_mixed ? p : 0, lam, kind, box);
}

// The copy plan of checked params, on the host.
inline DevicePlan make_copy_plan(const int64_t* partner, const float* lam, const uint8_t* kind, const int64_t* box,
                                 int64_t batch) {
  DevicePlan out;
  out.shape = copy_plan_shape(batch);
  out.groups.resize(static_cast<size_t>(2 * batch));
  out.steps.resize(static_cast<size_t>(2 * batch));
  bool valid = true;
  for (int64_t i = 0; i < batch; ++i)
    write_copy_plan_sample(i, partner, lam, kind, box, batch, out.groups.data(), out.steps.data(), &valid);
  return out;
}

// The device plan of checked params (partner in [0, batch), kind at most kResizeNearest, batch at
// most kMaxBatch); `segment` >= 1 (tests cut at other lengths than kSegmentSteps). A batch with a
// mixed resize gets the copy plan.
inline DevicePlan make_device_plan(const int64_t* partner, const float* lam, const uint8_t* kind, const int64_t* box,
                                   int64_t batch, int64_t segment = kSegmentSteps) {
  for (int64_t i = 0; i < batch; ++i)
    if (resizes(kind[i]) && mixed(partner, kind, i)) return make_copy_plan(partner, lam, kind, box, batch);
  const std::vector<PlanStep> plan = make_inplace_plan(partner, kind, batch);
  const int64_t n = static_cast<int64_t>(plan.size());
  DevicePlan out;
  out.shape.batch = batch;
  for (int64_t i = 0; i < batch; ++i) out.shape.paste |= mixed(partner, kind, i) && (writes_box(kind[i]) || kind[i] == kMask);

  // The component of every step, walking the plan backwards: a step's partner is written later in
  // the plan (or never), so it is numbered already, or starts a component (nobody writes it); a
  // cycle's last step (kApplyFromBuffer) or a pair starts one. Numbered again in plan order.
  std::vector<int32_t> component(static_cast<size_t>(batch), -1), step_component(static_cast<size_t>(n));
  int32_t components = 0;
  for (int64_t t = n - 1; t >= 0; --t) {
    const PlanStep& s = plan[t];
    if (s.op == StepOp::kPair) {
      component[s.a] = component[s.b] = components++;
    } else if (s.op == StepOp::kApplyFromBuffer) {
      component[s.a] = components++;
    } else if (s.op == StepOp::kApply) {
      if (component[s.b] < 0) component[s.b] = components++;
      component[s.a] = component[s.b];
    }  // kSave: its sample's kApply comes after it, so it is numbered
    step_component[t] = component[s.a];
  }
  std::vector<int32_t> rank(static_cast<size_t>(components), -1);
  int32_t ranked = 0;
  for (int64_t t = 0; t < n; ++t)
    if (rank[step_component[t]] < 0) rank[step_component[t]] = ranked++;
  std::vector<int64_t> first(static_cast<size_t>(ranked) + 1, 0);  // component r: order[first[r], first[r + 1])
  for (int64_t t = 0; t < n; ++t) ++first[rank[step_component[t]] + 1];
  for (int32_t r = 0; r < ranked; ++r) first[r + 1] += first[r];
  std::vector<int64_t> order(static_cast<size_t>(n)), cursor(first.begin(), first.end() - 1);
  for (int64_t t = 0; t < n; ++t) order[cursor[rank[step_component[t]]]++] = t;

  std::vector<PlanGroup> launch_groups[2];
  std::vector<DeviceStep> launch_steps[2];
  auto emit = [&](int launch, const DeviceStep* steps, int64_t len) {
    launch_groups[launch].push_back({static_cast<int32_t>(launch_steps[launch].size()), static_cast<int32_t>(len)});
    launch_steps[launch].insert(launch_steps[launch].end(), steps, steps + len);
  };
  auto step_of = [&](const PlanStep& s) { return device_step(s.op, s.a, s.b, lam, kind, box); };
  std::vector<int32_t> writer_chunk(static_cast<size_t>(batch), -1);  // the chunk that writes a sample
  std::vector<int32_t> slot_of(static_cast<size_t>(batch), -1);
  std::vector<int64_t> slot_sample;
  auto slot = [&](int64_t sample) {
    if (slot_of[sample] < 0) {
      slot_of[sample] = static_cast<int32_t>(slot_sample.size());
      slot_sample.push_back(sample);
    }
    return static_cast<int64_t>(slot_of[sample]);
  };
  std::vector<DeviceStep> cut;
  std::vector<int32_t> chunk_of;
  std::vector<uint8_t> second;

  for (int32_t r = 0; r < ranked; ++r) {
    const int64_t* steps = order.data() + first[r];
    const int64_t m = first[r + 1] - first[r];
    int64_t save = -1;  // position of the cycle's kSave; the cycle's kApplyFromBuffer is last
    for (int64_t k = 0; k < m; ++k)
      if (plan[steps[k]].op == StepOp::kSave) save = k;
    const int64_t walked = m - (save >= 0);
    if (walked <= segment) {  // one group, as it is
      cut.clear();
      for (int64_t k = 0; k < m; ++k) cut.push_back(step_of(plan[steps[k]]));
      emit(0, cut.data(), m);
      continue;
    }
    // Chunks of at most `segment` steps, as even as they come; a kSave goes with the step after it.
    const int64_t chunks = (walked + segment - 1) / segment;
    chunk_of.assign(static_cast<size_t>(m), 0);
    for (int64_t k = 0, j = 0; k < m; ++k) {
      if (k == save) continue;
      chunk_of[k] = static_cast<int32_t>(j++ * chunks / walked);
    }
    if (save >= 0) chunk_of[save] = chunk_of[save + 1];
    for (int64_t k = 0; k < m; ++k) {
      const PlanStep& s = plan[steps[k]];
      if (s.op == StepOp::kApply || s.op == StepOp::kApplyFromBuffer || s.op == StepOp::kPair)
        writer_chunk[s.a] = chunk_of[k];
      if (s.op == StepOp::kPair) writer_chunk[s.b] = chunk_of[k];
    }
    const bool keep_buffer = save >= 0 && chunk_of[save] == chunk_of[m - 1];
    second.assign(static_cast<size_t>(chunks), 0);
    cut.clear();
    for (int64_t k = 0; k < m; ++k) {
      const PlanStep& s = plan[steps[k]];
      int64_t from = -1;  // the sample read from a head slot
      if (s.op == StepOp::kSave && !keep_buffer) {
        chunk_of[k] = -1;  // dropped: the last segment reads the cycle's first sample from its slot
        continue;
      }
      if (s.op == StepOp::kApplyFromBuffer && !keep_buffer) from = plan[steps[save]].a;
      if (s.op == StepOp::kApply && writer_chunk[s.b] >= 0 && writer_chunk[s.b] != chunk_of[k]) from = s.b;
      if (from < 0) {
        cut.push_back(step_of(s));
        continue;
      }
      cut.push_back(device_step(StepOp::kApplyFromHead, s.a, slot(from), lam, kind, box));
      second[chunk_of[k]] = second[writer_chunk[from]] = 1;
    }
    for (int64_t k = 0, j = 0; k < m;) {  // j: position in cut
      if (chunk_of[k] < 0) {
        ++k;
        continue;
      }
      const int32_t c = chunk_of[k];
      int64_t len = 0;
      for (; k < m && (chunk_of[k] == c || chunk_of[k] < 0); ++k) len += chunk_of[k] >= 0;
      emit(second[c] ? 1 : 0, cut.data() + j, len);
      j += len;
    }
  }
  for (size_t h = 0; h < slot_sample.size(); ++h) {
    const DeviceStep s = device_step(StepOp::kSaveHead, slot_sample[h], static_cast<int64_t>(h), lam, kind, box);
    emit(0, &s, 1);
  }

  out.shape.first_groups = static_cast<int64_t>(launch_groups[0].size());
  out.shape.second_groups = static_cast<int64_t>(launch_groups[1].size());
  out.shape.head_slots = static_cast<int64_t>(slot_sample.size());
  out.shape.steps = static_cast<int64_t>(launch_steps[0].size() + launch_steps[1].size());
  out.groups = std::move(launch_groups[0]);
  const int32_t offset = static_cast<int32_t>(launch_steps[0].size());
  for (PlanGroup g : launch_groups[1]) out.groups.push_back({g.start + offset, g.len});
  out.steps = std::move(launch_steps[0]);
  out.steps.insert(out.steps.end(), launch_steps[1].begin(), launch_steps[1].end());
  return out;
}

}  // namespace fastmix
