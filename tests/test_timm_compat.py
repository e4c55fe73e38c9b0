"""timm's users switch with one import: fastmix.Mixup and fastmix.FastCollateMixup take timm's
arguments, mix exactly as timm's own code does with the same drawn lambda and box, and draw with
the same statistics, knob for knob.

timm's package import fails wherever torchvision does not match torch; its timm/data/mixup.py
loads alone (fastmix.bench.peers). CI installs timm (--no-deps, pinned), so these run there.
"""
import inspect

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp

import fastmix
from fastmix.bench.peers import load_timm_mixup
from fastmix.sampling.params import MixKind, MixParams

from .helpers import COMPILED_BACKENDS

timm_mixup, timm_how = load_timm_mixup()
pytestmark = pytest.mark.skipif(timm_mixup is None, reason=f"timm not loadable: {timm_how}")
BACKENDS = COMPILED_BACKENDS + ["torch"]
KNOB_SETS = {
    "mixup": dict(mixup_alpha=1.0),
    "cutmix": dict(mixup_alpha=0.0, cutmix_alpha=1.0),
    "both, prob 0.7": dict(mixup_alpha=0.8, cutmix_alpha=1.0, prob=0.7, switch_prob=0.4),
    "minmax": dict(mixup_alpha=0.0, cutmix_minmax=(0.2, 0.8)),
    "no correct_lam, smoothing 0": dict(mixup_alpha=0.0, cutmix_alpha=0.5, correct_lam=False, label_smoothing=0.0),
}


def test_the_constructors_take_every_timm_argument_with_timms_defaults():
    for ours, theirs in ((fastmix.Mixup, timm_mixup.Mixup), (fastmix.FastCollateMixup, timm_mixup.FastCollateMixup)):
        timm_params = inspect.signature(theirs).parameters
        our_params = inspect.signature(ours).parameters
        for name, parameter in timm_params.items():
            assert name in our_params, f"{ours.__name__} lacks timm's argument {name}"
            assert our_params[name].default == parameter.default, name
        mine, timms = ours(num_classes=5, multi_label=False), theirs(num_classes=5, multi_label=False)
        for attribute in ("mixup_alpha", "cutmix_alpha", "cutmix_minmax", "mix_prob", "switch_prob", "label_smoothing",
                          "num_classes", "multi_label", "mode", "correct_lam", "mixup_enabled"):
            assert getattr(mine, attribute) == getattr(timms, attribute), attribute


