"""FMix and ClassMix params have the statistics of the papers and their reference code, with fixed
seeds: FMix's lambda ~ Beta(alpha, alpha) and its mask keeps exactly that fraction of pixels, the
mask is low-frequency Fourier noise of the given decay power (isotropic, as the paper defines it);
ClassMix takes exactly the partner's pixels of ceil(n / 2) of its n classes, each class equally
likely, and its pasted fractions follow the authors' sampling (run beside it, as written in the
paper's code: ``np.random.choice(n, ceil(n / 2), replace=False)``). The method choice follows the
weights; with only Mixup and CutMix on, switch_prob keeps timm's meaning.

Only params are sampled here (on the CPU, no image data)."""
import math

import numpy as np
import pytest
import scipy.stats
import torch

import fastmix
from fastmix import MixKind, MixMethod, MixParams
from fastmix.sampling.classmix import classmix_pixel_masks
from fastmix.sampling.fmix import fmix_pixel_masks, gaussian_spectrum, low_frequency_images, spectrum_scale

SIGMAS = 4


def assert_frequency(successes, trials, p, what):
    sd = math.sqrt(p * (1 - p) / trials)
    observed = successes / trials
    assert abs(observed - p) <= SIGMAS * sd, f"{what}: {observed:.4f} over {trials} trials, expected {p} +- {SIGMAS * sd:.4f}"


def own_fraction(params: MixParams) -> torch.Tensor:
    """(B,) the fraction of each sample's pixels that its pixel mask leaves its own."""
    return 1.0 - params.pixel_masks().double().mean(dim=(1, 2))


