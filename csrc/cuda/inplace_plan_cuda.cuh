// The in-place plan of csrc/mix_plan.h, built on the device (no device -> host sync) and split
// into independent groups of steps, so that the mixing kernel can run several groups at once.
//
// Sample i is written from itself and partner[i]; hazards exist only inside a connected component
// of the partner graph (a tree of readers hanging off a cycle, or off a sample left alone). Any
// two components can be processed in parallel, so the plan is built per group of components:
//
//   1. mixed[i], readers[j] (how many mixed samples read j) -- in parallel;
//   2. the component of every sample, by pointer jumping: after R = ceil(log2 B) doublings,
//      jump[i] = partner^(2^R)(i) lies on i's cycle (or is the untouched sample its tree hangs
//      off), and min over the 2^R samples from there is the smallest index of that cycle: a key
//      shared by exactly the samples of one component;
//   3. group = key % G; mixed samples are bucketed by group (counts, a block scan, a scatter);
//   4. one thread per group runs make_inplace_plan's algorithm over its bucket: trees leaves
//      first, then each cycle (a swapped pair is one fused step, a longer cycle goes through the
//      buffer). The steps carry their samples' kind, lam and box, so the mixing kernel reads one
//      64-byte record per step.
//
// All of it is one block of kPlanThreads threads (phases separated by __syncthreads), with the
// per-sample scratch in shared memory up to kSharedScratchBatch samples (global memory beyond);
// the phases are plain functions of (tid, nthreads) so that tests/cuda/emulate_on_host.cu can run them in
// loops. Everything is O(B): extra memory never depends on the image size.
// Group g's steps are steps[group_start[g] .. + group_len[g]); groups may be empty. A group's
// capacity is twice its mixed samples (a cycle of L >= 3 samples takes L + 1 steps).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../mix_plan.h"
#include "cuda_math.cuh"

