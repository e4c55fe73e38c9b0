"""ResizeMix's sampling (Qin et al. 2020, as mmpretrain's ``ResizeMix`` draws it): lambda ~
Beta(alpha, alpha) mapped to [lam_min, lam_max], a CutMix box of sides sqrt(1 - lambda) * (H, W)
around a uniform centre, clipped, and lambda corrected to the fraction left uncovered. Checked
against mmpretrain's own code run beside it (its batch_augments files loaded alone, as timm's
mixup.py is), and against the formula where it cannot load; and what fastmix does with the draw
equals what mmpretrain does with the same box and partners, up to the bilinear rule's rounding."""
import numpy as np
import pytest
import scipy.stats
import torch

import fastmix
from fastmix import MixKind, MixMethod, MixParams
from fastmix.bench.peers import load_mmpretrain_batch_augments

from .helpers import EVERY_BACKEND, reference_mix_

mmpretrain, mmpretrain_how = load_mmpretrain_batch_augments()
needs_mmpretrain = pytest.mark.skipif(mmpretrain is None, reason=mmpretrain_how)

DRAWS = 2000
SIZE = 224


def fastmix_draws(alpha, lam_min, lam_max, correct_lam=True):
    """(lam, box) of DRAWS batch-mode draws of a fastmix Mixup with only ResizeMix on."""
    mix = fastmix.Mixup(mixup_alpha=0.0, resizemix_alpha=alpha, resizemix_lam_min=lam_min, resizemix_lam_max=lam_max,
                        correct_lam=correct_lam, num_classes=10, seed=7)
    lams, boxes = [], []
    for _ in range(DRAWS):
        params = mix.sample(2, SIZE, SIZE)
        assert int(params.method[0]) == MixMethod.RESIZEMIX and int(params.kind[0]) == MixKind.RESIZE
        lams.append(float(params.lam[0]))
        boxes.append(params.box[0].tolist())
    return np.array(lams), np.array(boxes)


def mmpretrain_draws(alpha, lam_min, lam_max):
    """(lam, box) of DRAWS calls of mmpretrain's ResizeMix.mix on a (2, 1, 224, 224) batch, as its
    own code drew them (its cutmix_bbox_and_lam recorded on the way)."""
    resizemix = mmpretrain.ResizeMix(alpha=alpha, lam_min=lam_min, lam_max=lam_max)
    drawn = []
    draw_box = resizemix.cutmix_bbox_and_lam

    def recorded(shape, lam, count=None):
        box, corrected = draw_box(shape, lam, count)
        drawn.append((corrected, box))
        return box, corrected

    resizemix.cutmix_bbox_and_lam = recorded
    np.random.seed(11)
    images, scores = torch.zeros(2, 1, SIZE, SIZE), torch.eye(2)
    for _ in range(DRAWS):
        resizemix.mix(images, scores)
    return np.array([lam for lam, _ in drawn]), np.array([box for _, box in drawn])


def pasted_area_and_sides(boxes):
    """(area fraction, height fraction, width fraction) of (n, 4) boxes (y0, y1, x0, x1)."""
    heights, widths = (boxes[:, 1] - boxes[:, 0]) / SIZE, (boxes[:, 3] - boxes[:, 2]) / SIZE
    return heights * widths, heights, widths


@needs_mmpretrain
@pytest.mark.parametrize("alpha, lam_min, lam_max", [(1.0, 0.1, 0.8), (0.5, 0.1, 0.8), (2.0, 0.3, 0.6)])
def test_the_pasted_area_and_the_scale_follow_mmpretrains_resizemix(alpha, lam_min, lam_max):
    ours_lam, ours_box = fastmix_draws(alpha, lam_min, lam_max)
    theirs_lam, theirs_box = mmpretrain_draws(alpha, lam_min, lam_max)
    for what, ours, theirs in zip(("area", "scale of H", "scale of W"), pasted_area_and_sides(ours_box),
                                  pasted_area_and_sides(theirs_box)):
        assert scipy.stats.ks_2samp(ours, theirs).pvalue > 1e-3, what
    assert scipy.stats.ks_2samp(ours_lam, theirs_lam).pvalue > 1e-3, "the corrected lambda"
    centres = (ours_box[:, 0] + ours_box[:, 1]) / 2, (theirs_box[:, 0] + theirs_box[:, 1]) / 2
    assert scipy.stats.ks_2samp(*centres).pvalue > 1e-3, "where the box lands"


