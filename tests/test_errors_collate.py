"""MixupCollate: bad samples (empty images for CutMix, dense labels unlike the first, complex labels,
numpy images of a foreign byte order or of objects, sparse or meta tensors) and bad mean/std are
refused by name before anything is drawn, on every backend, leaving the samples as they were;
the accepted forms of mean and std still normalise.

Read each table as a specification: (what is wrong, the exception, how its message begins: the
argument's name, as a regex)."""
import math

import numpy as np
import pytest
import torch

import fastmix

from .helpers import (B, C, CUTMIX_ON, CUTMIX_ONLY, EVERY_BACKEND, H, MIXUP_ONLY, NAN, W, new_collate, same_sample,
                      sample_snapshot, zero_image)


# ---------------------------------------------------------------------------------------------
# MixupCollate(...)(samples): each sample checked, by index, before anything is drawn
# ---------------------------------------------------------------------------------------------


def chw_uint8(seed, shape=(3, H, W)):
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def hwc_uint8(seed, shape=(H, W, 3)):
    return chw_uint8(seed, shape).numpy()


def dense_label(seed, width=C, dtype=torch.float32):
    return torch.rand(width, generator=torch.Generator().manual_seed(100 + seed)).to(dtype)


def images_then(n, odd_index, odd_image, make=chw_uint8):
    return [make(i) for i in range(n)][:odd_index] + [odd_image] + [make(i) for i in range(odd_index + 1, n)]


