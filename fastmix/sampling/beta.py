"""Beta(alpha, alpha) samples drawn from a torch.Generator.

torch.distributions.Beta cannot take a generator, and numpy's global RNG is shared state, so lambda
is drawn here: Gamma by Marsaglia & Tsang's method (vectorised rejection), Beta as
G1 / (G1 + G2) computed from log-Gammas so that small alphas do not underflow.
"""
from __future__ import annotations

import math

import torch


def sample_log_gamma(shape: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """(n,) float64 samples of log(X), X ~ Gamma(shape, 1), for shape > 0."""
    boost = shape < 1.0  # Gamma(a) = Gamma(a + 1) * U^(1/a)
    a = shape + 1.0 if boost else shape
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = torch.empty(n, dtype=torch.float64)
    todo = torch.arange(n)
    while len(todo):
        m = len(todo)
        x = torch.randn(m, dtype=torch.float64, generator=generator)
        u = torch.rand(m, dtype=torch.float64, generator=generator)
        v = (1.0 + c * x) ** 3
        log_v = torch.log(v.clamp_min(1e-300))
        accept = (v > 0) & (torch.log(u) < 0.5 * x * x + d - d * v + d * log_v)
        out[todo[accept]] = math.log(d) + log_v[accept]
        todo = todo[~accept]
    if boost:
        u = torch.rand(n, dtype=torch.float64, generator=generator)
        out += torch.log(u) / shape
    return out


def sample_beta(alpha: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """(n,) float64 samples of Beta(alpha, alpha) in [0, 1], for alpha > 0."""
    log_a = sample_log_gamma(alpha, n, generator)
    log_b = sample_log_gamma(alpha, n, generator)
    return torch.sigmoid(log_a - log_b)  # G_a / (G_a + G_b)
