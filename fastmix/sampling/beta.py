"""Beta(alpha, alpha) lambdas, drawn with numpy's Generator.

numpy's ``Generator.beta`` is exact for every alpha > 0 (for alpha < 1 it uses Johnk's algorithm
on logarithms, so a tiny alpha gives 0s and 1s, never NaN) and costs microseconds per batch, where
a rejection sampler built from torch ops cost about 0.3 ms per call.
"""
from __future__ import annotations

import numpy as np
import torch

from .streams import as_numpy_generator


def beta_draws(alpha: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) float64 samples of Beta(alpha, alpha) in [0, 1], for alpha > 0."""
    return rng.beta(alpha, alpha, n)


def sample_beta(alpha: float, n: int, generator: "np.random.Generator | torch.Generator") -> torch.Tensor:
    """(n,) float64 tensor of Beta(alpha, alpha) samples (beta_draws for either kind of generator)."""
    return torch.from_numpy(beta_draws(alpha, n, as_numpy_generator(generator)))
