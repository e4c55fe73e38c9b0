// Which of the hand-written vector rows this CPU runs, chosen at run time (the extension is built
// for any x86-64; the multiversioned loops choose for themselves). FASTMIX_CPU_FEATURES in the
// environment, read once, narrows the choice: "avx512" takes the rows of an AVX-512 CPU without
// VBMI, "avx2" those of a CPU with AVX2 and no AVX-512, "baseline" those of a CPU with neither (how
// the tests reach them on a CPU with all).
#pragma once

#include <cstdlib>
#include <cstring>

// A loop compiled for AVX-512, AVX2 and baseline x86-64, picked at load time (GCC's target_clones):
// the loops simple enough for the compiler to vectorise (blend_math.h, order_statistics.h).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FASTMIX_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FASTMIX_MULTIVERSION
#endif

namespace fastmix {
namespace cpu {

// The features the environment allows: 0 baseline, 1 AVX2, 2 AVX-512, 3 and VBMI.
inline int allowed_features() {
  const char* setting = std::getenv("FASTMIX_CPU_FEATURES");
  if (setting == nullptr) return 3;
  if (std::strcmp(setting, "baseline") == 0) return 0;
  if (std::strcmp(setting, "avx2") == 0) return 1;
  return std::strcmp(setting, "avx512") == 0 ? 2 : 3;
}

// AVX2 (the resize's 8-lane rows, on CPUs without AVX-512).
inline bool cpu_has_avx2() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool supported = allowed_features() >= 1 && __builtin_cpu_supports("avx2");
  return supported;
#else
  return false;
#endif
}

// AVX-512 F, BW and VL.
inline bool cpu_has_avx512() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool supported = allowed_features() >= 2 && __builtin_cpu_supports("avx512f") &&
                                __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return supported;
#else
  return false;
#endif
}

// And VBMI's byte permutes (vpermb).
inline bool cpu_has_avx512_vbmi() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool supported = cpu_has_avx512() && allowed_features() >= 3 && __builtin_cpu_supports("avx512vbmi");
  return supported;
#else
  return false;
#endif
}

}  // namespace cpu
}  // namespace fastmix
