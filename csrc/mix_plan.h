// The order in which a MixParams is applied in place.
//
// Sample i is rewritten from itself and sample partner[i]. Doing that in place is safe as long as
// every sample is read as a partner before it is overwritten. The partner map is a functional graph:
// trees (samples nobody else reads, written first, leaves inwards) hanging off cycles (a flip pairs
// samples into 2-cycles, a roll is one B-cycle). A cycle is broken by saving its first sample to a
// small per-chunk buffer. The plan is O(B) and independent of the data, so every element position
// can walk it on its own: that is what makes the CPU chunks and the CUDA threads independent.
#pragma once

#include <cstdint>
#include <vector>

namespace fastmix {

// Per-sample kind of mixing, as in fastmix.MixKind.
enum MixKind : uint8_t { kNone = 0, kBlend = 1, kPaste = 2 };

enum class StepOp : uint8_t {
  kSave,             // buffer <- x[a]
  kApply,            // x[a] <- mix(x[a], x[b]); x[b] is still original
  kApplyFromBuffer,  // x[a] <- mix(x[a], buffer), the saved original of its partner
  kPair,             // x[a] <- mix(x[a], x[b]) and x[b] <- mix(x[b], x[a]), both from originals
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

}  // namespace fastmix
