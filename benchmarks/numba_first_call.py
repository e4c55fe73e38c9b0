"""First-call latency of the numba backend in a fresh process: with a cold cache (an empty
NUMBA_CACHE_DIR: every kernel is compiled) and a warm one (the same directory, second process:
every kernel is loaded from disk).

    python benchmarks/numba_first_call.py [--threads 1]

Per process: the import of fastmix and numba, then the first call of each op a training job makes
(Mixup on a float32 batch and its soft targets, and the uint8 collate of HWC samples), each timed
on its own, then a second call of the same for comparison.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
start = time.perf_counter()
import numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
import fastmix
from fastmix.backends.numba import unavailable_reason
assert unavailable_reason() is None, unavailable_reason()
times = {"import fastmix + numba": time.perf_counter() - start}
images = torch.rand(32, 3, 224, 224)
labels = torch.randint(0, 1000, (32,))
mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=1000, seed=0, backend="numba")
params = mix.sample(32, 224, 224)
rng = np.random.default_rng(0)
samples = [(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8), i) for i in range(32)]
collate = fastmix.MixupCollate(fastmix.Mixup(mixup_alpha=0.8, num_classes=1000, seed=0, backend="numba"))
ops = {
    "mix_ float32 (mixup)": lambda: fastmix.mix_(images, params, backend="numba"),
    "mix_targets": lambda: fastmix.mix_targets(labels, params, 1000, 0.1, backend="numba"),
    "collate uint8 HWC": lambda: collate(samples),
}
for name, fn in ops.items():
    t = time.perf_counter(); fn(); times[name] = time.perf_counter() - t
for name, fn in ops.items():
    t = time.perf_counter(); fn(); times[name + " (2nd call)"] = time.perf_counter() - t
print(json.dumps(times))
"""


def run(cache_dir: str, threads: int) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, FASTMIX_BACKEND="numba")
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache_dir:
        cold = run(cache_dir, args.threads)
        warm = run(cache_dir, args.threads)
    print(f"first-call latency, fresh process, {args.threads} thread(s)  (seconds)")
    print(f"{'':38s} {'cold cache':>11s} {'warm cache':>11s}")
    for name in cold:
        print(f"{name:38s} {cold[name]:11.3f} {warm[name]:11.3f}")
    total = lambda t: sum(v for k, v in t.items() if "2nd" not in k)  # noqa: E731
    print(f"{'total to the first batch':38s} {total(cold):11.3f} {total(warm):11.3f}")


if __name__ == "__main__":
    main()
