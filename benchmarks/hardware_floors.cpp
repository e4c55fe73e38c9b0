// What this machine's memory system allows, without fastmix: the simplest C++ loops for a Mixup
// blend of swapped pairs (float32, and uint8 with the exact float32 rounding) and a CutMix box
// swap (rows prefetched in walk order, the best found), on a 256x3x224x224 batch whose pairs are
// (i, 255 - i). benchmarks/hardware_floors.py builds this as a shared library (-march=native) and
// times it beside fastmix's kernels against the same floor, torch's in-place pass.
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace {
constexpr int64_t kBatch = 256, kChannels = 3, kSide = 224, kRowsAhead = 4;
constexpr int64_t kSample = kChannels * kSide * kSide;

float stored(float v, float) { return v; }
uint8_t stored(float v, uint8_t) {  // half to even, saturated
  return static_cast<uint8_t>(std::min(std::max(static_cast<int>(std::nearbyint(v)), 0), 255));
}

// Pairs (p, kBatch-1-p), each product rounded on its own (built with -ffp-contract=off).
template <typename T>
void blend_pairs(T* x, float lam_a, float lam_b) {
  const float rest_a = 1.0f - lam_a, rest_b = 1.0f - lam_b;
  for (int64_t p = 0; p < kBatch / 2; ++p) {
    T* __restrict__ a = x + p * kSample;
    T* __restrict__ b = x + (kBatch - 1 - p) * kSample;
    for (int64_t j = 0; j < kSample; ++j) {
      const float u = a[j], v = b[j];
      a[j] = stored(u * lam_a + v * rest_a, T{});
      b[j] = stored(v * lam_b + u * rest_b, T{});
    }
  }
}

// The box's rows of every plane of each swapped pair, each after prefetching (into L2) the row
// kRowsAhead steps further on in the same walk.
void swap_boxes(float* x, int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
  const int64_t rows = kChannels * (y1 - y0);
  auto row_of = [&](int64_t k) { return (k / (y1 - y0)) * kSide + y0 + k % (y1 - y0); };
  for (int64_t p = 0; p < kBatch / 2; ++p) {
    float* a = x + p * kSample;
    float* b = x + (kBatch - 1 - p) * kSample;
    for (int64_t k = 0; k < rows; ++k) {
      if (k + kRowsAhead < rows) {
        const int64_t ahead = row_of(k + kRowsAhead) * kSide;
        for (int64_t c = x0; c < x1; c += 16) __builtin_prefetch(a + ahead + c, 0, 2), __builtin_prefetch(b + ahead + c, 0, 2);
      }
      float* ra = a + row_of(k) * kSide;
      float* rb = b + row_of(k) * kSide;
      for (int64_t c = x0; c < x1; ++c) std::swap(ra[c], rb[c]);
    }
  }
}

}  // namespace

extern "C" {
void plain_blend_pairs_f32(float* x, float lam_a, float lam_b) { blend_pairs(x, lam_a, lam_b); }
void plain_blend_pairs_u8(uint8_t* x, float lam_a, float lam_b) { blend_pairs(x, lam_a, lam_b); }
void plain_swap_boxes(float* x, int64_t y0, int64_t y1, int64_t x0, int64_t x1) { swap_boxes(x, y0, y1, x0, x1); }
}
