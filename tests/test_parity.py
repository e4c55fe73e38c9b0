"""Every compiled backend produces exactly what the torch reference produces, bit for bit, for the
same MixParams: over dtypes, layouts, modes, batch sizes 1..65 and arbitrary partner maps."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fastmix
from fastmix import MixKind, MixParams

from .helpers import COMPILED_BACKENDS, CPP, DTYPES, LAYOUTS, make_images, make_labels, random_params, random_values, reference_mix_, reference_targets, requires_numba

def policy_params(data, batch, height, width, allow_cutmix):
    mode = data.draw(st.sampled_from(["batch", "pair", "elem"]))
    mixup_alpha = data.draw(st.sampled_from([0.0, 0.2, 1.0]))
    cutmix_alpha = data.draw(st.sampled_from([0.0, 1.0])) if allow_cutmix else 0.0
    if mixup_alpha == 0 and cutmix_alpha == 0:
        mixup_alpha = 0.8
    minmax = data.draw(st.sampled_from([None, (0.2, 0.8)])) if cutmix_alpha else None
    mix = fastmix.Mixup(
        mixup_alpha=mixup_alpha,
        cutmix_alpha=cutmix_alpha,
        cutmix_minmax=minmax,
        prob=data.draw(st.sampled_from([1.0, 0.6])),
        switch_prob=data.draw(st.sampled_from([0.5, 0.0, 1.0])),
        mode=mode,
        correct_lam=data.draw(st.booleans()),
        num_classes=7,
        seed=data.draw(st.integers(0, 2**31)),
    )
    return mix.sample(batch, height, width)


# Its 300 examples take more than 2 s on numba, warm cache included (slow), about 1.3 s on cpp.
@pytest.mark.parametrize("backend", [CPP, pytest.param("numba", marks=[requires_numba, pytest.mark.slow])])
@given(data=st.data())
def test_apply_matches_reference(backend, data):
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    batch = data.draw(st.integers(1, 65), label="batch")
    channels = data.draw(st.integers(1, 4), label="channels")
    height = data.draw(st.integers(1, 17), label="height")
    width = data.draw(st.integers(1, 17), label="width")
    threads = data.draw(st.sampled_from([1, 2]), label="threads")
    generator = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31), label="seed"))
    images = make_images(layout, batch, channels, height, width, dtype, generator)
    spatial = layout != "flat"
    if data.draw(st.booleans(), label="arbitrary params"):
        params = random_params(batch, height, width, generator, allow_paste=spatial)
    else:
        params = policy_params(data, batch, height, width, allow_cutmix=spatial)

    expected = reference_mix_(images.clone(), params)
    torch.set_num_threads(threads)
    before_ptr, before_strides = images.data_ptr(), images.stride()
    out = fastmix.mix_(images, params, backend=backend)
    assert out is images and images.data_ptr() == before_ptr and images.stride() == before_strides
    assert torch.equal(images, expected)


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape",
    [
        (6, 3, 40, 50),  # several chunks per sample, whole rows per chunk
        (5, 1, 3, 9000),  # rows longer than a chunk: pastes split across chunks
        (7, 2, 2, 64, 70),  # video, odd batch (a 3-cycle through the buffer)
    ],
)
@pytest.mark.parametrize("threads", [1, 2])
def test_apply_matches_reference_across_chunks(backend, dtype, shape, threads):
    generator = torch.Generator().manual_seed(hash((str(dtype), shape)) % 2**31)
    for trial in range(4):
        images = random_values(shape, dtype, generator)
        if trial % 2 and len(shape) == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        params = random_params(shape[0], shape[-2], shape[-1], generator)
        expected = reference_mix_(images.clone(), params)
        torch.set_num_threads(threads)
        fastmix.mix_(images, params, backend=backend)
        assert torch.equal(images, expected), f"trial {trial}"


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
@given(data=st.data())
def test_targets_match_reference(backend, data):
    batch = data.draw(st.integers(0, 65), label="batch")
    num_classes = data.draw(st.integers(1, 40), label="num_classes")
    smoothing = data.draw(st.sampled_from([0.0, 0.1, 0.25, 1.0]), label="smoothing")
    generator = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31), label="seed"))
    form = data.draw(st.sampled_from(["indices", "int32 indices", "probabilities", "multi-label"]), label="labels")
    labels = make_labels(form, batch, num_classes, generator)
    params = random_params(batch, 4, 4, generator) if batch else MixParams.identity(0)

    expected = reference_targets(labels, params, num_classes, smoothing)
    got = fastmix.mix_targets(labels, params, num_classes, smoothing, backend=backend)
    assert got.dtype == torch.float32 and got.shape == (batch, num_classes)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("backend", COMPILED_BACKENDS + ["torch"])
def test_mixup_call_matches_reference_end_to_end(backend):
    """The same seed through the public API gives the reference's images and targets."""
    for mode in ["batch", "pair", "elem"]:
        for batch in [1, 2, 3, 8, 33]:
            kw = dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, num_classes=10, label_smoothing=0.1)
            images = torch.randint(0, 256, (batch, 3, 12, 10), dtype=torch.uint8)
            labels = torch.randint(0, 10, (batch,))
            expected_images = images.clone()
            out, targets = fastmix.Mixup(**kw, seed=5, backend=backend)(images, labels)
            reference = fastmix.Mixup(**kw, seed=5, backend="torch")
            params = reference.sample(batch, 12, 10)
            reference_mix_(expected_images, params)
            assert torch.equal(out, expected_images)
            assert torch.equal(targets, reference_targets(labels, params, 10, 0.1))


