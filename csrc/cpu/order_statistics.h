// Order statistics of a float32 array, for FMix's thresholds (fastmix/sampling/order_statistics.py):
// the value at each of k ranks of the ascending order and how many values are strictly below it.
// One bucketing pass by value, then a selection in only the buckets that hold a rank: 0.07 ms for
// 224x224 values and one rank, 0.09 ms for 256 ranks (an AMD EPYC, Zen 4), where np.sort takes
// 0.14 ms with numpy's SIMD sort and 1.0-1.3 ms without it (that CPU, which it does not dispatch
// to). The passes over the values are multiversioned, so vectorized: in scalar double they took
// most of the 0.20 ms that one rank took before.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

#include "cpu_features.h"  // FASTMIX_MULTIVERSION

namespace fastmix::cpu {

// Unsigned keys in the order of the floats' values: the sign bit set for positives, all bits
// flipped for negatives. -0.0 takes +0.0's key, so equal values have equal keys (NaN is not
// ordered: the caller's values are finite).
inline uint32_t order_key(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if (bits == 0x80000000u)
    bits = 0;
  return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}

inline float key_value(uint32_t key) {
  const uint32_t bits = (key & 0x80000000u) ? key & 0x7fffffffu : ~key;
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// The least and the greatest key of values (n >= 1), in integers, which the compiler vectorizes
// (a float min/max reduction it would not, for NaN's and -0.0's sake). All values are finite iff
// the keys lie strictly between -inf's and +inf's (a NaN's key lies beyond an infinity's).
FASTMIX_MULTIVERSION inline void key_range(const float* values, int64_t n, uint32_t* least, uint32_t* greatest) {
  uint32_t lo = ~uint32_t{0}, hi = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t key = order_key(values[i]);
    lo = key < lo ? key : lo, hi = key > hi ? key : hi;
  }
  *least = lo, *greatest = hi;
}

// bucket[i] = floor((values[i] - least) * per_value) clamped to [0, last], in float32 (which the
// compiler vectorizes twice as wide as double): monotone in the value, as each rounding and each
// clamp is, so the buckets are in order. Clamped to [0, last] as a float before the conversion (no
// overflow, so defined; values changed under it, the caller's array being read without the GIL,
// and NaN go to the last), then to last again as an integer: above 2^24 float(last) may round up
// to last + 1.
FASTMIX_MULTIVERSION inline void value_buckets(const float* values, int64_t n, float least, float per_value,
                                               uint32_t last, uint32_t* bucket) {
  const float last_bucket = static_cast<float>(last);
  for (int64_t i = 0; i < n; ++i) {
    float at = (values[i] - least) * per_value;
    at = at < last_bucket ? at : last_bucket;
    at = at > 0.0f ? at : 0.0f;
    const uint32_t b = static_cast<uint32_t>(static_cast<int32_t>(at));
    bucket[i] = b < last ? b : last;
  }
}

// values (n,) finite, n < 2^32, ranks (k,) each in [0, n): value[j] = the ranks[j]-th smallest of
// values, below[j] = how many values are < value[j]. False, with nothing written, if a value is not
// finite (NaN has no rank, and an infinite range has no bucket width).
inline bool order_statistics(const float* values, int64_t n, const int64_t* ranks, int64_t k, float* value,
                             int64_t* below) {
  if (n == 0 || k == 0)
    return true;
  // Buckets of equal width in value between the least and the greatest, about 16 values each: a
  // value's bucket, floor((v - least) * buckets / range) (value_buckets), never decreases as v
  // grows, so the buckets are in order. (Buckets of the keys' top 16 bits, tried first: 65,536
  // counts to clear and sum, 97% of them empty for a noise image, and no faster: 0.15 ms against
  // 0.14-0.17.)
  uint32_t least_key, greatest_key;
  key_range(values, n, &least_key, &greatest_key);
  if (least_key <= order_key(-INFINITY) || greatest_key >= order_key(INFINITY))
    return false;
  const float least = key_value(least_key), greatest = key_value(greatest_key);
  const int64_t buckets = std::max<int64_t>(1, n / 16);
  // (range in double: greatest - least may overflow float32. per_value at most FLT_MAX: a range
  // below buckets / FLT_MAX would make it +inf, and 0 * inf NaN, so every value the last bucket's;
  // the products it leaves above the last bucket value_buckets clamps.)
  const double range = static_cast<double>(greatest) - least;
  const float per_value =
      range > 0 ? static_cast<float>(std::min(static_cast<double>(buckets) / range, double{FLT_MAX})) : 0.0f;
  // The thread's scratch, kept between calls: memory allocated afresh would be mapped afresh, and
  // its page faults cost as much as the selection.
  thread_local std::vector<uint32_t> start, fill, bucket, bucketed;
  start.assign(buckets + 1, 0);
  bucket.resize(n), bucketed.resize(n);
  value_buckets(values, n, least, per_value, static_cast<uint32_t>(buckets - 1), bucket.data());
  // Neighbouring values of a smooth image share a bucket, and counts of one bucket in a row wait on
  // each other through memory: four quarters of the array at once keep four chains going.
  const int64_t quarter = n / 4;
  for (int64_t i = 0; i < quarter; ++i) {
    ++start[bucket[i] + 1], ++start[bucket[i + quarter] + 1];
    ++start[bucket[i + 2 * quarter] + 1], ++start[bucket[i + 3 * quarter] + 1];
  }
  for (int64_t i = 4 * quarter; i < n; ++i)
    ++start[bucket[i] + 1];
  std::partial_sum(start.begin(), start.end(), start.begin());
  fill.assign(start.begin(), start.end() - 1);
  const auto place = [&](int64_t i) { bucketed[fill[bucket[i]]++] = order_key(values[i]); };
  for (int64_t i = 0; i < quarter; ++i)
    place(i), place(i + quarter), place(i + 2 * quarter), place(i + 3 * quarter);
  for (int64_t i = 4 * quarter; i < n; ++i)
    place(i);
  // A bucket holds about 16 values: a selection per rank costs less than a sort of the bucket. A
  // big bucket (a field of few distinct values) is sorted once instead: the ranks are taken in
  // ascending order, so its ranks come one after another.
  constexpr uint32_t kSelectBelow = 4096;
  std::vector<int64_t> order(k);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ranks[a] < ranks[b]; });
  int64_t sorted_bucket = -1;
  for (const int64_t j : order) {
    const uint32_t rank = static_cast<uint32_t>(ranks[j]);
    // the bucket b with start[b] <= rank < start[b + 1]
    const int64_t bucket = std::upper_bound(start.begin(), start.end(), rank) - start.begin() - 1;
    uint32_t* first = bucketed.data() + start[bucket];
    uint32_t* last = bucketed.data() + start[bucket + 1];
    uint32_t key;
    if (last - first < kSelectBelow) {
      std::nth_element(first, bucketed.data() + rank, last);
      key = bucketed[rank];
      below[j] = start[bucket] + std::count_if(first, last, [key](uint32_t other) { return other < key; });
    } else {
      if (bucket != sorted_bucket)
        std::sort(first, last), sorted_bucket = bucket;
      key = bucketed[rank];
      below[j] = start[bucket] + (std::lower_bound(first, last, key) - first);
    }
    value[j] = key_value(key);
  }
  return true;
}

}  // namespace fastmix::cpu