namespace fastmix {
namespace cuda {

constexpr int kPlanThreads = 1024;
constexpr int64_t kMaxPlanGroups = kPlanThreads;
// Sample indices are int32 on the device.
constexpr int64_t kMaxBatch = int64_t(1) << 30;

// One step of the plan, with what the mixing kernel needs of its samples.
struct alignas(16) DeviceStep {
  int32_t a, b;  // samples (b = -1 for kSave / kApplyFromBuffer)
  uint8_t op, kind_a, kind_b, pad;
  float lam_a, lam_b;
  int32_t box_a[4], box_b[4];  // y0, y1, x0, x1, clamped to [0, 2^31 - 1]
};

struct PlanInputs {
  const int64_t* partner;
  const float* lam;
  const uint8_t* kind;
  const int64_t* box;
  int32_t batch;
  int32_t groups;       // G, in [1, kMaxPlanGroups]
  int32_t jump_rounds;  // ceil(log2(batch))
};

struct PlanBuffers {
  // What the mixing kernel reads.
  int32_t* any_paste;    // [1]: some mixed sample pastes
  int32_t* group_start;  // [G]
  int32_t* group_len;    // [G]
  DeviceStep* steps;     // [2 * batch]
  // Scratch of the plan kernel.
  uint8_t* mixed;    // [batch]: mixed(partner, kind, i) of csrc/mix_plan.h
  uint8_t* done;     // [batch]
  int32_t* jump[2];  // [batch] each
  int32_t* minkey[2];
  int32_t* readers;
  int32_t* group_of;
  int32_t* nodes;
  int32_t* stack;
  int32_t* group_count;  // [G]
  int32_t* node_start;   // [G]
  int32_t* cursor;       // [G]
};

inline int32_t plan_jump_rounds(int64_t batch) {
  int32_t r = 0;
  while ((int64_t(1) << r) < batch) ++r;
  return r;
}

// Hands out 64-byte aligned pieces of one buffer (base == nullptr: only measures).
struct ByteCarver {
  uint8_t* base;
  size_t off;
  template <typename T>
  FASTMIX_HDI T* take(size_t count) {
    off = (off + 63) / 64 * 64;
    T* p = base ? reinterpret_cast<T*>(base + off) : nullptr;
    off += count * sizeof(T);
    return p;
  }
  FASTMIX_HDI size_t size() const { return (off + 63) / 64 * 64; }
};

// The per-sample scratch of the plan kernel: in global memory, or in shared memory when the
// batch is small enough (kSharedScratchBatch samples fit next to the scan in 48 KB).
FASTMIX_HDI void carve_sample_scratch(ByteCarver& c, int64_t batch, PlanBuffers* p) {
  const size_t b = static_cast<size_t>(batch);
  p->mixed = c.take<uint8_t>(b);
  p->done = c.take<uint8_t>(b);
  for (int k = 0; k < 2; ++k) {
    p->jump[k] = c.take<int32_t>(b);
    p->minkey[k] = c.take<int32_t>(b);
  }
  p->readers = c.take<int32_t>(b);
  p->group_of = c.take<int32_t>(b);
  p->nodes = c.take<int32_t>(b);
  p->stack = c.take<int32_t>(b);
}

constexpr int64_t kSharedScratchBatch = 1024;
constexpr size_t kSharedScratchBytes = 2 * 1024 + 8 * 4 * 1024 + 10 * 64;  // carve_sample_scratch(1024), padded

// Lays the buffers out from `base` (nullptr: only measures); returns the bytes needed.
inline size_t carve_plan_buffers(uint8_t* base, int64_t batch, int64_t groups, PlanBuffers* out) {
  ByteCarver c{base, 0};
  const size_t b = static_cast<size_t>(batch), g = static_cast<size_t>(groups);
  PlanBuffers p;
  p.any_paste = c.take<int32_t>(1);
  p.group_start = c.take<int32_t>(g);
  p.group_len = c.take<int32_t>(g);
  p.steps = c.take<DeviceStep>(2 * b);
  p.group_count = c.take<int32_t>(g);
  p.node_start = c.take<int32_t>(g);
  p.cursor = c.take<int32_t>(g);
  carve_sample_scratch(c, batch, &p);
  if (out) *out = p;
  return c.size();
}

FASTMIX_HDI int32_t atomic_add_i32(int32_t* p, int32_t v) {
#ifdef __CUDA_ARCH__
  return atomicAdd(reinterpret_cast<int*>(p), v);
#else
  const int32_t old = *p;
  *p = old + v;
  return old;
#endif
}

// Phase 1: which samples are mixed; the start of the pointer jumping.
FASTMIX_HD inline void plan_init(const PlanInputs& in, const PlanBuffers& buf, int tid, int nt) {
  for (int32_t i = tid; i < in.batch; i += nt) {
    const int64_t p = in.partner[i];
    const uint8_t k = in.kind[i];
    const bool valid = p >= 0 && p < in.batch && k <= kPaste;
    FASTMIX_KERNEL_ASSERT(valid);
    const bool mixed = valid && k != kNone && p != i;
    buf.mixed[i] = mixed;
    buf.done[i] = !mixed;
    buf.jump[0][i] = mixed ? static_cast<int32_t>(p) : i;
    buf.minkey[0][i] = i;
    buf.readers[i] = 0;
  }
  for (int32_t g = tid; g < in.groups; g += nt) buf.group_count[g] = 0;
  if (tid == 0) *buf.any_paste = 0;
}

// Phase 2: readers of every sample; whether any mixed sample pastes.
FASTMIX_HD inline void plan_count_readers(const PlanInputs& in, const PlanBuffers& buf, int tid, int nt) {
  for (int32_t i = tid; i < in.batch; i += nt) {
    if (!buf.mixed[i]) continue;
    atomic_add_i32(&buf.readers[in.partner[i]], 1);
    if (in.kind[i] == kPaste) *buf.any_paste = 1;  // every writer stores the same value
  }
}

// Phase 3 (R rounds): jump <- jump o jump, minkey <- min over the doubled window.
FASTMIX_HD inline void plan_jump(const PlanInputs& in, const PlanBuffers& buf, int round, int tid, int nt) {
  const int32_t* jump = buf.jump[round & 1];
  const int32_t* minkey = buf.minkey[round & 1];
  int32_t* jump_next = buf.jump[(round + 1) & 1];
  int32_t* minkey_next = buf.minkey[(round + 1) & 1];
  for (int32_t i = tid; i < in.batch; i += nt) {
    const int32_t j = jump[i];
    jump_next[i] = jump[j];
    const int32_t a = minkey[i], b = minkey[j];
    minkey_next[i] = a < b ? a : b;
  }
}

// Phase 4: the component key and group of every mixed sample; group sizes.
FASTMIX_HD inline void plan_assign_groups(const PlanInputs& in, const PlanBuffers& buf, int tid, int nt) {
  const int32_t* jump = buf.jump[in.jump_rounds & 1];
  const int32_t* minkey = buf.minkey[in.jump_rounds & 1];
  for (int32_t i = tid; i < in.batch; i += nt) {
    if (!buf.mixed[i]) continue;
    const int32_t key = minkey[jump[i]];
    const int32_t g = key % in.groups;
    buf.group_of[i] = g;
    atomic_add_i32(&buf.group_count[g], 1);
  }
}

// Phase 5: an inclusive scan of the group sizes over kPlanThreads slots (Hillis-Steele,
// double-buffered: load, then log2(kPlanThreads) steps, then store the exclusive offsets).
FASTMIX_HD inline void plan_scan_load(const PlanInputs& in, const PlanBuffers& buf, int32_t* scan, int tid, int nt) {
  for (int32_t t = tid; t < kPlanThreads; t += nt) scan[t] = t < in.groups ? buf.group_count[t] : 0;
}
FASTMIX_HD inline void plan_scan_step(const int32_t* src, int32_t* dst, int32_t d, int tid, int nt) {
  for (int32_t t = tid; t < kPlanThreads; t += nt) dst[t] = src[t] + (t >= d ? src[t - d] : 0);
}
FASTMIX_HD inline void plan_scan_store(const PlanInputs& in, const PlanBuffers& buf, const int32_t* scan, int tid,
                                       int nt) {
  for (int32_t g = tid; g < in.groups; g += nt) {
    const int32_t start = scan[g] - buf.group_count[g];
    buf.node_start[g] = start;
    buf.cursor[g] = start;
  }
}

// Phase 6: mixed samples bucketed by group (in any order within a bucket).
FASTMIX_HD inline void plan_scatter(const PlanInputs& in, const PlanBuffers& buf, int tid, int nt) {
  for (int32_t i = tid; i < in.batch; i += nt) {
    if (!buf.mixed[i]) continue;
    buf.nodes[atomic_add_i32(&buf.cursor[buf.group_of[i]], 1)] = i;
  }
}

FASTMIX_HDI DeviceStep make_step(const PlanInputs& in, StepOp op, int32_t a, int32_t b) {
  DeviceStep s;
  s.a = a;
  s.b = b;
  s.op = static_cast<uint8_t>(op);
  s.pad = 0;
  s.kind_a = in.kind[a];
  s.lam_a = in.lam[a];
  const int64_t* box_a = in.box + 4 * static_cast<int64_t>(a);
  for (int k = 0; k < 4; ++k) s.box_a[k] = clamp_box_bound(box_a[k]);
  if (op == StepOp::kPair) {
    s.kind_b = in.kind[b];
    s.lam_b = in.lam[b];
    const int64_t* box_b = in.box + 4 * static_cast<int64_t>(b);
    for (int k = 0; k < 4; ++k) s.box_b[k] = clamp_box_bound(box_b[k]);
  } else {
    s.kind_b = kNone;
    s.lam_b = 1.f;
    for (int k = 0; k < 4; ++k) s.box_b[k] = 0;
  }
  return s;
}

// Phase 7: make_inplace_plan (csrc/mix_plan.h) over the mixed samples of group g. Every
// sample of a component is in the same group, so the readers/done updates stay in this thread.
FASTMIX_HD inline void plan_group_steps(const PlanInputs& in, const PlanBuffers& buf, int32_t g) {
  const int32_t n0 = buf.node_start[g], count = buf.group_count[g];
  const int32_t* nodes = buf.nodes + n0;
  int32_t* stack = buf.stack + n0;  // each sample is pushed at most once
  DeviceStep* out = buf.steps + 2 * static_cast<int64_t>(n0);
  int32_t sp = 0, ns = 0;
  for (int32_t k = 0; k < count; ++k)
    if (buf.readers[nodes[k]] == 0) stack[sp++] = nodes[k];
  // Trees: write a sample once nobody needs its original any more.
  while (sp > 0) {
    const int32_t i = stack[--sp];
    const int32_t j = static_cast<int32_t>(in.partner[i]);
    out[ns++] = make_step(in, StepOp::kApply, i, j);
    buf.done[i] = 1;
    if (!buf.done[j] && --buf.readers[j] == 0) stack[sp++] = j;
  }
  // What is left are cycles of mixed samples.
  for (int32_t k = 0; k < count; ++k) {
    const int32_t start = nodes[k];
    if (buf.done[start]) continue;
    const int32_t next = static_cast<int32_t>(in.partner[start]);
    if (in.partner[next] == start) {
      out[ns++] = make_step(in, StepOp::kPair, start, next);
      buf.done[start] = buf.done[next] = 1;
      continue;
    }
    out[ns++] = make_step(in, StepOp::kSave, start, -1);
    int32_t i = start;
    while (true) {
      buf.done[i] = 1;
      const int32_t j = static_cast<int32_t>(in.partner[i]);
      if (j == start) {
        out[ns++] = make_step(in, StepOp::kApplyFromBuffer, i, -1);
        break;
      }
      out[ns++] = make_step(in, StepOp::kApply, i, j);
      i = j;
    }
  }
  buf.group_start[g] = 2 * n0;
  buf.group_len[g] = ns;
}

FASTMIX_HD inline void plan_groups(const PlanInputs& in, const PlanBuffers& buf, int tid, int nt) {
  for (int32_t g = tid; g < in.groups; g += nt) plan_group_steps(in, buf, g);
}

// The phases in order. `exec(phase)` runs phase(tid, nthreads) for every thread and returns once
// all have finished (on the device: each thread calls it, then __syncthreads()).
#pragma nv_exec_check_disable
template <typename Exec>
FASTMIX_HD inline void build_plan(const PlanInputs& in, const PlanBuffers& buf, int32_t (*scan)[kPlanThreads],
                                  Exec& exec) {
  exec([&](int tid, int nt) { plan_init(in, buf, tid, nt); });
  exec([&](int tid, int nt) { plan_count_readers(in, buf, tid, nt); });
  for (int r = 0; r < in.jump_rounds; ++r) exec([&](int tid, int nt) { plan_jump(in, buf, r, tid, nt); });
  exec([&](int tid, int nt) { plan_assign_groups(in, buf, tid, nt); });
  exec([&](int tid, int nt) { plan_scan_load(in, buf, scan[0], tid, nt); });
  int cur = 0;
  for (int32_t d = 1; d < kPlanThreads; d <<= 1) {
    exec([&](int tid, int nt) { plan_scan_step(scan[cur], scan[cur ^ 1], d, tid, nt); });
    cur ^= 1;
  }
  exec([&](int tid, int nt) { plan_scan_store(in, buf, scan[cur], tid, nt); });
  exec([&](int tid, int nt) { plan_scatter(in, buf, tid, nt); });
  exec([&](int tid, int nt) { plan_groups(in, buf, tid, nt); });
}

// The plan kernel's body: the per-sample scratch moves to `shared_scratch` (kSharedScratchBytes)
// when the batch fits there -- the phases' dependent loads then take ~30 cycles, not ~500.
#pragma nv_exec_check_disable
template <typename Exec>
FASTMIX_HD inline void build_plan_in_block(const PlanInputs& in, PlanBuffers buf, int32_t (*scan)[kPlanThreads],
                                           uint8_t* shared_scratch, Exec& exec) {
  if (in.batch <= kSharedScratchBatch) {
    ByteCarver c{shared_scratch, 0};
    carve_sample_scratch(c, in.batch, &buf);
  }
  build_plan(in, buf, scan, exec);
}

struct BlockExec {
  template <typename Phase>
  __device__ void operator()(const Phase& phase) const {
    phase(static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x));
    __syncthreads();
  }
};

// Launched as build_plan_kernel<kPlanThreads><<<1, kPlanThreads>>> (a template so that the
// headers can be included by several translation units).
template <int kBlock>
__global__ void __launch_bounds__(kBlock) build_plan_kernel(PlanInputs in, PlanBuffers buf) {
  static_assert(kBlock == kPlanThreads, "the scan covers kPlanThreads slots");
  __shared__ int32_t scan[2][kPlanThreads];
  __shared__ alignas(64) uint8_t scratch[kSharedScratchBytes];
  BlockExec exec;
  build_plan_in_block(in, buf, scan, scratch, exec);
}

// How many groups to split the plan into: enough (element positions x groups) threads to fill
// the device a few times over, never more than B / 2 (a component has at least two samples).
inline int32_t choose_plan_groups(int64_t batch, int64_t positions, int64_t sm_count) {
  const int64_t target_threads = (sm_count > 0 ? sm_count : 1) * 2048 * 4;
  int64_t groups = ceil_div(target_threads, positions > 0 ? positions : 1);
  const int64_t most = batch / 2 < kMaxPlanGroups ? batch / 2 : kMaxPlanGroups;
  if (groups > most) groups = most;
  if (groups < 1) groups = 1;
  return static_cast<int32_t>(groups);
}

}  // namespace cuda
}  // namespace fastmix