BAD_COLLATE_BATCHES = [
    # (id, Mixup kwargs, MixupCollate kwargs, samples, error, message (regex, from the start))
    ("CutMix, H = 0", CUTMIX_ONLY, {}, lambda: [(chw_uint8(i, (3, 0, W)), i) for i in range(B)], ValueError,
     r"samples\[0\]: CutMix, FMix, ClassMix and ResizeMix need images with H >= 1 and W >= 1, got \(C, H, W\) \(3, 0, 8\)"),
    ("CutMix, W = 0 (numpy)", CUTMIX_ON, {}, lambda: [(hwc_uint8(i, (H, 0, 3)), i) for i in range(B)], ValueError,
     r"samples\[0\]: CutMix, FMix, ClassMix and ResizeMix need images with H >= 1 and W >= 1, got \(H, W, C\) \(8, 0, 3\)"),
    ("dense labels of different lengths", MIXUP_ONLY, {},
     lambda: [(chw_uint8(i), dense_label(i, C + (i == 3))) for i in range(B)], ValueError,
     r"samples\[3\]: expected a dense label of num_classes=10 values, shape \(10,\), like samples\[0\], got a label of shape \(11,\)"),
    ("dense then class index", MIXUP_ONLY, {},
     lambda: [(chw_uint8(i), dense_label(i) if i < 3 else 2) for i in range(B)], ValueError,
     r"samples\[3\]: expected a dense label .* got int 2"),
    ("dense then a 0-d tensor", CUTMIX_ON, {},
     lambda: [(chw_uint8(i), dense_label(i) if i != 2 else torch.tensor(2)) for i in range(B)], ValueError,
     r"samples\[2\]: expected a dense label .*shape \(\)"),
    ("complex dense label", MIXUP_ONLY, {},
     lambda: [(chw_uint8(i), dense_label(i, dtype=torch.complex64)) for i in range(B)], TypeError,
     r"samples\[0\]: expected a label of real values, got dtype complex64"),
    ("complex dense label after real ones", CUTMIX_ON, {},
     lambda: [(chw_uint8(i), dense_label(i, dtype=torch.complex64 if i == 2 else torch.float32)) for i in range(B)],
     TypeError, r"samples\[2\]: expected a label of real values, got dtype complex64"),
    ("complex multi-label target", dict(MIXUP_ONLY, multi_label=True), {},
     lambda: [(chw_uint8(i), (dense_label(i) > 0.5).to(torch.complex64) * (1 + 1j)) for i in range(B)], TypeError,
     r"samples\[0\]: expected a label of real values, got dtype complex64"),
    ("complex numpy label", MIXUP_ONLY, {},
     lambda: [(chw_uint8(i), dense_label(i).numpy().astype(np.complex64)) for i in range(B)], TypeError,
     r"samples\[0\]: expected a numpy label of a real dtype in the machine's byte order, got dtype complex64"),
    ("big-endian uint16 image", MIXUP_ONLY, {}, lambda: [(im, i) for i, im in enumerate(images_then(
     B, 2, hwc_uint8(2).astype(">u2"), hwc_uint8))], TypeError, r"samples\[2\]: expected a numpy image .* got dtype >u2 \(big-endian\)"),
    ("big-endian float32 image", MIXUP_ONLY, {}, lambda: [(hwc_uint8(i).astype(">f4"), i) for i in range(B)], TypeError,
     r"samples\[0\]: expected a numpy image of a real dtype \(uint8 or float32\) in the machine's byte order, got dtype >f4 \(big-endian\)"),
    ("object image", MIXUP_ONLY, {}, lambda: [(im, i) for i, im in enumerate(images_then(
     B, 1, hwc_uint8(1).astype(object), hwc_uint8))], TypeError, r"samples\[1\]: expected a numpy image .* got dtype object"),
    ("sparse image", MIXUP_ONLY, {}, lambda: [(im, i) for i, im in enumerate(images_then(B, 1, chw_uint8(1).to_sparse()))],
     TypeError, r"samples\[1\]: expected a strided \(dense\) tensor, got layout torch\.sparse_coo"),
    ("meta image", MIXUP_ONLY, {}, lambda: [(im, i) for i, im in enumerate(images_then(B, 3, chw_uint8(3).to("meta")))],
     ValueError, r"samples\[3\]: expected a tensor on the CPU \(the collate runs there\), got a tensor on meta"),
    ("sparse dense label", MIXUP_ONLY, {}, lambda: [(chw_uint8(i), dense_label(i).to_sparse()) for i in range(B)], TypeError,
     r"samples\[0\]: expected a strided \(dense\) tensor, got layout torch\.sparse_coo"),
    ("meta dense label", MIXUP_ONLY, {}, lambda: [(chw_uint8(i), dense_label(i).to("meta" if i else "cpu")) for i in range(B)],
     ValueError, r"samples\[1\]: expected a tensor on the CPU"),
    ("meta class index", CUTMIX_ON, {}, lambda: [(chw_uint8(i), torch.tensor(i, device="meta" if i == 2 else "cpu")) for i in range(B)],
     ValueError, r"samples\[2\]: expected a tensor on the CPU"),
    ("std past float32", MIXUP_ONLY, dict(mean=(0.5,), std=(1e-300,)), lambda: [(chw_uint8(i), i) for i in range(B)], ValueError,
     r"mean, std: expected values whose scale 1/std and bias -mean/std fit float32"),
]


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("mix_kwargs, collate_kwargs, samples, error, message", [case[1:] for case in BAD_COLLATE_BATCHES],
                         ids=[case[0] for case in BAD_COLLATE_BATCHES])
def test_the_collate_refuses_bad_samples_by_name_before_drawing(backend, mix_kwargs, collate_kwargs, samples, error, message):
    """Each used to surface as torch's RuntimeError / ValueError naming no sample (or, for complex
    labels on numba and torch, to drop the imaginary part): now refused before anything is drawn."""
    collate = fastmix.MixupCollate(fastmix.Mixup(**mix_kwargs, num_classes=C, seed=0, backend=backend),
                                   dtype=torch.float32, **collate_kwargs)
    samples = samples()
    before = [tuple(sample_snapshot(v) for v in s) for s in samples]
    stream = collate.mixup.generator.bit_generator.state
    with pytest.raises(error, match="^" + message):
        collate(samples)
    for was, now in zip(before, samples):
        assert all(same_sample(b, a) for b, a in zip(was, now)), "a refused batch must leave the samples as they were"
    assert collate.mixup.generator.bit_generator.state == stream, "a refused batch must not draw"
    assert collate.mixup.last_params is None


# ---------------------------------------------------------------------------------------------
# MixupCollate(..., mean, std): finite real numbers, on the CPU, strided, real
# ---------------------------------------------------------------------------------------------