@pytest.mark.parametrize("alpha, lam_min, lam_max", [(1.0, 0.1, 0.8), (0.5, 0.2, 0.9)])
def test_the_uncorrected_lambda_is_beta_mapped_to_the_range_as_the_paper_and_mmpretrain_write_it(alpha, lam_min,
                                                                                                    lam_max):
    lam, boxes = fastmix_draws(alpha, lam_min, lam_max, correct_lam=False)
    assert lam.min() >= np.float32(lam_min) and lam.max() <= np.float32(lam_max)
    mapped = scipy.stats.beta(alpha, alpha, loc=lam_min, scale=lam_max - lam_min)
    assert scipy.stats.kstest(lam, mapped.cdf).pvalue > 1e-3
    # the box has sides int(sqrt(1 - lam) * (H, W)) where it does not touch the border, and is only
    # shorter where clipped (1: lam is kept in float32, the box drawn from it in float64)
    full = (np.sqrt(1.0 - lam.astype(np.float64)) * SIZE).astype(np.int64)
    for side, start, stop in ((boxes[:, 1] - boxes[:, 0], boxes[:, 0], boxes[:, 1]),
                              (boxes[:, 3] - boxes[:, 2], boxes[:, 2], boxes[:, 3])):
        inside = (start > 0) & (stop < SIZE)
        assert np.all(side <= full + 1) and np.all(np.abs(side[inside] - full[inside]) <= 1) and inside.mean() > 0.2


def test_with_correct_lam_the_target_weight_is_the_fraction_left_uncovered():
    lam, boxes = fastmix_draws(1.0, 0.1, 0.8)
    area, _, _ = pasted_area_and_sides(boxes)
    assert np.array_equal(lam, (1.0 - area).astype(np.float32))


def test_a_range_of_one_value_gives_one_box_size_and_cutmix_minmax_does_not_reach_resizemix():
    mix = fastmix.Mixup(mixup_alpha=0.0, cutmix_minmax=(0.05, 0.1), resizemix_alpha=1.0, resizemix_lam_min=0.75,
                        resizemix_lam_max=0.75, method_probs={"resizemix": 1.0}, num_classes=10, seed=1)
    longest = 0
    for _ in range(50):
        params = mix.sample(4, 40, 40)
        sides = params.box[:, 1::2] - params.box[:, 0::2]
        assert bool((sides <= 20).all()), "sqrt(1 - 0.75) * 40 = 20, or less where clipped (minmax: 2 to 4)"
        assert torch.equal(params.lam, (1 - sides.prod(dim=1).double() / 1600).float())
        longest = max(longest, int(sides.max()))
    assert longest == 20


@needs_mmpretrain
@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_fastmix_mixes_as_mmpretrains_resizemix_given_the_same_box_and_partners(backend, monkeypatch):
    generator = torch.Generator().manual_seed(3)
    images = torch.rand(8, 3, 32, 40, generator=generator)
    scores = torch.eye(8)[torch.randint(0, 8, (8,), generator=generator)]
    partner = torch.tensor([3, 5, 0, 7, 1, 6, 2, 4])  # no sample is its own partner
    monkeypatch.setattr(torch, "randperm", lambda n, *args, **kwargs: partner.clone())
    resizemix = mmpretrain.ResizeMix(alpha=1.0)
    drawn = []
    draw_box = resizemix.cutmix_bbox_and_lam

    def recorded(shape, lam, count=None):
        drawn.append(draw_box(shape, lam, count))
        return drawn[-1]

    resizemix.cutmix_bbox_and_lam = recorded
    np.random.seed(5)
    theirs, their_scores = resizemix.mix(images.clone(), scores)
    (y0, y1, x0, x1), lam = drawn[0]
    params = MixParams(partner=partner, lam=torch.full((8,), lam, dtype=torch.float32),
                       kind=torch.full((8,), int(MixKind.RESIZE), dtype=torch.uint8),
                       box=torch.tensor([[y0, y1, x0, x1]] * 8))
    ours = images.clone()
    fastmix.mix_(ours, params, backend=backend)
    assert torch.equal(ours, reference_mix_(images.clone(), params)), "every backend is the reference"
    # torch's bilinear rounds the source coordinate in another order: <= a few ulps of the values
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    outside = torch.ones(32, 40, dtype=torch.bool)
    outside[y0:y1, x0:x1] = False
    assert torch.equal(ours[:, :, outside], images[:, :, outside]), "only the box is written"
    targets = fastmix.mix_targets(scores, params, 8, smoothing=0.0)
    torch.testing.assert_close(targets, their_scores.float(), rtol=0, atol=1e-6)