# -- FMix ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_fmix_lambda_is_beta_and_the_mask_keeps_exactly_that_fraction(alpha):
    mix = fastmix.Mixup(mixup_alpha=0.0, fmix_alpha=alpha, mode="elem", num_classes=10, seed=3)
    lams = []
    for _ in range(250):  # 2,000 masks
        params = mix.sample(8, 16, 20)
        assert bool((params.kind == int(MixKind.MASK)).all()) and bool((params.method == int(MixMethod.FMIX)).all())
        fraction = own_fraction(params)
        assert torch.equal(params.lam, fraction.float()), "the target weight is the kept fraction as computed"
        lams.append(fraction)
    lam = torch.cat(lams).numpy()
    # (the kept fraction is a count over 320 pixels: a KS distance of at most 1/320 from the draw)
    assert scipy.stats.kstest(lam, scipy.stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    wrong = 2 * alpha
    assert scipy.stats.kstest(lam, scipy.stats.beta(wrong, wrong).cdf).pvalue < 1e-3, "the test has power"


def test_fmix_batch_mode_draws_one_mask_for_the_batch_as_one_plane():
    mix = fastmix.Mixup(mixup_alpha=0.0, fmix_alpha=1.0, num_classes=10, seed=4)
    params = mix.sample(16, 12, 12)
    assert params.pixel_mask.shape == (16, 12, 12) and params.pixel_mask.stride(0) == 0
    assert bool((params.lam == params.lam[0]).all())
    moved = params.to("cpu")
    assert moved.pixel_mask.stride(0) == 0, "a move keeps one plane"
    lams = [float(mix.sample(4, 10, 10).lam[0]) for _ in range(2000)]
    assert scipy.stats.kstest(lams, scipy.stats.beta(1.0, 1.0).cdf).pvalue > 1e-3


def test_fmix_pair_mode_gives_both_samples_of_a_pair_the_same_mask():
    mix = fastmix.Mixup(mixup_alpha=0.0, fmix_alpha=1.0, mode="pair", num_classes=10, seed=5)
    params = mix.sample(9, 8, 8)
    for i in range(4):
        assert torch.equal(params.pixel_masks()[i], params.pixel_masks()[8 - i]) and params.lam[i] == params.lam[8 - i]


def test_the_spectrums_parts_are_independent_standard_normals_times_the_scale():
    """Box-Muller's radius and angle give complex normals: real and imaginary parts each N(0, 1)
    (KS against the normal CDF), uncorrelated, with the normal's tails; scaled per frequency."""
    rng = np.random.default_rng(3)
    scale = np.linspace(0.5, 2.0, 4 * 1000, dtype=np.float32).reshape(4, 1000)
    spectrum = gaussian_spectrum((50,) + scale.shape, scale, rng)
    assert spectrum.dtype == np.complex64 and spectrum.shape == (50, 4, 1000)
    unit = spectrum / scale
    for part in (unit.real.ravel(), unit.imag.ravel()):
        assert scipy.stats.kstest(part, "norm").pvalue > 1e-3
        assert abs(np.mean(np.abs(part) > 3.0) - 2 * scipy.stats.norm.sf(3.0)) < 4e-4  # the tails
    assert abs(np.corrcoef(unit.real.ravel(), unit.imag.ravel())[0, 1]) < 0.01


def test_the_noise_has_the_papers_spectrum_one_over_f_to_the_decay_power():
    """E|F(noise)|^2 / scale^2 is the same at every frequency (2: a complex normal's real and
    imaginary parts), apart from the frequencies the real transform folds (first and last column)."""
    rng = np.random.default_rng(0)
    height, width, decay = 16, 16, 3.0
    images = low_frequency_images(4000, height, width, decay, rng).astype(np.float64)
    power = (np.abs(np.fft.rfft2(images)) ** 2).mean(axis=0)
    ratio = power[:, 1:-1] / spectrum_scale(height, width, decay)[:, 1:-1].astype(np.float64) ** 2
    assert np.allclose(ratio, 2.0, rtol=0.15), ratio


def test_the_masks_are_isotropic_as_the_paper_defines_them():
    """The authors' fmix.py takes the spectrum's real and imaginary parts from its first two rows of
    frequencies; fastmix follows the paper (the last axis). Its masks then have as many edges along
    one axis as along the other; larger decay powers give smoother masks (fewer edges)."""
    rng = np.random.default_rng(1)
    edges = {}
    for decay in (2.0, 4.0):
        masks, _ = fmix_pixel_masks(np.full(400, 0.5), 32, 32, decay, rng)
        vertical = np.abs(np.diff(masks.astype(np.int8), axis=1)).sum()
        horizontal = np.abs(np.diff(masks.astype(np.int8), axis=2)).sum()
        assert 0.85 < vertical / horizontal < 1.15, (decay, vertical, horizontal)
        edges[decay] = vertical + horizontal
    assert edges[4.0] < 0.8 * edges[2.0], edges


def test_fmix_keeps_the_brightest_pixels_of_the_noise():
    """Binarised at the lambda quantile: every kept pixel is at least as bright as every taken one."""
    lam = np.array([0.3, 0.5, 0.9])
    grey = low_frequency_images(3, 10, 12, 3.0, np.random.default_rng(2)).reshape(3, -1)
    masks, own = fmix_pixel_masks(lam, 10, 12, 3.0, np.random.default_rng(2))
    for i in range(3):
        taken = masks[i].reshape(-1).astype(bool)
        assert grey[i][~taken].min() >= grey[i][taken].max()
        assert abs(own[i] - lam[i]) <= 1 / 120 and own[i] == (~taken).sum() / 120


# -- ClassMix -----------------------------------------------------------------------------------


def segmentation_masks(batch, height, width, num_classes, rng, ignore_index=255):
    """Masks of a few rectangles of classes, with some ignored pixels."""
    masks = np.full((batch, height, width), ignore_index, dtype=np.int64)
    for i in range(batch):
        for _ in range(rng.integers(1, 6)):
            y, x = rng.integers(0, height), rng.integers(0, width)
            masks[i, y:y + rng.integers(1, height), x:x + rng.integers(1, width)] = rng.integers(0, num_classes)
    return torch.from_numpy(masks)


def reference_classmix_fraction(mask: np.ndarray, rng: np.random.Generator, ignore_index: int) -> float:
    """The paper's code: the partner's classes (np.unique, the ignored value left out), half of them
    (rounded up) chosen with np.random.choice without replacement, their pixels pasted."""
    classes = np.unique(mask)
    classes = classes[classes != ignore_index]
    chosen = classes[rng.choice(len(classes), (len(classes) + 1) // 2, replace=False)]
    return float(np.isin(mask, chosen).mean())


def test_classmix_takes_exactly_the_pixels_of_half_of_the_partners_classes():
    rng = np.random.default_rng(3)
    masks = segmentation_masks(9, 12, 14, 6, rng)
    partner = torch.arange(9).flip(0)
    taken, own = classmix_pixel_masks(masks[partner], 6, 255, np.random.default_rng(4))
    for i in range(9):
        theirs = masks[partner[i]]
        present = set(theirs.unique().tolist()) - {255}
        chosen = set(theirs[taken[i].bool()].unique().tolist())
        assert chosen <= present and len(chosen) == (len(present) + 1) // 2
        assert torch.equal(taken[i].bool(), torch.isin(theirs, torch.tensor(sorted(chosen), dtype=theirs.dtype)))
        assert own[i] == 1.0 - taken[i].double().mean()


def test_classmix_chooses_every_class_equally_and_its_fractions_match_the_papers_code():
    rng = np.random.default_rng(5)
    masks = segmentation_masks(2, 16, 16, 5, rng)
    partner = torch.tensor([1, 0])
    mix_rng, reference_rng = np.random.default_rng(6), np.random.default_rng(7)
    fractions, reference, chosen_counts = [], [], {}
    present = sorted(set(masks[1].unique().tolist()) - {255})
    for _ in range(2000):
        taken, _ = classmix_pixel_masks(masks[partner], 5, 255, mix_rng)
        fractions.append(float(taken[0].double().mean()))
        reference.append(reference_classmix_fraction(masks[1].numpy(), reference_rng, 255))
        for c in set(masks[1][taken[0].bool()].tolist()):
            chosen_counts[c] = chosen_counts.get(c, 0) + 1
    n = len(present)
    for c in present:
        assert_frequency(chosen_counts.get(c, 0), 2000, ((n + 1) // 2) / n, f"class {c} chosen")
    assert scipy.stats.ks_2samp(fractions, reference).pvalue > 1e-3


def test_classmix_through_the_mixup_sets_its_kind_method_and_weights():
    rng = np.random.default_rng(8)
    masks = segmentation_masks(6, 10, 10, 4, rng)
    mix = fastmix.Mixup(mixup_alpha=0.0, classmix=True, mode="elem", num_classes=4, seed=9)
    params = mix.sample(6, 10, 10, masks=masks)
    assert bool((params.kind == int(MixKind.MASK)).all()) and bool((params.method == int(MixMethod.CLASSMIX)).all())
    assert torch.equal(params.lam, own_fraction(params).float())
    with pytest.raises(ValueError, match=r"^masks: ClassMix \(classmix=True\) needs the batch's segmentation masks"):
        mix.sample(6, 10, 10)


# -- the choice among the methods ---------------------------------------------------------------


def methods_drawn(mix, batches, batch_size, height=8, width=8):
    return torch.cat([mix.sample(batch_size, height, width).method for _ in range(batches)])


def test_method_probs_weigh_the_per_sample_choice():
    mix = fastmix.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, fmix_alpha=1.0, mode="elem", num_classes=10, seed=10,
                        method_probs={"mixup": 1, "cutmix": 1, "fmix": 2})
    method = methods_drawn(mix, 250, 16)
    for chosen, p in ((MixMethod.MIXUP, 0.25), (MixMethod.CUTMIX, 0.25), (MixMethod.FMIX, 0.5)):
        assert_frequency(int((method == int(chosen)).sum()), len(method), p, chosen.name)


def test_batch_mode_chooses_one_method_per_batch_with_the_weights():
    mix = fastmix.Mixup(mixup_alpha=1.0, fmix_alpha=1.0, num_classes=10, seed=11, method_probs={"mixup": 3, "fmix": 1})
    firsts = []
    for _ in range(2000):
        method = mix.sample(4, 8, 8).method
        assert bool((method == method[0]).all())
        firsts.append(int(method[0]))
    assert_frequency(firsts.count(int(MixMethod.FMIX)), 2000, 0.25, "FMix batches")


def test_by_default_switch_prob_splits_mixup_and_cutmix_beside_the_other_methods():
    """Default weights: FMix 1, Mixup and CutMix 2 together, split (1 - switch_prob) : switch_prob."""
    mix = fastmix.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, fmix_alpha=1.0, switch_prob=0.25, mode="elem",
                        num_classes=10, seed=12)
    method = methods_drawn(mix, 250, 16)
    for chosen, p in ((MixMethod.MIXUP, 0.5), (MixMethod.CUTMIX, 1 / 6), (MixMethod.FMIX, 1 / 3)):
        assert_frequency(int((method == int(chosen)).sum()), len(method), p, chosen.name)


def test_only_mixup_and_cutmix_draw_as_before_the_other_methods_existed():
    """The same stream as timm's two methods (the timm parity tests replay it): no method field."""
    params = fastmix.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, num_classes=10, seed=13).sample(8, 8, 8)
    assert params.method is None and params.pixel_mask is None


def test_prob_leaves_decisions_unmixed_with_every_method():
    mix = fastmix.Mixup(mixup_alpha=0.0, fmix_alpha=1.0, prob=0.3, mode="elem", num_classes=10, seed=14)
    method = methods_drawn(mix, 250, 8)
    assert_frequency(int((method != int(MixMethod.NONE)).sum()), len(method), 0.3, "mixed samples")