BAD_MEAN_STD = [
    # (id, mean, std, error, message)
    ("mean a str", "0.5", (0.2,), TypeError, r"mean: expected finite real numbers .*got str '0\.5'"),
    ("std a str", (0.5,), "0.2", TypeError, r"std: expected finite real numbers"),
    ("dicts", {"r": 0.5}, {"r": 0.2}, TypeError, r"mean: .*got dict"),
    ("strs in a tuple", ("0.5",) * 3, (0.2,) * 3, TypeError, r"mean: .*got tuple"),
    ("bools", (True, False, True), (0.2,) * 3, TypeError, r"mean: "),
    ("meta tensors", torch.zeros(3, device="meta"), torch.ones(3, device="meta"), ValueError, r"mean: .* on the CPU, got a tensor on meta"),
    ("std a meta tensor", torch.zeros(3), torch.ones(3, device="meta"), ValueError, r"std: .* on the CPU, got a tensor on meta"),
    ("sparse mean", torch.zeros(3).to_sparse(), torch.ones(3), TypeError, r"mean: .*layout torch\.sparse_coo"),
    ("complex mean", torch.zeros(3, dtype=torch.complex64), torch.ones(3), TypeError, r"mean: .*complex64"),
    ("object array", np.array([0.5, "a", None], dtype=object), (0.2,) * 3, TypeError, r"mean: .*dtype object"),
    ("no values", (), (), ValueError, r"mean: .*got none"),
    ("mean NaN", (0.5, NAN, 0.5), (0.2,) * 3, ValueError, r"mean: expected finite real numbers .*got \[0\.5, nan, 0\.5\]"),
    ("mean -inf", (-math.inf,), (1.0,), ValueError, r"mean: expected finite"),
    ("std inf", (0.5,) * 3, (0.2, math.inf, 0.2), ValueError, r"std: expected finite real numbers .*inf"),
    ("std NaN tensor", torch.zeros(3), torch.tensor([1.0, NAN, 1.0]), ValueError, r"std: expected finite"),
    ("std NaN array", np.zeros(3), np.full(3, NAN), ValueError, r"std: expected finite"),
]


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("mean, std, error, message", [case[1:] for case in BAD_MEAN_STD], ids=[case[0] for case in BAD_MEAN_STD])
def test_the_collate_refuses_bad_mean_and_std_by_name(backend, mean, std, error, message):
    """Strings, dicts and meta tensors used to raise torch's TypeError / RuntimeError (naming
    neither), and NaN or inf were taken, giving NaN or constant channels."""
    before = (sample_snapshot(mean), sample_snapshot(std))
    with pytest.raises(error, match="^" + message):
        fastmix.MixupCollate(fastmix.Mixup(num_classes=C, seed=0, backend=backend), dtype=torch.float32, mean=mean, std=std)
    if isinstance(mean, torch.Tensor):
        assert same_sample(before[0], mean) and same_sample(before[1], std)


@pytest.mark.parametrize("mean, std", [
    (0.5, 0.25),
    ((0.5, 0.4, 0.3), [0.25, 0.2, 0.1]),
    (torch.tensor([0.5, 0.4, 0.3]), torch.tensor([[0.25], [0.2], [0.1]])),
    (np.array([0.5, 0.4, 0.3], dtype=">f8"), np.array([0.25, 0.2, 0.1], dtype=np.float32)),
    ((np.float32(0.5), 0.4, 0.3), (0.25, np.float64(0.2), 1)),
], ids=["floats", "tuple_list", "tensors", "arrays", "numpy_scalars"])
def test_the_accepted_forms_of_mean_and_std_still_normalise(mean, std):
    collate = fastmix.MixupCollate(fastmix.Mixup(num_classes=C, seed=0, backend="torch"), dtype=torch.float32, mean=mean, std=std)
    assert collate.mean.dtype == torch.float64 and collate.mean.dim() == 1 and bool(torch.isfinite(collate.std).all())
    images, targets = collate([(chw_uint8(i), i) for i in range(B)])
    assert bool(torch.isfinite(images).all()) and targets.shape == (B, C)


# ---------------------------------------------------------------------------------------------
# MixupCollate(...)(samples) and MixupCollate(...): what each refusal names (the sample, both
# shapes, the value, the argument); a refused batch draws nothing
# ---------------------------------------------------------------------------------------------


