"""Who is mixed with whom: fixed partner maps (the DataLoader has shuffled the batch already)."""
from __future__ import annotations

import numpy as np
import torch


def derangement_partners(batch_size: int) -> torch.Tensor:
    """(B,) int64 partners with no sample paired with itself (for B >= 2).

    The batch is flipped as in timm (i <-> B-1-i, pairs that swap content); for odd B the middle
    sample, which a flip pairs with itself, joins its neighbours in a 3-cycle
    (m-1 -> m+1 -> m -> m-1). The DataLoader has shuffled the batch, so a fixed pattern is as
    random as a random permutation and costs no draws.
    """
    partner = np.arange(batch_size - 1, -1, -1, dtype=np.int64)
    if batch_size % 2 == 1 and batch_size >= 3:
        m = batch_size // 2
        partner[m + 1] = m
        partner[m] = m - 1
    return torch.from_numpy(partner)


def pair_partners(batch_size: int) -> torch.Tensor:
    """(B,) int64 partners for pair mode: i <-> B-1-i.

    For odd B the middle sample m has no pair: it is mixed one way with sample m-1 (it reads
    m-1, nobody reads it), with a lambda and box of its own. For B = 1 it stays alone.
    """
    partner = np.arange(batch_size - 1, -1, -1, dtype=np.int64)
    if batch_size % 2 == 1 and batch_size >= 3:
        partner[batch_size // 2] = batch_size // 2 - 1
    return torch.from_numpy(partner)
