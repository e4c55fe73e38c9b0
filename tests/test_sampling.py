"""The sampled MixParams have the statistics the knobs promise (timm's meanings), with fixed seeds:
lambda ~ Beta(alpha, alpha), CutMix box areas agree with lambda, prob and switch_prob are the
frequencies they say, partners never point at themselves, and the targets are proper soft labels.

Only params are sampled here (on the CPU, no image data), except for the targets at the end."""
import math

import pytest
import scipy.stats
import torch

import fastmix
from fastmix import MixKind, MixParams
from fastmix.sampling.beta import sample_beta
from fastmix.sampling.boxes import box_area_fraction
from fastmix.sampling.partners import derangement_partners, pair_partners

MODES = ["batch", "pair", "elem"]
SIGMAS = 4  # frequencies must lie within this many binomial standard deviations


def mixup(**kwargs):
    kwargs.setdefault("num_classes", 10)
    kwargs.setdefault("seed", 0)
    return fastmix.Mixup(**kwargs)


def sample_many(mix, batches, batch_size, height=None, width=None):
    """The params of many batches, concatenated sample by sample."""
    params = [mix.sample(batch_size, height, width) for _ in range(batches)]
    return MixParams(*(torch.cat(fields) for fields in zip(*(p.as_tuple() for p in params))))


def assert_frequency(successes, trials, p, what):
    sd = math.sqrt(p * (1 - p) / trials)
    observed = successes / trials
    assert abs(observed - p) <= SIGMAS * sd, f"{what}: {observed:.4f} over {trials} trials, expected {p} +- {SIGMAS * sd:.4f}"


def box_sides(box):
    return box[:, 1] - box[:, 0], box[:, 3] - box[:, 2]


# ---------------------------------------------------------------------------------------------
# lambda ~ Beta(alpha, alpha)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.2, 1.0])
def test_mixup_lambda_is_beta_distributed(alpha):
    mix = mixup(mixup_alpha=alpha, mode="elem", prob=1.0, seed=11)
    params = sample_many(mix, batches=125, batch_size=32)  # 4000 independent lambdas
    assert bool((params.kind == MixKind.BLEND).all())
    lam = params.lam.double().numpy()
    # (lam is float32: for alpha=0.2 about 1.7% of the mass rounds to exactly 1.0, which raises the
    # KS distance by ~0.017 -- far below the critical ~0.031 at n=4000 and p=0.001.)
    result = scipy.stats.kstest(lam, scipy.stats.beta(alpha, alpha).cdf)
    assert result.pvalue > 1e-3, f"lambda does not look Beta({alpha}, {alpha}): {result}"


def test_mixup_lambda_ks_test_has_power():
    # The same test rejects the neighbouring alphas, so the test above says something.
    mix = mixup(mixup_alpha=0.2, mode="elem", seed=11)
    lam = sample_many(mix, batches=125, batch_size=32).lam.double().numpy()
    for wrong in (0.1, 0.4):
        assert scipy.stats.kstest(lam, scipy.stats.beta(wrong, wrong).cdf).pvalue < 1e-3


def test_batch_mode_lambda_is_beta_distributed_across_batches():
    mix = mixup(mixup_alpha=1.0, mode="batch", seed=12)
    lams = []
    for _ in range(1500):
        params = mix.sample(6)
        assert bool((params.lam == params.lam[0]).all()), "one lambda per batch"
        lams.append(float(params.lam[0]))
    assert scipy.stats.kstest(lams, scipy.stats.beta(1.0, 1.0).cdf).pvalue > 1e-3


@pytest.mark.parametrize("alpha", [0.2, 1.0, 4.0])
def test_sample_beta_is_beta_distributed(alpha):
    generator = torch.Generator().manual_seed(3)
    x = sample_beta(alpha, 5000, generator)
    assert x.dtype == torch.float64 and x.shape == (5000,)
    assert bool(((x >= 0) & (x <= 1)).all())
    assert scipy.stats.kstest(x.numpy(), scipy.stats.beta(alpha, alpha).cdf).pvalue > 1e-3