def raises_naming(collate, samples, exc, pattern, *fragments):
    """The call raises ``exc`` matching ``pattern`` and naming every fragment; nothing is returned."""
    result = "not set"
    with pytest.raises(exc, match=pattern) as info:
        result = collate(samples)
    assert result == "not set"
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
    return info


@pytest.mark.parametrize(
    "first, odd, fragments",
    [
        (zero_image((3, 8, 9)), zero_image((3, 8, 8)), ["(3, 8, 8)", "(3, 8, 9)"]),  # shape
        (zero_image((3, 8, 9)), zero_image((1, 8, 9)), ["(1, 8, 9)", "(3, 8, 9)"]),  # channels, CHW
        (np.zeros((8, 9, 3), np.uint8), np.zeros((8, 9, 4), np.uint8), ["(8, 9, 4)", "(8, 9, 3)"]),  # channels, HWC
        (np.zeros((8, 9, 3), np.uint8), np.zeros((8, 9), np.uint8), ["(8, 9, 1)", "(8, 9, 3)"]),  # HW among HWC
        (zero_image((3, 8, 9)), torch.zeros(3, 8, 9), ["float32", "uint8"]),  # dtype
        (zero_image((3, 8, 9)), np.zeros((8, 9, 3), np.uint8), ["HWC", "CHW"]),  # torch then numpy
    ],
    ids=["shape", "channels_chw", "channels_hwc", "grayscale_among_rgb", "dtype", "kind"],
)
def test_a_sample_unlike_the_first_is_named_with_both_shapes(first, odd, fragments):
    collate = new_collate(dtype=torch.float32)
    samples = [(first, 0), (first, 1), (first, 2), (odd, 3), (first, 0)]
    raises_naming(collate, samples, ValueError, r"samples\[3\]", "samples[0]", *fragments)


@pytest.mark.parametrize("label", [4, -1, 100, np.int64(4), torch.tensor(7)], ids=["C", "-1", "100", "np", "tensor"])
def test_a_label_outside_the_classes_is_named(label):
    collate = new_collate()
    samples = [(zero_image(), 0), (zero_image(), 3), (zero_image(), label), (zero_image(), 1)]
    raises_naming(collate, samples, ValueError, r"samples\[2\]", str(int(label)), "num_classes=4")


def test_a_non_integer_label_is_named():
    collate = new_collate()
    raises_naming(collate, [(zero_image(), 0), (zero_image(), 1.5)], TypeError, r"samples\[1\]", "1.5")
    raises_naming(collate, [(zero_image(), 0), (zero_image(), True)], TypeError, r"samples\[1\]")
    raises_naming(collate, [(zero_image(), 0), (zero_image(), torch.tensor([1, 2]))], ValueError, r"samples\[1\]")


def test_dense_labels_of_the_wrong_width_are_refused():
    collate = new_collate()
    raises_naming(collate, [(zero_image(), torch.ones(5) / 5)] * 2, ValueError, "num_classes=4")


def test_mixed_tuple_and_dict_samples_are_named():
    collate = new_collate()
    raises_naming(collate, [(zero_image(), 0), (zero_image(), 1), {"image": zero_image(), "label": 2}],
                  ValueError, r"samples\[2\].*tuple", "samples[0]")
    raises_naming(collate, [{"image": zero_image(), "label": 0}, (zero_image(), 1)],
                  ValueError, r"samples\[1\].*dict", "'image'", "'label'")
    raises_naming(collate, [{"image": zero_image(), "label": 0}, {"image": zero_image(), "y": 1}],
                  ValueError, r"samples\[1\]", "'label'")
    raises_naming(collate, [(zero_image(), 0), (zero_image(), 1, "extra")], ValueError, r"samples\[1\]")
    raises_naming(collate, [(zero_image(),)], ValueError, r"samples\[0\]")
    raises_naming(collate, [zero_image()], TypeError, r"samples\[0\]")


def test_float_images_with_uint8_output_are_refused():
    raises_naming(new_collate(dtype=torch.uint8), [(torch.rand(3, 8, 9), 0)] * 2, TypeError, r"samples\[0\].*dtype=torch.uint8")
    raises_naming(new_collate(dtype=torch.uint8), [(np.zeros((8, 9, 3), np.float32), 0)] * 2, TypeError, "dtype")


