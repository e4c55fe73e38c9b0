"""Batch-mode ResizeMix in place (MixKind.RESIZE) beside one in-place pass over the same batch and
mmpretrain's formulation (F.interpolate(x[index]) pasted by a slice), 256x3x224x224 float32, one
thread; mmpretrain's draws (lam ~ Beta(1, 1) scaled to [0.1, 0.8], its CutMix box), 7 fresh draws,
the same for every row, 5 interleaved rounds, medians. Run: python benchmarks/resize_inplace.py"""
import time, numpy as np, torch, torch.nn.functional as F
from fastmix.backends.numba import mix_numba
torch.set_num_threads(1)
B, C, H, W = 256, 3, 224, 224
x = torch.rand(B, C, H, W)
rng = np.random.default_rng(0)
draws = []
for _ in range(7):  # mmpretrain's draw: lam ~ Beta(1,1) in [0.1, 0.8], CutMix box, one per batch, flip partners
    lam = rng.beta(1.0, 1.0) * 0.7 + 0.1
    r = np.sqrt(1 - lam); ch, cw = int(H * r), int(W * r)
    cy, cx = rng.integers(0, H), rng.integers(0, W)
    y0, y1 = np.clip([cy - ch // 2, cy + ch // 2], 0, H); x0, x1 = np.clip([cx - cw // 2, cx + cw // 2], 0, W)
    draws.append((int(y0), int(y1), int(x0), int(x1)))
partner = torch.arange(B).view(-1, 2).flip(1).reshape(-1)
def params(d):
    return partner, torch.full((B,), 0.5), torch.full((B,), 4, dtype=torch.uint8), torch.tensor([d] * B)
def cpp(d): torch.ops.fastmix.mix_(x, *params(d), None, [], None)
def numba(d): mix_numba.mix_(x, *params(d))
def floor(d): x.mul_(1.0)
def naive(d):
    y0, y1, x0, x1 = d
    if y1 > y0 and x1 > x0:
        x[:, :, y0:y1, x0:x1] = F.interpolate(x[partner], size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)
rows = {"pass (x.mul_(1))": floor, "cpp": cpp, "numba": numba, "naive (mmpretrain)": naive}
for f in rows.values(): f(draws[0])
times = {k: [] for k in rows}
for rnd in range(5):
    for k, f in rows.items():
        t = time.perf_counter()
        for d in draws: f(d)
        times[k].append((time.perf_counter() - t) / len(draws) * 1e3)
med = {k: float(np.median(v)) for k, v in times.items()}
for k, v in med.items():
    print(f"{k:22s} {v:8.2f} ms  {v / med['pass (x.mul_(1))']:.2f}x pass  naive/this {med['naive (mmpretrain)'] / v:.2f}x")
print("box fractions", [round((d[1]-d[0])*(d[3]-d[2])/(H*W), 2) for d in draws])
