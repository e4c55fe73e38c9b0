// Checks csrc/cpu/half_convert.h and the float16 / bfloat16 loops of csrc/cpu/blend_math.h
// against c10's scalar conversions, bit for bit (built and run by tests/test_half_precision.py),
// and the uint8 lanes of csrc/cpu/byte_lanes.h against the scalar from_acc<uint8_t>: every pair
// of bytes blended at tie and random lambdas, and the store of float32 values far outside [0, 255].
// Each set of lanes the CPU can run is checked, not only the one the loader would pick.
//
//   half_convert_check          widening: all 65536 inputs; rounding: ~2.6 million float32 inputs
//                               (every sign, exponent and top mantissa bits with the low bits that
//                               decide ties, plus a sweep through all bit patterns)
//   half_convert_check full     rounding: all 2^32 float32 inputs (about a minute)
//
// Each check runs for the bits16 functions and for every set of lanes the CPU can run; the loops
// (blend_into, blend_pair, blend_and_take, narrow_row, as dispatched on this CPU) are compared with
// a per-element c10 computation on edge and random inputs of every length up to 100.
// Prints one line per check and exits 1 if any value differs.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu/blend_math.h"

using namespace fastmix::cpu;

namespace {

bool g_failed = false;

void report(const char* what, long mismatches, long checked) {
  std::printf("%-58s %s (%ld mismatches in %ld)\n", what, mismatches ? "FAIL" : "ok", mismatches, checked);
  if (mismatches) g_failed = true;
}

uint32_t bits_of_float(float f) { return bits16::f32_to_bits(f); }

// c10's conversions, the reference.
float c10_widen(uint16_t h, bool half) {
  return half ? c10::detail::fp16_ieee_to_fp32_value(h) : c10::detail::f32_from_bits(h);
}
uint16_t c10_narrow(float f, bool half) {
  return half ? c10::detail::fp16_ieee_from_fp32_value(f) : c10::detail::round_to_nearest_even(f);
}

// The float32 inputs of the rounding checks, in batches: f(first, count) with count <= 4096.
template <typename F>
void for_each_float_batch(bool full, F&& f) {
  std::vector<uint32_t> batch;
  batch.reserve(4096);
  auto push = [&](uint32_t u) {
    batch.push_back(u);
    if (batch.size() == 4096) {
      f(batch);
      batch.clear();
    }
  };
  if (full) {
    for (uint64_t u = 0; u < (uint64_t(1) << 32); ++u) push(static_cast<uint32_t>(u));
  } else {
    // The low 16 bits that decide rounding and ties for bfloat16 (bit 16) and float16 (bit 13 for
    // normal results, bits 14-23 for subnormal ones), under every value of the high 16 bits.
    const uint32_t low[] = {0x0000, 0x0001, 0x0FFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x2001, 0x2FFF, 0x3000,
                            0x3001, 0x3FFF, 0x4000, 0x4001, 0x7FFF, 0x8000, 0x8001, 0xBFFF, 0xC000, 0xFFFF};
    for (uint32_t high = 0; high < 65536; ++high)
      for (uint32_t l : low) push((high << 16) | l);
    for (uint64_t u = 0; u < (uint64_t(1) << 32); u += 4099) push(static_cast<uint32_t>(u));
  }
  if (!batch.empty()) f(batch);
}

void check_bits16(bool full) {
  long bad = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    bad += bits_of_float(bits16::bf16_to_f32(static_cast<uint16_t>(h))) != bits_of_float(c10_widen(h, false));
    bad += bits_of_float(bits16::f16_to_f32(static_cast<uint16_t>(h))) != bits_of_float(c10_widen(h, true));
  }
  report("bits16 widening, float16 and bfloat16, all inputs", bad, 2 * 65536);
  bad = 0;
  long checked = 0;
  for_each_float_batch(full, [&](const std::vector<uint32_t>& batch) {
    for (uint32_t u : batch) {
      const float f = bits16::f32_from_bits(u);
      bad += bits16::f32_to_bf16(f) != c10_narrow(f, false);
      bad += bits16::f32_to_f16(f) != c10_narrow(f, true);
    }
    checked += 2 * static_cast<long>(batch.size());
  });
  report(full ? "bits16 rounding, float16 and bfloat16, all 2^32 inputs" : "bits16 rounding, float16 and bfloat16",
         bad, checked);
}