def test_unsupported_image_dtypes_are_named():
    collate = new_collate(dtype=torch.float32)
    raises_naming(collate, [(torch.zeros(3, 8, 9, dtype=torch.float64), 0)], TypeError, r"samples\[0\]", "float64")
    raises_naming(collate, [(torch.zeros(3, 8, 9, dtype=torch.int16), 0)], TypeError, r"samples\[0\]", "int16")


@pytest.mark.parametrize("bad", [[[0] * 9] * 8, "image.jpg", None, 3.0], ids=["list", "str", "None", "float"])
def test_an_unsupported_image_type_is_named(bad):
    collate = new_collate(dtype=torch.float32)
    raises_naming(collate, [(bad, 0)], TypeError, r"samples\[0\]", type(bad).__name__)
    raises_naming(collate, [(zero_image(), 0), (zero_image(), 0), (bad, 0)], TypeError, r"samples\[2\]")


def test_images_of_the_wrong_rank_are_named():
    collate = new_collate(dtype=torch.float32)
    raises_naming(collate, [(torch.zeros(2, 3, 8, 9, dtype=torch.uint8), 0)], ValueError, r"samples\[0\]", "(2, 3, 8, 9)")
    raises_naming(collate, [(np.zeros((8,), np.uint8), 0)], ValueError, r"samples\[0\]", "(8,)")


def test_an_empty_batch_is_refused():
    raises_naming(new_collate(), [], ValueError, "samples.*empty")


@pytest.mark.parametrize(
    "kw, exc, pattern",
    [
        (dict(dtype=torch.float32, mean=(0.5, 0.5, 0.5)), ValueError, "mean, std"),
        (dict(dtype=torch.float32, std=(0.5, 0.5, 0.5)), ValueError, "mean, std"),
        (dict(dtype=torch.float32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5)), ValueError, "mean, std.*same length"),
        (dict(dtype=torch.float32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.0, 0.5)), ValueError, r"std.*> 0"),
        (dict(dtype=torch.float32, mean=(0.5,), std=(-1.0,)), ValueError, r"std.*> 0"),
        (dict(dtype=torch.uint8, mean=(0.5,), std=(0.5,)), ValueError, "mean, std.*float output"),
        (dict(dtype=torch.float64), ValueError, "dtype"),
        (dict(dtype=torch.int32), ValueError, "dtype"),
    ],
    ids=["mean_only", "std_only", "lengths", "std_zero", "std_negative", "uint8_mean", "float64", "int32"],
)
def test_bad_constructor_arguments_are_named(kw, exc, pattern):
    with pytest.raises(exc, match=pattern):
        new_collate(**kw)


def test_the_mixup_argument_must_be_a_fastmix_mixup():
    with pytest.raises(TypeError, match="mixup"):
        fastmix.MixupCollate(lambda x, y: (x, y))


@pytest.mark.parametrize("mean", [(0.5, 0.5), (0.5, 0.5, 0.5, 0.5)], ids=["2", "4"])
def test_a_wrong_number_of_mean_values_for_the_images_is_named(mean):
    collate = new_collate(dtype=torch.float32, mean=mean, std=(0.25,) * len(mean))
    raises_naming(collate, [(zero_image(), 0)] * 4, ValueError, "mean, std", "expected 3", f"got {len(mean)}")
    raises_naming(collate, [(np.zeros((8, 9, 3), np.uint8), 0)] * 4, ValueError, "mean, std", "expected 3")


def test_a_refused_batch_leaves_the_random_stream_and_last_params_alone():
    kw = dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", num_classes=4, seed=0)
    collate = fastmix.MixupCollate(fastmix.Mixup(**kw), dtype=torch.float32, mean=(0.5, 0.5), std=(0.2, 0.2))
    untouched = fastmix.MixupCollate(fastmix.Mixup(**kw), dtype=torch.float32, mean=(0.5, 0.5), std=(0.2, 0.2))
    with pytest.raises(ValueError, match="mean, std"):
        collate([(zero_image(), 0)] * 4)  # 3 channels, 2 mean values
    assert collate.mixup.last_params is None
    good = [(zero_image((2, 8, 9)), 0)] * 4
    collate(good)
    untouched(good)
    assert torch.equal(collate.mixup.last_params.lam, untouched.mixup.last_params.lam)