class RecordedDraws:
    """timm's draws for one call, recorded as it makes them. The drawn (and the box-corrected)
    lambda is rounded to float32, what a MixParams holds, before timm uses it, so both sides mix
    with the same number (timm's batch mode otherwise weighs with 1 - lam rounded from a double:
    1 ulp apart)."""

    def __init__(self, mixer, monkeypatch):
        self.decisions, self.boxes = None, []
        bbox = timm_mixup.cutmix_bbox_and_lam

        def recording_bbox(*args, **kwargs):
            box, lam = bbox(*args, **kwargs)
            self.boxes.append((box, float(np.float32(lam))))
            return self.boxes[-1]

        monkeypatch.setattr(timm_mixup, "cutmix_bbox_and_lam", recording_bbox)
        per_batch, per_elem = mixer._params_per_batch, mixer._params_per_elem

        def batch_draw():
            lam, use_cutmix = per_batch()
            self.decisions = ([float(np.float32(lam))], [use_cutmix])
            return self.decisions[0][0], use_cutmix

        def elem_draw(n):
            lam, use_cutmix = per_elem(n)
            self.decisions = (lam.copy(), use_cutmix.copy())  # already float32
            return lam, use_cutmix

        mixer._params_per_batch, mixer._params_per_elem = batch_draw, elem_draw

    def params(self, mode: str, batch: int) -> MixParams:
        """The same draws as a fastmix MixParams (timm's partner of i is always B-1-i)."""
        groups = {"batch": [list(range(batch))], "elem": [[i] for i in range(batch)],
                  "half": [[i] for i in range(batch // 2)], "pair": [[i, batch - 1 - i] for i in range(batch // 2)]}[mode]
        lam, kind = torch.ones(batch), torch.zeros(batch, dtype=torch.uint8)
        box = torch.zeros(batch, 4, dtype=torch.int64)
        boxes = iter(self.boxes)
        for group, drawn, use_cutmix in zip(groups, *self.decisions):
            if drawn == 1.0:
                continue  # timm leaves the sample alone
            kind[group] = int(MixKind.PASTE if use_cutmix else MixKind.BLEND)
            if use_cutmix:
                (y0, y1, x0, x1), drawn = next(boxes)
                box[group] = torch.tensor([int(y0), int(y1), int(x0), int(x1)])
            lam[group] = float(drawn)
        return MixParams(torch.arange(batch - 1, -1, -1), lam, kind, box)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("knobs", KNOB_SETS.values(), ids=KNOB_SETS.keys())
def test_mixup_mixes_float_images_and_targets_exactly_as_timm(backend, mode, knobs, monkeypatch):
    for seed in range(4):
        np.random.seed(seed)
        generator = torch.Generator().manual_seed(seed)
        images = torch.rand(8, 3, 16, 12, generator=generator)
        labels = torch.randint(0, 10, (8,), generator=generator)
        theirs = timm_mixup.Mixup(mode=mode, num_classes=10, **knobs)
        draws = RecordedDraws(theirs, monkeypatch)
        timm_images, timm_targets = theirs(images.clone(), labels)
        params = draws.params(mode, 8)
        assert torch.equal(fastmix.mix_(images.clone(), params, backend=backend), timm_images)
        smoothing = knobs.get("label_smoothing", 0.1)
        assert torch.equal(fastmix.mix_targets(labels, params, 10, smoothing, backend=backend), timm_targets)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["batch", "pair", "elem", "half"])
@pytest.mark.parametrize("knobs", KNOB_SETS.values(), ids=KNOB_SETS.keys())
def test_fast_collate_mixup_returns_what_timms_returns(backend, mode, knobs, monkeypatch):
    """uint8 within timm's rounding rule (np.rint of the float32 blend: half to even), which
    fastmix's uint8 blend follows, so the bytes are equal; targets exactly."""
    for seed in range(4):
        np.random.seed(seed)
        rng = np.random.default_rng(seed)
        batch = [(rng.integers(0, 256, (3, 16, 12), dtype=np.uint8), int(rng.integers(10))) for _ in range(8)]
        theirs = timm_mixup.FastCollateMixup(mode=mode, num_classes=10, **knobs)
        draws = RecordedDraws(theirs, monkeypatch)
        timm_images, timm_targets = theirs([(image.copy(), label) for image, label in batch])
        ours = fastmix.FastCollateMixup(mode=mode, num_classes=10, backend=backend, **knobs)
        params = draws.params(mode, 8)
        if mode == "half":
            params = MixParams(params.partner, params.lam, params.kind, params.box)
        monkeypatch.setattr(ours, "sample", lambda *args: params)
        images, targets = ours(batch)
        assert images.dtype == torch.uint8 and images.shape == timm_images.shape
        assert torch.equal(images, timm_images)
        assert torch.equal(targets, timm_targets)


def test_half_mode_draws_for_the_first_half_and_returns_it():
    collate = fastmix.FastCollateMixup(mixup_alpha=1.0, mode="half", num_classes=10, seed=0)
    batch = [(np.full((3, 4, 4), 10 * i, dtype=np.uint8), i) for i in range(6)]
    images, targets = collate(batch)
    params = collate.mixup.last_params
    assert images.shape == (3, 3, 4, 4) and targets.shape == (3, 10)
    assert bool(params.mixed()[:3].all()) and not bool(params.mixed()[3:].any())
    assert params.partner[:3].tolist() == [5, 4, 3]


@pytest.mark.parametrize("backend", BACKENDS)
def test_multi_label_targets_are_smoothed_towards_one_half_as_in_timm(backend, monkeypatch):
    np.random.seed(0)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(6, 3, 8, 8, generator=generator)
    labels = (torch.rand(6, 10, generator=generator) > 0.7).float()
    theirs = timm_mixup.Mixup(mixup_alpha=1.0, mode="elem", num_classes=10, multi_label=True)
    draws = RecordedDraws(theirs, monkeypatch)
    _, timm_targets = theirs(images.clone(), labels)
    ours = fastmix.Mixup(mixup_alpha=1.0, mode="elem", num_classes=10, multi_label=True, backend=backend)
    monkeypatch.setattr(fastmix.mixup, "sample_params", lambda *args, **kwargs: draws.params("elem", 6))
    _, targets = ours(images.clone(), labels)
    assert torch.equal(targets, timm_targets)
    with pytest.raises(ValueError, match=r"labels: expected dense multi-label targets of shape \(6, 10\)"):
        ours(images.clone(), torch.arange(6))


# -- the same statistics, knob for knob (2,000 draws each, fixed seeds) ----------------------------


def timm_draws(knobs: dict, count: int, size: int = 32):
    """(lam after the box, mixed, cutmix) of ``count`` batch-mode draws of timm's own code."""
    np.random.seed(123)
    mixer = timm_mixup.Mixup(num_classes=10, **knobs)
    lams, mixed, cutmix = [], [], []
    for _ in range(count):
        lam, use_cutmix = mixer._params_per_batch()
        if lam != 1.0 and use_cutmix:
            _, lam = timm_mixup.cutmix_bbox_and_lam((size, size), lam, mixer.cutmix_minmax, mixer.correct_lam)
        lams.append(float(lam))
        mixed.append(lam != 1.0 or use_cutmix)
        cutmix.append(bool(use_cutmix))
    return np.array(lams), np.array(mixed), np.array(cutmix)


def fastmix_draws(knobs: dict, count: int, size: int = 32):
    mix = fastmix.Mixup(num_classes=10, seed=7, **knobs)
    lams, mixed, cutmix = [], [], []
    for _ in range(count):
        params = mix.sample(2, size, size)
        lams.append(float(params.lam[0]))
        mixed.append(int(params.kind[0]) != MixKind.NONE)
        cutmix.append(int(params.kind[0]) == MixKind.PASTE)
    return np.array(lams), np.array(mixed), np.array(cutmix)


@pytest.mark.parametrize("knobs", KNOB_SETS.values(), ids=KNOB_SETS.keys())
def test_lambdas_mixed_fractions_and_cutmix_choices_match_timms(knobs):
    """Two-sample KS tests at p > 0.001 (15 of them: a 1.5% false alarm at most, and the seeds are
    fixed); the minmax box rule, which KS over 2,000 draws barely sees, is checked exactly below."""
    timm_lam, timm_mixed, timm_cut = timm_draws(knobs, 2000)
    lam, mixed, cut = fastmix_draws(knobs, 2000)
    for name, ours, theirs in (("lam", lam, timm_lam), ("mixed", mixed, timm_mixed), ("cutmix", cut, timm_cut)):
        result = ks_2samp(ours.astype(float), theirs.astype(float))
        assert result.pvalue > 0.001, f"{name}: KS p={result.pvalue:.4f}, means {ours.mean():.4f} / {theirs.mean():.4f}"


def test_cutmix_minmax_boxes_follow_timms_rule():
    """timm (1.0.31): sides uniform in [int(min * H), int(max * H)), positions uniform in [0, H - side]."""
    mix = fastmix.Mixup(mixup_alpha=0.0, cutmix_minmax=(0.2, 0.8), num_classes=10, seed=0)
    sides, starts = [], []
    for _ in range(3000):
        y0, y1, x0, x1 = mix.sample(2, 32, 20).box[0].tolist()
        sides.append((y1 - y0, x1 - x0))
        starts.append((y0, x0))
    sides, starts = np.array(sides), np.array(starts)
    assert set(sides[:, 0]) == set(range(6, 25)) and set(sides[:, 1]) == set(range(4, 16))
    assert (starts[:, 0] + sides[:, 0] <= 32).all() and (starts[:, 0] + sides[:, 0] == 32).any(), "the edge is reachable"