#ifdef FASTMIX_X86_LANES
// Lanes L: every 16-bit input through load, then float32 inputs through store. A Vec may hold its
// values in an order of its own; where each slot lands is found by loading distinct values.
#define FASTMIX_CHECK_LANES(TARGET, L, HALF)                                                        \
  /* Widens all inputs; fills position[s], where slot s of a Vec lands when stored. */              \
  __attribute__((target(TARGET), noinline)) long widen_all_##L(int* position) {                     \
    using V = lanes::L::Vec;                                                                        \
    constexpr int K = static_cast<int>(lanes::L::kLanes);                                           \
    static_assert(sizeof(V) == K * sizeof(float), "a Vec is K float32 values");                     \
    uint16_t in16[K];                                                                               \
    float slots[K];                                                                                 \
    for (int k = 0; k < K; ++k) in16[k] = static_cast<uint16_t>(0x3C00 + k); /* finite, distinct */ \
    V v = lanes::L::load(in16);                                                                     \
    std::memcpy(slots, &v, sizeof(v));                                                              \
    long bad = 0;                                                                                   \
    for (int s = 0; s < K; ++s) {                                                                   \
      position[s] = -1;                                                                             \
      for (int k = 0; k < K; ++k)                                                                   \
        if (bits_of_float(slots[s]) == bits_of_float(c10_widen(in16[k], HALF))) position[s] = k;    \
      bad += position[s] < 0;                                                                       \
    }                                                                                               \
    if (bad) return bad;                                                                            \
    for (uint32_t base = 0; base < 65536; base += K) {                                              \
      for (int k = 0; k < K; ++k) in16[k] = static_cast<uint16_t>(base + k);                        \
      v = lanes::L::load(in16);                                                                     \
      std::memcpy(slots, &v, sizeof(v));                                                            \
      for (int s = 0; s < K; ++s)                                                                   \
        bad += bits_of_float(slots[s]) != bits_of_float(c10_widen(in16[position[s]], HALF));        \
    }                                                                                               \
    return bad;                                                                                     \
  }                                                                                                 \
  /* Rounds count float32 inputs (count a multiple of K). */                                        \
  __attribute__((target(TARGET), noinline)) long round_batch_##L(const uint32_t* batch, size_t count, \
                                                                 const int* position) {            \
    using V = lanes::L::Vec;                                                                        \
    constexpr int K = static_cast<int>(lanes::L::kLanes);                                           \
    long bad = 0;                                                                                   \
    for (size_t i = 0; i + K <= count; i += K) {                                                    \
      float in[K];                                                                                  \
      uint16_t out[K];                                                                              \
      for (int s = 0; s < K; ++s) in[s] = bits16::f32_from_bits(batch[i + s]);                      \
      V v;                                                                                          \
      std::memcpy(&v, in, sizeof(v));                                                               \
      lanes::L::store(out, v);                                                                      \
      for (int s = 0; s < K; ++s) bad += out[position[s]] != c10_narrow(in[s], HALF);               \
    }                                                                                               \
    return bad;                                                                                     \
  }                                                                                                 \
  void check_##L(bool full) {                                                                       \
    int position[lanes::L::kLanes];                                                                 \
    const long widen_bad = widen_all_##L(position);                                                 \
    report(#L " widening, all inputs", widen_bad, 65536);                                           \
    if (widen_bad) return;                                                                          \
    long bad = 0, checked = 0;                                                                      \
    for_each_float_batch(full, [&](const std::vector<uint32_t>& batch) {                            \
      const size_t count = batch.size() - batch.size() % lanes::L::kLanes;                          \
      bad += round_batch_##L(batch.data(), count, position);                                        \
      checked += static_cast<long>(count);                                                          \
    });                                                                                             \
    report(full ? #L " rounding, all 2^32 inputs" : #L " rounding", bad, checked);                  \
  }
FASTMIX_CHECK_LANES("arch=x86-64-v3", HalfAvx2, true)
FASTMIX_CHECK_LANES("arch=x86-64-v3", BFloat16Avx2, false)
FASTMIX_CHECK_LANES("arch=x86-64-v4", HalfAvx512, true)
FASTMIX_CHECK_LANES("arch=x86-64-v4", BFloat16Avx512, false)
#undef FASTMIX_CHECK_LANES

// uint8 lanes L: every (own, partner) byte pair blended as the loops do, and the store of float32
// values of every magnitude, against from_acc<uint8_t> (round half to even, saturate).
#define FASTMIX_CHECK_BYTE_LANES(TARGET, L)                                                         \
  __attribute__((target(TARGET), noinline)) long blend_all_pairs_##L(float lam, long* checked) {    \
    constexpr int K = static_cast<int>(lanes::L::kLanes);                                           \
    const float rest = 1.0f - lam;                                                                  \
    const lanes::L::Vec vl = lanes::L::set1(lam), vr = lanes::L::set1(rest);                        \
    long bad = 0;                                                                                   \
    uint8_t own[K], theirs[K], out[K];                                                              \
    for (int a = 0; a < 256; ++a)                                                                   \
      for (int b0 = 0; b0 < 256; b0 += K) {                                                         \
        for (int k = 0; k < K; ++k) own[k] = static_cast<uint8_t>(a), theirs[k] = static_cast<uint8_t>(b0 + k); \
        lanes::L::store(out, lanes::L::add(lanes::L::mul(lanes::L::load(own), vl),                  \
                                           lanes::L::mul(lanes::L::load(theirs), vr)));             \
        for (int k = 0; k < K; ++k)                                                                 \
          bad += out[k] != from_acc<uint8_t>(to_acc(own[k]) * lam + to_acc(theirs[k]) * rest);      \
        *checked += K;                                                                              \
      }                                                                                             \
    return bad;                                                                                     \
  }                                                                                                 \
  __attribute__((target(TARGET), noinline)) long store_values_##L(const std::vector<float>& values) { \
    constexpr int K = static_cast<int>(lanes::L::kLanes);                                           \
    long bad = 0;                                                                                   \
    for (size_t i = 0; i + K <= values.size(); i += K) {                                            \
      lanes::L::Vec v;                                                                              \
      std::memcpy(&v, values.data() + i, sizeof(v));                                                \
      uint8_t out[K];                                                                               \
      lanes::L::store(out, v);                                                                      \
      for (int k = 0; k < K; ++k) bad += out[k] != from_acc<uint8_t>(values[i + k]);                \
    }                                                                                               \
    return bad;                                                                                     \
  }                                                                                                 \
  void check_##L() {                                                                                \
    std::mt19937 rng(7);                                                                            \
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);                                         \
    std::vector<float> lams = {0.0f, 1.0f, 0.5f, 0.25f, 0.75f, 1.0f / 3.0f, 0.7f};                  \
    for (int k = 0; k < 40; ++k) lams.push_back(unit(rng));                                         \
    long bad = 0, checked = 0;                                                                      \
    for (float lam : lams) bad += blend_all_pairs_##L(lam, &checked);                               \
    report(#L " blends, every byte pair, 47 lambdas", bad, checked);                                \
    std::vector<float> values = {-1e9f, -65536.0f, -32769.0f, -256.0f, -1.0f, -0.5f, -0.0f, 0.5f,   \
                                 1.5f, 2.5f, 254.5f, 255.5f, 256.0f, 32767.0f, 32768.0f, 65535.0f,  \
                                 65536.0f, 1e9f, 2.1e9f};                                           \
    std::uniform_real_distribution<float> wide(-1e6f, 1e6f), near(-2.0f, 258.0f);                   \
    for (int k = 0; k < 200000; ++k) values.push_back(k % 2 ? wide(rng) : near(rng));               \
    while (values.size() % 64) values.push_back(127.5f);                                            \
    report(#L " store of values in [-2^31, 2^31)", store_values_##L(values), static_cast<long>(values.size())); \
  }
FASTMIX_CHECK_BYTE_LANES("arch=x86-64-v3", ByteAvx2)
FASTMIX_CHECK_BYTE_LANES("arch=x86-64-v4", ByteAvx512)
#undef FASTMIX_CHECK_BYTE_LANES
#endif

// Edge values of a 16-bit float format, then random bit patterns.
std::vector<uint16_t> test_values(bool half, size_t n, std::mt19937& rng) {
  std::vector<uint16_t> v = half ? std::vector<uint16_t>{0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0x7BFF,
                                                          0xFBFF, 0x7BFE, 0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0x7D55}
                                 : std::vector<uint16_t>{0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080, 0x3F80, 0x7F7F,
                                                          0xFF7F, 0x7F7E, 0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F81, 0x7FA5};
  while (v.size() < n) v.push_back(static_cast<uint16_t>(rng()));
  v.resize(n);
  return v;
}

// Bits of a loop's result against c10's. A NaN result is any NaN of c10's form (0x7E00 with a
// sign for float16, 0x7FC0 for bfloat16): when both inputs are NaNs of opposite signs, which sign
// the sum keeps depends on the order in which the compiler puts the operands of the addition.
bool same_result(uint16_t got, uint16_t want, bool half) {
  const bool want_nan = half ? (want & 0x7FFF) > 0x7C00 : (want & 0x7FFF) > 0x7F80;
  if (!want_nan) return got == want;
  return half ? (got & 0x7FFF) == 0x7E00 : got == 0x7FC0;
}

// The dispatched loops against c10 per element, for every length up to 100 and a long one.
template <typename T>
void check_loops(bool half, const char* name) {
  std::mt19937 rng(half ? 1 : 2);
  const float lams[] = {0.3f, 0.5f, 1.0f, 0.0f, 0.9999999f, 1e-8f};
  auto blend = [&](uint16_t mine, uint16_t theirs, float lam, float rest) {
    const float own = c10_widen(mine, half) * lam;
    const float their = c10_widen(theirs, half) * rest;
    return c10_narrow(own + their, half);
  };
  long bad = 0, checked = 0;
  std::vector<int64_t> lengths;
  for (int64_t n = 0; n <= 100; ++n) lengths.push_back(n);
  lengths.push_back(4099);
  for (int64_t n : lengths) {
    for (float lam : lams) {
      const float rest = 1.f - lam, lam_b = 1.f - lam * 0.5f, rest_b = 1.f - lam_b;
      const std::vector<uint16_t> a0 = test_values(half, n, rng), b0 = test_values(half, n, rng);
      std::vector<uint16_t> a = a0, b = b0;
      blend_into(reinterpret_cast<T*>(a.data()), reinterpret_cast<const T*>(b.data()), n, lam, rest);
      for (int64_t j = 0; j < n; ++j) bad += !same_result(a[j], blend(a0[j], b0[j], lam, rest), half) || b[j] != b0[j];
      a = a0;
      blend_pair(reinterpret_cast<T*>(a.data()), reinterpret_cast<T*>(b.data()), n, lam, rest, lam_b, rest_b);
      for (int64_t j = 0; j < n; ++j)
        bad += !same_result(a[j], blend(a0[j], b0[j], lam, rest), half) ||
               !same_result(b[j], blend(b0[j], a0[j], lam_b, rest_b), half);
      a = a0;
      b = b0;
      blend_and_take(reinterpret_cast<T*>(a.data()), reinterpret_cast<T*>(b.data()), n, lam, rest);
      for (int64_t j = 0; j < n; ++j) bad += !same_result(a[j], blend(a0[j], b0[j], lam, rest), half) || b[j] != a0[j];
      checked += 5 * n;
    }
  }
  const std::string what = std::string(name) + " blend_into / blend_pair / blend_and_take";
  report(what.c_str(), bad, checked);
}

void check_narrow_row() {
  std::mt19937 rng(3);
  long bad = 0, checked = 0;
  for (int64_t n = 0; n <= 100; ++n) {
    std::vector<float> src(n);
    for (int64_t j = 0; j < n; ++j) {
      const uint32_t u = static_cast<uint32_t>(rng());
      // Mostly values in float16's range (where the rounding matters), some of any magnitude.
      src[j] = j % 4 ? bits16::f32_from_bits((u & 0x87FFFFFFu) | 0x30000000u) : bits16::f32_from_bits(u);
    }
    std::vector<c10::Half> dst(n);
    narrow_row(dst.data(), src.data(), n);
    for (int64_t j = 0; j < n; ++j) bad += dst[j].x != c10_narrow(src[j], true);
    checked += n;
  }
  report("narrow_row (float32 -> float16 rows)", bad, checked);
}

}  // namespace

int main(int argc, char** argv) {
  const bool full = argc > 1 && std::string(argv[1]) == "full";
  check_bits16(full);
#ifdef FASTMIX_X86_LANES
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v3")) {
    check_HalfAvx2(full);
    check_BFloat16Avx2(full);
    check_ByteAvx2();
  } else {
    std::printf("AVX2 lanes: not checked, the CPU lacks x86-64-v3\n");
  }
  if (__builtin_cpu_supports("x86-64-v4")) {
    check_HalfAvx512(full);
    check_BFloat16Avx512(full);
    check_ByteAvx512();
  } else {
    std::printf("AVX-512 lanes: not checked, the CPU lacks x86-64-v4\n");
  }
#endif
  check_loops<c10::Half>(true, "float16");
  check_loops<c10::BFloat16>(false, "bfloat16");
  check_narrow_row();
  std::printf("%s\n", g_failed ? "FAILED" : "all ok");
  return g_failed ? 1 : 0;
}
