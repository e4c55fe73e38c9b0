"""The naive baselines the benchmarks time fastmix against do the mixing fastmix does: for the
same params, each gives what the torch reference gives (to float32 rounding: they round in
their own order). A baseline that mixed wrongly would make the speed-up meaningless."""
import pytest
import torch

from fastmix import MixKind, MixParams, Mixup
from fastmix.bench import baselines

from .helpers import random_values, reference_mix_, reference_mix_into, reference_targets

B, C, H, W = 6, 3, 8, 10


def uniform_params(partner: torch.Tensor, kind: MixKind, lam: float = 0.3, box=(0, 0, 0, 0)) -> MixParams:
    n = len(partner)
    return MixParams(partner=partner, lam=torch.full((n,), lam), kind=torch.full((n,), int(kind), dtype=torch.uint8),
                     box=torch.tensor([box] * n, dtype=torch.int64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.uint8])
def test_timm_flip_formula_mixes_each_sample_with_its_flip(dtype):
    images = random_values((B, C, H, W), dtype, torch.Generator().manual_seed(0))
    params = uniform_params(torch.arange(B).flip(0), MixKind.BLEND)
    expected = reference_mix_(images.clone(), params)
    out = baselines.naive_mixup_flip_(images, 0.3)
    assert out is images
    atol = 1 if dtype == torch.uint8 else (1e-6 if dtype == torch.float32 else 1e-2)
    torch.testing.assert_close(images.double(), expected.double(), atol=atol, rtol=1e-2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_torchvision_roll_formula_mixes_each_sample_with_the_one_before(dtype):
    images = random_values((B, C, H, W), dtype, torch.Generator().manual_seed(1))
    params = uniform_params((torch.arange(B) - 1) % B, MixKind.BLEND)
    expected = reference_mix_(images.clone(), params)
    baselines.naive_mixup_roll_(images, 0.3)
    torch.testing.assert_close(images.double(), expected.double(), atol=1 if dtype == torch.uint8 else 1e-6, rtol=0)


def test_timm_cutmix_formula_pastes_the_flip_in_the_box():
    images = random_values((B, C, H, W), torch.float32, torch.Generator().manual_seed(2))
    params = uniform_params(torch.arange(B).flip(0), MixKind.PASTE, box=(2, 6, 1, 7))
    expected = reference_mix_(images.clone(), params)
    baselines.naive_cutmix_flip_(images, (2, 6, 1, 7))
    assert torch.equal(images, expected)


def test_timm_elem_loop_does_what_the_params_say():
    images = random_values((B, C, H, W), torch.float32, torch.Generator().manual_seed(3))
    params = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", num_classes=10, seed=0).sample(B, H, W)
    assert set(params.kind.tolist()) > {int(MixKind.BLEND)}, "both kinds are drawn"
    expected = reference_mix_(images.clone(), params)
    baselines.naive_elem_loop_(images, params)
    torch.testing.assert_close(images, expected, atol=1e-6, rtol=0)


def test_timm_mixup_target_formula_gives_the_reference_targets():
    labels = torch.randint(0, 10, (B,), generator=torch.Generator().manual_seed(4))
    params = uniform_params(torch.arange(B).flip(0), MixKind.BLEND, lam=0.7)
    torch.testing.assert_close(baselines.naive_targets(labels, 0.7, 10, 0.1),
                               reference_targets(labels, params, 10, 0.1), atol=1e-6, rtol=0)


def test_naive_normalise_and_mix_chain_gives_the_fused_reference():
    images = random_values((B, H, W, C), torch.uint8, torch.Generator().manual_seed(5))
    params = uniform_params(torch.arange(B).flip(0), MixKind.BLEND, lam=0.6)
    mean, std = torch.tensor(baselines.IMAGENET_MEAN), torch.tensor(baselines.IMAGENET_STD)
    expected = reference_mix_into(torch.empty(B, C, H, W, dtype=torch.bfloat16), images, params,
                                  1.0 / (255.0 * std), -mean / std, True)
    naive = baselines.naive_normalize_mix(images, 0.6, mean.view(1, 3, 1, 1), std.view(1, 3, 1, 1), torch.bfloat16)
    assert naive.dtype == torch.bfloat16 and naive.shape == (B, C, H, W)
    torch.testing.assert_close(naive.float(), expected.float(), atol=0.02, rtol=0.01)


@pytest.mark.parametrize("mode, kind", [("bilinear", MixKind.RESIZE), ("nearest", MixKind.RESIZE_NEAREST)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_mmpretrain_resizemix_formula_pastes_the_resized_partner_in_the_box(mode, kind, dtype):
    images = random_values((B, C, H, W), dtype, torch.Generator().manual_seed(6))
    params = uniform_params(torch.arange(B).flip(0), kind, box=(1, 6, 2, 9))
    expected = reference_mix_(images.clone(), params)
    baselines.naive_resizemix_(images, params.partner, (1, 6, 2, 9), mode)
    # F.interpolate's bilinear rounds its source coordinate in another order (<= 1 step for uint8)
    exact = mode == "nearest"
    torch.testing.assert_close(images.double(), expected.double(), rtol=0,
                               atol=0 if exact else (1 if dtype == torch.uint8 else 1e-5))


def test_the_naive_resizemix_collate_is_the_fused_one():
    samples = [(random_values((H, W, C), torch.uint8, torch.Generator().manual_seed(i)).numpy(), i) for i in range(B)]
    params = uniform_params(torch.arange(B).flip(0), MixKind.RESIZE, box=(0, 8, 3, 7))
    source = torch.stack([torch.from_numpy(image) for image, _ in samples])
    expected = reference_mix_into(torch.empty(B, C, H, W, dtype=torch.uint8), source, params, torch.empty(0),
                                  torch.empty(0), True)
    images, labels = baselines.naive_collate_resizemix_uint8(samples, params.partner, (0, 8, 3, 7))
    torch.testing.assert_close(images, expected, rtol=0, atol=1)  # F.interpolate's rounding: <= 1 step
    assert labels.tolist() == list(range(B))