def test_reference_blend_rounds_half_to_even():
    """uint8 blends round half to even: 0.5 * 1 + 0.5 * 2 = 1.5 -> 2, 0.5 * 2 + 0.5 * 3 = 2.5 -> 2."""
    images = torch.tensor([[1, 2, 250], [2, 3, 255]], dtype=torch.uint8)
    params = MixParams(
        partner=torch.tensor([1, 0]),
        lam=torch.tensor([0.5, 0.5]),
        kind=torch.full((2,), int(MixKind.BLEND), dtype=torch.uint8),
        box=torch.zeros(2, 4, dtype=torch.int64),
    )
    for backend in ["torch"] + [b.values[0] for b in COMPILED_BACKENDS if fastmix.available_backends()[b.values[0]] is None]:
        x = images.clone()
        fastmix.mix_(x, params, backend=backend)
        assert x.tolist() == [[2, 2, 252], [2, 2, 252]], backend


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
@pytest.mark.parametrize("partners", [[1, 0], [1, 2, 0], [1, 0, 2]], ids=["swapped pair", "3-cycle", "pair with a paste"])
def test_every_pair_of_bytes_blends_as_the_reference(backend, partners):
    """uint8 over every (own, partner) byte pair, at lambdas with ties (0.5, 0.25) and arbitrary
    ones: the vector lanes, their tails and the scalar loop all round half to even and saturate
    like the reference. Partners pick the loop: a swapped pair blends both samples in one pass, a
    3-cycle blends one sample from another, a blend paired with a paste blends while it copies
    (images of 2 rows, so that the paste takes the dense path)."""
    values = torch.arange(256, dtype=torch.uint8)
    own, theirs = values.repeat_interleave(256), values.repeat(256)
    tail = torch.tensor([0, 1, 127, 128, 254, 255, 3, 77], dtype=torch.uint8)  # 2 rows of 32772: ragged ends
    columns = [torch.cat([own, tail]), torch.cat([theirs, tail.flip(0)]), torch.cat([theirs.flip(0), tail])]
    batch = len(partners)
    images = torch.stack(columns[:batch]).reshape(batch, 1, 2, -1)
    height, width = images.shape[-2:]
    lams = [0.5, 0.25, 0.7, 1 / 3, 0.0, 1.0] + torch.rand(6, generator=torch.Generator().manual_seed(3)).tolist()
    for lam, other in zip(lams, reversed(lams)):
        kind = [int(MixKind.BLEND)] * batch
        if partners == [1, 0, 2]:  # sample 1 pastes all of sample 0 while sample 0 blends with it
            kind = [int(MixKind.BLEND), int(MixKind.PASTE), int(MixKind.NONE)]
        params = MixParams(
            partner=torch.tensor(partners),
            lam=torch.tensor([lam, other, lam][:batch], dtype=torch.float32),
            kind=torch.tensor(kind, dtype=torch.uint8),
            box=torch.tensor([[0, height, 0, width]] * batch),
        )
        expected = reference_mix_(images.clone(), params)
        mixed = images.clone()
        fastmix.mix_(mixed, params, backend=backend)
        assert torch.equal(mixed, expected), f"lam {lam}"