def test_sample_beta_small_alpha_stays_in_range_and_is_beta():
    alpha, n = 0.05, 20000
    x = sample_beta(alpha, n, torch.Generator().manual_seed(4))
    assert not bool(torch.isnan(x).any())
    assert bool(((x >= 0) & (x <= 1)).all())
    # Beta(0.05, 0.05) puts ~8% of its mass within 1e-16 of 1, where float64 can only say 1.0,
    # so test the two tails by their counts and the middle by a KS test of the truncated law.
    beta = scipy.stats.beta(alpha, alpha)
    eps = 1e-9
    tail = beta.cdf(eps)  # = P(X > 1 - eps) by symmetry
    assert_frequency(int((x < eps).sum()), n, tail, "P(X < 1e-9)")
    assert_frequency(int((x > 1 - eps).sum()), n, tail, "P(X > 1 - 1e-9)")
    middle = x[(x >= eps) & (x <= 1 - eps)].numpy()
    truncated_cdf = lambda v: (beta.cdf(v) - tail) / (1 - 2 * tail)  # noqa: E731
    assert scipy.stats.kstest(middle, truncated_cdf).pvalue > 1e-3
    assert_frequency(int((x < 0.5).sum()), n, 0.5, "P(X < 0.5)")


def test_sample_beta_is_reproducible_from_the_generator():
    a = sample_beta(0.3, 100, torch.Generator().manual_seed(5))
    b = sample_beta(0.3, 100, torch.Generator().manual_seed(5))
    c = sample_beta(0.3, 100, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


# ---------------------------------------------------------------------------------------------
# CutMix: boxes and lambda
# ---------------------------------------------------------------------------------------------

H, W = 24, 40  # not square, so swapped height and width show


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("alpha", [0.3, 1.0])
def test_corrected_lambda_is_exactly_one_minus_box_area(mode, alpha):
    mix = mixup(mixup_alpha=0.0, cutmix_alpha=alpha, mode=mode, correct_lam=True, seed=21)
    params = sample_many(mix, batches=200, batch_size=9, height=H, width=W)
    paste = params.kind == MixKind.PASTE
    assert bool(paste.all())
    y0, y1, x0, x1 = params.box.unbind(1)
    assert bool(((0 <= y0) & (y0 <= y1) & (y1 <= H) & (0 <= x0) & (x0 <= x1) & (x1 <= W)).all())
    expected = (1.0 - box_area_fraction(params.box, H, W)).to(torch.float32)
    area = ((y1 - y0) * (x1 - x0)).double()
    assert torch.equal(expected, (1.0 - area / (H * W)).to(torch.float32))  # box_area_fraction is the area
    assert torch.equal(params.lam, expected)


@pytest.mark.parametrize("alpha", [0.3, 1.0, 3.0])
def test_uncorrected_box_side_is_sqrt_of_one_minus_lambda(alpha):
    mix = mixup(mixup_alpha=0.0, cutmix_alpha=alpha, mode="elem", correct_lam=False, seed=22)
    params = sample_many(mix, batches=100, batch_size=40, height=H, width=W)
    y0, y1, x0, x1 = params.box.unbind(1)
    # The sides come from the float64 lambda, params keep it as float32: allow every float64 that
    # rounds to this float32 (the side is monotone in lambda).
    lam = params.lam.double()
    half_ulp = (torch.nextafter(params.lam, torch.tensor(2.0)).double() - lam) / 2
    lam_lo, lam_hi = (lam - half_ulp).clamp(0, 1), (lam + half_ulp).clamp(0, 1)
    checked = 0
    for side, lo, hi, size in ((y1 - y0, y0, y1, H), (x1 - x0, x0, x1, W)):
        inside = (lo > 0) & (hi < size)  # a box that touches no border was not clipped
        longest = (size * torch.sqrt(1 - lam_lo)).floor().long()
        shortest = (size * torch.sqrt(1 - lam_hi)).floor().long()
        assert bool(((shortest <= side) & (side <= longest))[inside].all())
        exact = (size * torch.sqrt(1 - lam)).floor().long()
        assert (side == exact)[inside].float().mean() > 0.99
        checked += int(inside.sum())
    assert checked > 1000
    # The uncorrected lambda is the raw Beta draw.
    assert scipy.stats.kstest(lam.numpy(), scipy.stats.beta(alpha, alpha).cdf).pvalue > 1e-3


def test_clipping_makes_the_corrected_lambda_larger_on_average():
    corrected = mixup(mixup_alpha=0.0, cutmix_alpha=1.0, mode="elem", correct_lam=True, seed=23)
    raw = mixup(mixup_alpha=0.0, cutmix_alpha=1.0, mode="elem", correct_lam=False, seed=23)
    lam = sample_many(corrected, 100, 50, H, W).lam.double()
    raw_lam = sample_many(raw, 100, 50, H, W).lam.double()
    # E[1 - lam] = 0.5 for Beta(1, 1); clipping at the border only removes box area.
    assert abs(raw_lam.mean() - 0.5) < SIGMAS * math.sqrt(1 / 12 / len(raw_lam))
    assert 0.6 < lam.mean() < 0.8, float(lam.mean())
    # Same seed, same draws: the box of a sample is never larger than its uncorrected 1 - lam.
    assert bool((lam >= raw_lam - 1e-6).all())


@pytest.mark.parametrize("minmax", [(0.2, 0.8), (0.0, 0.3), (0.5, 1.0)])
@pytest.mark.parametrize("mode", MODES)
def test_minmax_boxes_have_sides_in_range_and_lie_inside(minmax, mode):
    mix = mixup(mixup_alpha=0.0, cutmix_alpha=0.0, cutmix_minmax=minmax, correct_lam=False, mode=mode, seed=24)
    assert mix.correct_lam and mix.cutmix_alpha == 1.0  # as in timm, minmax forces both
    params = sample_many(mix, batches=300, batch_size=7, height=H, width=W)
    assert bool((params.kind == MixKind.PASTE).all())
    y0, y1, x0, x1 = params.box.unbind(1)
    height, width = box_sides(params.box)
    lo, hi = minmax
    # timm's rule: sides in [int(min * H), int(max * H)), half-open (tests/test_timm_compat.py)
    assert int(height.min()) == int(H * lo) and int(height.max()) == int(H * hi) - 1
    assert int(width.min()) == int(W * lo) and int(width.max()) == int(W * hi) - 1
    assert bool(((0 <= y0) & (y1 <= H) & (0 <= x0) & (x1 <= W)).all())
    # every position is reachable: boxes touch each border somewhere
    assert bool((y0 == 0).any()) and bool((y1 == H).any()) and bool((x0 == 0).any()) and bool((x1 == W).any())
    assert torch.equal(params.lam, (1.0 - box_area_fraction(params.box, H, W)).to(torch.float32))


# ---------------------------------------------------------------------------------------------
# prob and switch_prob are frequencies
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prob", [0.3, 0.85])
def test_prob_is_the_frequency_of_mixing(mode, prob):
    mix = mixup(mixup_alpha=0.8, cutmix_alpha=1.0, prob=prob, mode=mode, seed=31)
    batch_size = 8 if mode == "batch" else 64  # batch mode: one decision per batch
    mixed = trials = 0
    for _ in range(2000 if mode == "batch" else 300):
        params = mix.sample(batch_size, H, W)
        kinds = params.kind != MixKind.NONE
        assert bool((params.lam[~kinds] == 1).all()), "an unmixed sample keeps lam = 1"
        if mode == "batch":
            assert bool((kinds == kinds[0]).all()), "batch mode mixes all or nothing"
            mixed, trials = mixed + int(kinds[0]), trials + 1
        elif mode == "pair":
            assert torch.equal(kinds, kinds.flip(0)), "a pair is mixed together"
            mixed, trials = mixed + int(kinds[: batch_size // 2].sum()), trials + batch_size // 2
        else:
            mixed, trials = mixed + int(kinds.sum()), trials + batch_size
    assert_frequency(mixed, trials, prob, f"fraction mixed in {mode} mode")


@pytest.mark.parametrize("mode", MODES)
def test_switch_prob_is_the_frequency_of_cutmix_among_mixed(mode):
    mix = mixup(mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.25, prob=0.7, mode=mode, seed=32)
    batch_size = 8 if mode == "batch" else 64
    paste = mixed = 0
    for _ in range(2000 if mode == "batch" else 300):
        params = mix.sample(batch_size, H, W)
        kind = params.kind if mode == "elem" else params.kind[: 1 if mode == "batch" else batch_size // 2]
        paste += int((kind == MixKind.PASTE).sum())
        mixed += int((kind != MixKind.NONE).sum())
    assert_frequency(paste, mixed, 0.25, f"fraction of CutMix among mixed in {mode} mode")


@pytest.mark.parametrize("switch_prob, expected", [(0.0, MixKind.BLEND), (1.0, MixKind.PASTE)])
def test_switch_prob_at_the_ends_picks_one_kind(switch_prob, expected):
    mix = mixup(mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=switch_prob, mode="elem", seed=33)
    params = sample_many(mix, 50, 16, H, W)
    assert bool((params.kind == expected).all())


@pytest.mark.parametrize(
    "kwargs, expected", [(dict(mixup_alpha=1.0), MixKind.BLEND), (dict(mixup_alpha=0.0, cutmix_alpha=1.0), MixKind.PASTE)]
)
def test_a_single_method_ignores_switch_prob(kwargs, expected):
    mix = mixup(**kwargs, switch_prob=0.5, mode="elem", seed=34)
    assert bool((sample_many(mix, 50, 16, H, W).kind == expected).all())


# ---------------------------------------------------------------------------------------------
# partners
# ---------------------------------------------------------------------------------------------

BATCH_SIZES = range(2, 66)


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_no_sample_is_mixed_with_itself(mode):
    mix = mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, seed=41)
    for batch_size in BATCH_SIZES:
        params = mix.sample(batch_size, H, W)
        index = torch.arange(batch_size)
        assert params.partner.dtype == torch.int64
        assert not bool((params.partner == index).any()), f"B={batch_size}: {params.partner.tolist()}"
        assert torch.equal(params.partner.sort().values, index), f"B={batch_size}: not a permutation"
        assert bool(params.mixed().all())
        assert torch.equal(params.partner, derangement_partners(batch_size))


def test_batch_mode_shares_one_decision():
    mix = mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode="batch", seed=42)
    for batch_size in BATCH_SIZES:
        params = mix.sample(batch_size, H, W)
        for field in (params.lam, params.kind, params.box):
            assert bool((field == field[0]).all()), f"B={batch_size}"


def test_pair_mode_pairs_share_everything():
    mix = mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode="pair", seed=43)
    for batch_size in BATCH_SIZES:
        params = mix.sample(batch_size, H, W)
        index = torch.arange(batch_size)
        flip = index.flip(0)
        assert torch.equal(params.partner, pair_partners(batch_size))
        middle = batch_size // 2
        paired = index if batch_size % 2 == 0 else index[index != middle]
        assert torch.equal(params.partner[paired], flip[paired]), f"B={batch_size}"
        assert torch.equal(params.lam[paired], params.lam[flip[paired]])
        assert torch.equal(params.kind[paired], params.kind[flip[paired]])
        assert torch.equal(params.box[paired], params.box[flip[paired]])
        if batch_size % 2 == 1:
            assert int(params.partner[middle]) == middle - 1
        assert bool(params.mixed().all()), f"B={batch_size}: every sample is mixed at prob=1"
    # pairs draw independently: many distinct lambdas within a batch
    assert len(set(mix.sample(64, H, W).lam.tolist())) > 20


def test_pair_mode_odd_middle_has_its_own_draw():
    mix = mixup(mixup_alpha=1.0, mode="pair", seed=44)
    differs = 0
    for _ in range(50):
        params = mix.sample(5)
        assert int(params.partner[2]) == 1 and int(params.kind[2]) == MixKind.BLEND
        differs += int(params.lam[2] != params.lam[1])
    assert differs >= 45


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kwargs", [dict(mixup_alpha=1.0), dict(mixup_alpha=0.8, cutmix_alpha=1.0), dict(cutmix_minmax=(0.2, 0.8))])
def test_a_batch_of_one_is_left_alone(mode, kwargs):
    mix = mixup(**kwargs, mode=mode, seed=45)
    for _ in range(20):
        params = mix.sample(1, H, W)
        assert params.partner.tolist() == [0] and params.kind.tolist() == [0] and params.lam.tolist() == [1.0]
    images = torch.rand(1, 3, H, W)
    before = images.clone()
    labels = torch.tensor([7])
    _, targets = mix(images, labels)
    assert torch.equal(images, before)
    expected = torch.full((1, 10), 0.1 / 10)
    expected[0, 7] = 1 - 0.1 + 0.1 / 10
    torch.testing.assert_close(targets, expected, rtol=0, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# seeds and the on/off switch
# ---------------------------------------------------------------------------------------------

SIZES = [(8, H, W), (7, H, W), (1, H, W), (16, 5, 9), (33, H, W)]


def params_sequence(mix):
    return [mix.sample(*size).as_tuple() for size in SIZES]


@pytest.mark.parametrize("mode", MODES)
def test_same_seed_same_params_other_seed_other_params(mode):
    kwargs = dict(mixup_alpha=0.8, cutmix_alpha=1.0, prob=0.8, mode=mode)
    first = params_sequence(mixup(**kwargs, seed=51))
    again = params_sequence(mixup(**kwargs, seed=51))
    other = params_sequence(mixup(**kwargs, seed=52))
    for a, b in zip(first, again):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert any(not torch.equal(a[1], c[1]) for a, c in zip(first, other))
    # and a stream moves on: consecutive batches of one object differ
    mix = mixup(**kwargs, seed=51)
    assert len({tuple(mix.sample(8, H, W).lam.tolist()) for _ in range(5)}) > 1


def test_mixup_enabled_false_gives_identity_params():
    mix = mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", seed=52)
    mix.mixup_enabled = False
    for batch_size in (0, 1, 2, 7, 16):
        params = mix.sample(batch_size, H, W)
        identity = MixParams.identity(batch_size)
        assert all(torch.equal(a, b) for a, b in zip(params.as_tuple(), identity.as_tuple()))
    # and the call then leaves the images alone, even 3-D ones that CutMix could not take
    images = torch.rand(6, H, W)
    before = images.clone()
    labels = torch.randint(0, 10, (6,))
    _, targets = mix(images, labels)
    assert torch.equal(images, before)
    assert torch.equal(targets.argmax(1), labels)
    mix.mixup_enabled = True
    assert bool(mix.sample(6, H, W).mixed().all())


# ---------------------------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------------------------


def smoothed(labels, num_classes, eps):
    off, on = eps / num_classes, 1 - eps + eps / num_classes
    if labels.dim() == 1:
        out = torch.full((labels.shape[0], num_classes), off, dtype=torch.float64)
        out[torch.arange(labels.shape[0]), labels] = on
        return out
    return labels.double() * on + (1 - labels.double()) * off


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_targets_are_smoothed_and_mixed_as_timm(mode, eps, dense, backend):
    num_classes = 13
    mix = fastmix.Mixup(
        mixup_alpha=0.8, cutmix_alpha=1.0, prob=0.6, mode=mode, label_smoothing=eps,
        num_classes=num_classes, seed=61, backend=backend,
    )
    generator = torch.Generator().manual_seed(62)
    seen_unmixed = seen_mixed = 0
    for batch_size in (2, 5, 8, 17, 32):
        for _ in range(4):
            images = torch.rand(batch_size, 3, 6, 7, generator=generator)
            if dense:
                labels = torch.rand(batch_size, num_classes, generator=generator).softmax(1)
            else:
                labels = torch.randint(0, num_classes, (batch_size,), generator=generator)
            _, targets = mix(images, labels)
            params = mix.last_params
            assert targets.dtype == torch.float32 and targets.shape == (batch_size, num_classes)
            torch.testing.assert_close(targets.sum(1), torch.ones(batch_size), rtol=0, atol=1e-5)
            own = smoothed(labels, num_classes, eps)
            lam = params.lam.double()[:, None]
            mixed = params.mixed()
            expected = torch.where(mixed[:, None], lam * own + (1 - lam) * own[params.partner], own)
            torch.testing.assert_close(targets.double(), expected, rtol=0, atol=1e-6)
            if not dense:  # unmixed rows hold exactly timm's two values
                rows = targets[~mixed]
                off, on = eps / num_classes, 1 - eps + eps / num_classes
                assert bool(((rows == torch.tensor(off, dtype=torch.float32)).sum(1) == num_classes - 1).all())
                assert torch.equal(rows.max(1).values, torch.full((len(rows),), on, dtype=torch.float32))
            seen_unmixed += int((~mixed).sum())
            seen_mixed += int(mixed.sum())
    assert seen_unmixed > 10 and seen_mixed > 10
