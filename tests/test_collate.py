"""fastmix.MixupCollate, specified against the torch reference: every input kind (torch CHW uint8 /
float32, numpy HWC / HW uint8, PIL RGB / L), every output dtype and layout, with and without
normalisation, tuple and dict samples; the semantics a user relies on; bad input; a real DataLoader
(worker processes with fork and spawn, pin_memory, persistent workers, an odd last batch); and the
per-worker random streams."""
import pickle
import warnings
import zlib

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, default_collate, get_worker_info

import fastmix
from fastmix import MixKind, MixParams
from .helpers import COMPILED_BACKENDS, new_collate, reference_mix_into, reference_mix_, reference_targets, zero_image

BACKENDS = COMPILED_BACKENDS + ["torch"]
MODES = ["batch", "pair", "elem"]
BATCH_SIZES = [1, 2, 3, 7, 8]
OUT_DTYPES = [torch.uint8, torch.float32, torch.bfloat16, torch.float16]
INPUT_KINDS = ["torch_chw_uint8", "torch_chw_float32", "numpy_hwc_uint8", "numpy_hw_uint8", "pil_rgb", "pil_l"]
NUM_CLASSES = 10
SMOOTHING = 0.1
HEIGHT, WIDTH = 9, 11  # not square: a swapped H/W shows
MEAN = {3: (0.485, 0.456, 0.406), 1: (0.5,)}
STD = {3: (0.229, 0.224, 0.225), 1: (0.25,)}


def channels_of(kind):
    return 1 if kind in ("numpy_hw_uint8", "pil_l") else 3


def is_uint8_kind(kind):
    return kind != "torch_chw_float32"


def make_raw_image(kind, generator):
    """One decoded image as a dataset would return it."""
    if kind == "torch_chw_float32":
        return torch.rand(3, HEIGHT, WIDTH, generator=generator) * 1.5 - 0.25
    if kind == "torch_chw_uint8":
        return torch.randint(0, 256, (3, HEIGHT, WIDTH), dtype=torch.uint8, generator=generator)
    hwc = torch.randint(0, 256, (HEIGHT, WIDTH, 3), dtype=torch.uint8, generator=generator).numpy()
    if kind == "numpy_hwc_uint8":
        return hwc
    if kind == "numpy_hw_uint8":
        return np.ascontiguousarray(hwc[:, :, 0])
    from PIL import Image

    image = Image.fromarray(hwc if kind == "pil_rgb" else np.ascontiguousarray(hwc[:, :, 0]))
    assert image.mode == {"pil_rgb": "RGB", "pil_l": "L"}[kind]
    return image
    raise AssertionError(kind)


def reference_stack(raw_images):
    """(stacked, hwc) as default_collate would stack them: CHW tensors as they are, HWC arrays as
    (B, H, W, C) (grayscale (H, W) gets a channel dim), PIL images through numpy."""
    if isinstance(raw_images[0], torch.Tensor):
        return torch.stack(raw_images), False
    arrays = [np.asarray(im) for im in raw_images]
    arrays = [a[:, :, None] if a.ndim == 2 else a for a in arrays]
    return torch.from_numpy(np.stack(arrays)), True


def reference_collate(collate, raw_images, labels, params):
    """What the collate must return for these samples and params, from the torch reference."""
    stacked, hwc = reference_stack(raw_images)
    channels = stacked.shape[3] if hwc else stacked.shape[1]
    height, width = (stacked.shape[1], stacked.shape[2]) if hwc else (stacked.shape[2], stacked.shape[3])
    memory_format = torch.channels_last if collate.channels_last else torch.contiguous_format
    out = torch.empty((len(raw_images), channels, height, width), dtype=collate.dtype, memory_format=memory_format)
    scale, bias = collate.affine(channels, stacked.dtype == torch.uint8)
    reference_mix_into(out, stacked, params, scale, bias, hwc)
    policy = collate.mixup.policy
    targets = reference_targets(torch.as_tensor(labels, dtype=torch.int64), params,
                                    policy.num_classes, policy.label_smoothing)
    return out, targets


def label_as(form, value):
    """Class indices come as ints, numpy integers or 0-d tensors."""
    return [int(value), np.int64(value), torch.tensor(value)][form % 3]


def smoothed_one_hot(labels, num_classes, smoothing):
    off = smoothing / num_classes
    expected = torch.full((len(labels), num_classes), off)
    expected[torch.arange(len(labels)), torch.as_tensor(labels)] = 1 - smoothing + off
    return expected


def assert_layout(images, batch, channels, dtype, channels_last):
    assert images.shape == (batch, channels, HEIGHT, WIDTH)
    assert images.dtype == dtype
    if channels_last:
        assert images.is_contiguous(memory_format=torch.channels_last)
    else:
        assert images.is_contiguous()


def snapshot(raw):
    return raw.clone() if isinstance(raw, torch.Tensor) else np.array(raw, copy=True)


def same_raw(a, b):
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else np.array_equal(np.asarray(a), b)


# --------------------------------------------------------------------------------------------------
# parity with the reference


def valid_conversions():
    """(kind, out dtype, normalise): uint8 output takes uint8 images and no mean/std (the other
    combinations are refused: see the bad-input tests)."""
    for kind in INPUT_KINDS:
        for out_dtype in OUT_DTYPES:
            for normalise in (False, True):
                if out_dtype == torch.uint8 and (normalise or not is_uint8_kind(kind)):
                    continue
                name = f"{kind}-{str(out_dtype).replace('torch.', '')}-{'mean_std' if normalise else 'plain'}"
                yield pytest.param(kind, out_dtype, normalise, id=name)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("kind, out_dtype, normalise", list(valid_conversions()))
def test_tuple_samples_match_reference(kind, out_dtype, normalise, channels_last, backend):
    if kind == "pil_rgb" or kind == "pil_l":
        pytest.importorskip("PIL.Image", reason="Pillow is needed for PIL samples: pip install pillow")
    channels = channels_of(kind)
    norm = dict(mean=MEAN[channels], std=STD[channels]) if normalise else {}
    generator = torch.Generator().manual_seed(zlib.crc32(f"{kind}{out_dtype}{channels_last}{normalise}".encode()))
    kinds_seen = set()
    for mode in MODES:
        mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, label_smoothing=SMOOTHING,
                            num_classes=NUM_CLASSES, seed=7, backend=backend)
        collate = fastmix.MixupCollate(mix, dtype=out_dtype, channels_last=channels_last, **norm)
        for batch in BATCH_SIZES:
            raw = [make_raw_image(kind, generator) for _ in range(batch)]
            labels = torch.randint(0, NUM_CLASSES, (batch,), generator=generator).tolist()
            before = [snapshot(r) for r in raw]
            images, targets = collate([(r, label_as(i, y)) for i, (r, y) in enumerate(zip(raw, labels))])
            params = mix.last_params
            assert params is not None and params.batch_size == batch
            kinds_seen.update(params.kind[params.mixed()].tolist())

            expected_images, expected_targets = reference_collate(collate, raw, labels, params)
            assert_layout(images, batch, channels, out_dtype, channels_last)
            assert torch.equal(images, expected_images), f"mode={mode} batch={batch}"
            assert targets.dtype == torch.float32 and targets.shape == (batch, NUM_CLASSES)
            assert torch.equal(targets, expected_targets), f"mode={mode} batch={batch}"
            assert all(same_raw(r, b) for r, b in zip(raw, before)), "the samples were modified"
    # Both mixing kinds were exercised, not only untouched samples.
    assert kinds_seen == {int(MixKind.BLEND), int(MixKind.PASTE)}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["torch_chw_uint8", "numpy_hwc_uint8", "pil_rgb", "numpy_hw_uint8"])
@pytest.mark.parametrize("out_dtype", [torch.uint8, torch.float32], ids=["uint8", "float32_mean_std"])
def test_dict_samples_with_custom_keys_and_extra_fields(kind, out_dtype, backend):
    if kind == "pil_rgb":
        pytest.importorskip("PIL.Image", reason="Pillow is needed for PIL samples: pip install pillow")
    channels = channels_of(kind)
    norm = dict(mean=MEAN[channels], std=STD[channels]) if out_dtype != torch.uint8 else {}
    generator = torch.Generator().manual_seed(11)
    for mode in MODES:
        mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, label_smoothing=SMOOTHING,
                            num_classes=NUM_CLASSES, seed=3, backend=backend)
        collate = fastmix.MixupCollate(mix, dtype=out_dtype, image_key="img", label_key="target", **norm)
        for batch in [1, 4, 5]:
            raw = [make_raw_image(kind, generator) for _ in range(batch)]
            labels = torch.randint(0, NUM_CLASSES, (batch,), generator=generator).tolist()
            extras = [{"idx": 100 + i, "name": f"file{i}.jpg", "aux": torch.full((2,), float(i))} for i in range(batch)]
            samples = [{"img": r, "target": label_as(i, y), **e} for i, (r, y, e) in enumerate(zip(raw, labels, extras))]
            result = collate(samples)

            assert isinstance(result, dict)
            assert set(result) == {"img", "target", "idx", "name", "aux"}
            expected_images, expected_targets = reference_collate(collate, raw, labels, mix.last_params)
            assert_layout(result["img"], batch, channels, out_dtype, False)
            assert torch.equal(result["img"], expected_images)
            assert torch.equal(result["target"], expected_targets)
            expected_rest = default_collate(extras)
            assert torch.equal(result["idx"], expected_rest["idx"]) and result["idx"].dtype == torch.int64
            assert result["name"] == expected_rest["name"] == [f"file{i}.jpg" for i in range(batch)]
            assert torch.equal(result["aux"], expected_rest["aux"]) and result["aux"].shape == (batch, 2)


def test_dict_samples_without_extra_fields_give_images_and_targets_only():
    collate = fastmix.MixupCollate(fastmix.Mixup(num_classes=NUM_CLASSES, seed=0))
    generator = torch.Generator().manual_seed(0)
    raw = [make_raw_image("torch_chw_uint8", generator) for _ in range(4)]
    result = collate([{"image": r, "label": i} for i, r in enumerate(raw)])
    assert set(result) == {"image", "label"}
    expected_images, expected_targets = reference_collate(collate, raw, [0, 1, 2, 3], collate.mixup.last_params)
    assert torch.equal(result["image"], expected_images) and torch.equal(result["label"], expected_targets)


@pytest.mark.parametrize("backend", BACKENDS)
def test_tuple_samples_with_extra_fields_are_collated_like_default_collate(backend):
    mix = fastmix.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", num_classes=NUM_CLASSES, seed=1, backend=backend)
    collate = fastmix.MixupCollate(mix, dtype=torch.float32)
    generator = torch.Generator().manual_seed(5)
    raw = [make_raw_image("numpy_hwc_uint8", generator) for _ in range(5)]
    samples = [(r, i, 10 * i, f"n{i}", torch.tensor([i, -i])) for i, r in enumerate(raw)]
    result = collate(samples)
    assert isinstance(result, tuple) and len(result) == 5
    images, targets, idx, names, aux = result
    expected_images, expected_targets = reference_collate(collate, raw, list(range(5)), mix.last_params)
    assert torch.equal(images, expected_images) and torch.equal(targets, expected_targets)
    _, _, *expected_rest = default_collate([(0, 0, *s[2:]) for s in samples])
    assert torch.equal(idx, expected_rest[0]) and names == expected_rest[1] and torch.equal(aux, expected_rest[2])


@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_labels_match_reference(backend):
    mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", label_smoothing=SMOOTHING,
                        num_classes=4, seed=2, backend=backend)
    collate = fastmix.MixupCollate(mix)
    generator = torch.Generator().manual_seed(2)
    raw = [make_raw_image("torch_chw_uint8", generator) for _ in range(7)]
    dense = torch.rand(7, 4, generator=generator).softmax(-1)
    images, targets = collate([(r, d) for r, d in zip(raw, dense)])
    params = mix.last_params
    assert torch.equal(targets, reference_targets(dense, params, 4, SMOOTHING))
    expected_images, _ = reference_collate(collate, raw, [0] * 7, params)
    assert torch.equal(images, expected_images)


# --------------------------------------------------------------------------------------------------
# semantics


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("out_dtype", [torch.uint8, torch.float32], ids=["uint8", "float32_mean_std"])
def test_prob_zero_is_plain_stacking_with_smoothed_one_hot_targets(out_dtype, backend):
    for mode in MODES:
        mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, prob=0.0, mode=mode, label_smoothing=SMOOTHING,
                            num_classes=NUM_CLASSES, seed=0, backend=backend)
        norm = dict(mean=MEAN[3], std=STD[3]) if out_dtype == torch.float32 else {}
        collate = fastmix.MixupCollate(mix, dtype=out_dtype, **norm)
        generator = torch.Generator().manual_seed(1)
        raw = [make_raw_image("numpy_hwc_uint8", generator) for _ in range(6)]
        labels = [3, 1, 4, 1, 5, 9]
        images, targets = collate(list(zip(raw, labels)))
        stacked = torch.from_numpy(np.stack(raw)).permute(0, 3, 1, 2)
        if out_dtype == torch.uint8:
            assert torch.equal(images, stacked)
        else:
            mean = torch.tensor(MEAN[3]).view(1, 3, 1, 1)
            std = torch.tensor(STD[3]).view(1, 3, 1, 1)
            torch.testing.assert_close(images, (stacked.float() / 255 - mean) / std, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(targets, smoothed_one_hot(labels, NUM_CLASSES, SMOOTHING), rtol=0, atol=1e-7)
        assert not bool(mix.last_params.mixed().any())


def test_uint8_to_float32_without_mean_std_is_x_over_255_after_mixing():
    mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", num_classes=NUM_CLASSES, seed=4)
    collate = fastmix.MixupCollate(mix, dtype=torch.float32)
    scale, bias = collate.affine(3, True)
    assert torch.equal(scale, torch.full((3,), 1 / 255, dtype=torch.float32)) and torch.equal(bias, torch.zeros(3))
    assert collate.affine(3, False)[0].tolist() == [1.0, 1.0, 1.0]
    generator = torch.Generator().manual_seed(4)
    raw = [make_raw_image("torch_chw_uint8", generator) for _ in range(9)]
    images, _ = collate([(r, 0) for r in raw])
    mixed = reference_mix_(torch.stack(raw).float(), mix.last_params)
    assert torch.equal(images, mixed * torch.tensor(1 / 255, dtype=torch.float32))
    torch.testing.assert_close(images, mixed / 255, rtol=1e-6, atol=0)
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    # Mixing made values that no single image has: the blend is not rounded to uint8 first.
    assert not torch.equal(mixed, mixed.round())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("channels", [3, 1])
def test_normalised_float32_is_close_to_the_naive_formula(backend, channels):
    for mode in MODES:
        mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, num_classes=NUM_CLASSES, seed=6, backend=backend)
        collate = fastmix.MixupCollate(mix, dtype=torch.float32, mean=MEAN[channels], std=STD[channels])
        generator = torch.Generator().manual_seed(6)
        kind = "numpy_hwc_uint8" if channels == 3 else "numpy_hw_uint8"
        raw = [make_raw_image(kind, generator) for _ in range(7)]
        images, _ = collate([(r, 0) for r in raw])
        stacked, _ = reference_stack(raw)
        mixed = reference_mix_(stacked.permute(0, 3, 1, 2).float(), mix.last_params)
        mean = torch.tensor(MEAN[channels]).view(1, -1, 1, 1)
        std = torch.tensor(STD[channels]).view(1, -1, 1, 1)
        torch.testing.assert_close(images, (mixed / 255 - mean) / std, rtol=1e-6, atol=1e-6)


def test_a_single_mean_and_std_value_applies_to_every_channel():
    mix = fastmix.Mixup(mixup_alpha=0.8, num_classes=NUM_CLASSES, seed=0)
    collate = fastmix.MixupCollate(mix, dtype=torch.float32, mean=(0.5,), std=(0.25,))
    generator = torch.Generator().manual_seed(0)
    raw = [make_raw_image("torch_chw_uint8", generator) for _ in range(4)]
    images, _ = collate([(r, 0) for r in raw])
    mixed = reference_mix_(torch.stack(raw).float(), mix.last_params)
    torch.testing.assert_close(images, (mixed / 255 - 0.5) / 0.25, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mixup_enabled_false_switches_mixing_off(backend):
    mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", label_smoothing=SMOOTHING,
                        num_classes=NUM_CLASSES, seed=0, backend=backend)
    collate = fastmix.MixupCollate(mix)
    generator = torch.Generator().manual_seed(8)
    raw = [make_raw_image("torch_chw_uint8", generator) for _ in range(8)]
    labels = list(range(8))
    images, _ = collate(list(zip(raw, labels)))
    assert not torch.equal(images, torch.stack(raw)), "mixing is on by default"
    mix.mixup_enabled = False
    images, targets = collate(list(zip(raw, labels)))
    assert torch.equal(images, torch.stack(raw))
    torch.testing.assert_close(targets, smoothed_one_hot(labels, NUM_CLASSES, SMOOTHING), rtol=0, atol=1e-7)
    mix.mixup_enabled = True
    images, _ = collate(list(zip(raw, labels)))
    assert not torch.equal(images, torch.stack(raw)), "mixing is back on"


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("mode", MODES)
def test_compact_targets_stand_for_the_soft_targets(mode, smoothing):
    generator = torch.Generator().manual_seed(9)
    kw = dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, label_smoothing=smoothing, num_classes=NUM_CLASSES, seed=12)
    dense_collate = fastmix.MixupCollate(fastmix.Mixup(**kw), dtype=torch.float32)
    compact_collate = fastmix.MixupCollate(fastmix.Mixup(**kw), dtype=torch.float32, compact_targets=True)
    for batch in BATCH_SIZES:
        raw = [make_raw_image("numpy_hwc_uint8", generator) for _ in range(batch)]
        samples = [(r, int(y)) for r, y in zip(raw, torch.randint(0, NUM_CLASSES, (batch,), generator=generator))]
        images, soft = dense_collate(samples)
        compact_images, compact = compact_collate(samples)
        assert torch.equal(images, compact_images)
        assert isinstance(compact, fastmix.CompactTargets)
        assert compact.index_a.dtype == torch.int64 and compact.index_b.dtype == torch.int64
        assert compact.lam.dtype == torch.float32 and compact.lam.shape == (batch,)
        torch.testing.assert_close(compact.dense(NUM_CLASSES, smoothing), soft, rtol=0, atol=1e-6)
        logits = torch.randn(batch, NUM_CLASSES, generator=generator) * 3
        naive = -(soft * logits.log_softmax(-1)).sum(-1).mean()
        loss = fastmix.compact_targets_loss(logits, compact, smoothing)
        torch.testing.assert_close(loss, naive, rtol=1e-5, atol=1e-5)


def test_collate_pickles_before_and_after_use_and_works_unpickled():
    kw = dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", num_classes=NUM_CLASSES, seed=21)
    collate = fastmix.MixupCollate(fastmix.Mixup(**kw), dtype=torch.float32, mean=MEAN[3], std=STD[3],
                                   channels_last=True, image_key="img", label_key="y")
    generator = torch.Generator().manual_seed(3)
    raw = [make_raw_image("numpy_hwc_uint8", generator) for _ in range(6)]
    samples = [{"img": r, "y": i} for i, r in enumerate(raw)]

    fresh = pickle.loads(pickle.dumps(collate))
    first = collate(samples)
    used = pickle.loads(pickle.dumps(collate))
    for clone in (fresh, used):
        assert (clone.dtype, clone.channels_last, clone.image_key, clone.label_key) == (torch.float32, True, "img", "y")
        assert torch.equal(clone.mean, collate.mean) and torch.equal(clone.std, collate.std)
        assert clone.mixup.policy == collate.mixup.policy and clone.mixup.seed == 21
        out = clone(samples)
        expected_images, expected_targets = reference_collate(clone, raw, list(range(6)), clone.mixup.last_params)
        assert out["img"].is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(out["img"], expected_images) and torch.equal(out["y"], expected_targets)
        # A copy makes its own stream from the seed (as a new process would): its first batch is
        # the original's first batch, whether it was pickled before or after the original ran.
        assert torch.equal(out["img"], first["img"]) and torch.equal(out["y"], first["y"])
    # The original's stream goes on: its second batch is a new draw.
    assert not torch.equal(collate(samples)["img"], first["img"])


def test_repr_names_the_settings():
    text = repr(fastmix.MixupCollate(fastmix.Mixup(num_classes=3), dtype=torch.float16, mean=(0.5,), std=(0.2,)))
    assert "MixupCollate" in text and "float16" in text and "num_classes=3" in text


# --------------------------------------------------------------------------------------------------
# after a refused batch (what is refused: tests/test_errors_collate.py)


def test_the_collate_still_works_after_a_refused_batch():
    collate = new_collate(dtype=torch.float32)
    with pytest.raises(ValueError):
        collate([(zero_image(), 0), (zero_image(), 9)])
    generator = torch.Generator().manual_seed(0)
    raw = [make_raw_image("torch_chw_uint8", generator) for _ in range(3)]
    images, targets = collate([(r, 1) for r in raw])
    expected_images, expected_targets = reference_collate(collate, raw, [1, 1, 1], collate.mixup.last_params)
    assert torch.equal(images, expected_images) and torch.equal(targets, expected_targets)


# --------------------------------------------------------------------------------------------------
# a real DataLoader


class SyntheticImages(Dataset):
    """(image (H, W, 3) uint8 numpy, label, index); module level so spawn workers can unpickle it."""

    def __init__(self, n=37, height=24, width=20, num_classes=NUM_CLASSES):
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (n, height, width, 3), dtype=torch.uint8, generator=generator).numpy()
        self.labels = torch.randint(0, num_classes, (n,), generator=generator).tolist()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.labels[i], i


class CollateWithParams:
    """The collate, plus what a test needs from inside the worker: the params it drew, the worker
    id, and whether the batch it built is in shared memory (checked before it is sent)."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, samples):
        images, targets, indices = self.collate(samples)
        info = get_worker_info()
        params = self.collate.mixup.last_params
        return images, targets, indices, params.as_tuple(), -1 if info is None else info.id, images.is_shared()


def collate_for_loader(mode="elem", seed=0, **kw):
    mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, label_smoothing=SMOOTHING,
                        num_classes=NUM_CLASSES, seed=seed)
    return fastmix.MixupCollate(mix, **kw)


def check_loader_batch(ds, collate, batch, num_workers):
    images, targets, indices, params, worker_id, built_in_shared_memory = batch
    params = MixParams(*params)
    size = len(indices)
    raw = [ds[i][0] for i in indices.tolist()]
    labels = [ds[i][1] for i in indices.tolist()]
    expected_images, expected_targets = reference_collate(collate, raw, labels, params)
    assert images.shape == (size, 3, ds.images.shape[1], ds.images.shape[2]) and images.dtype == collate.dtype
    if collate.channels_last:
        assert images.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(images, expected_images)
    assert targets.shape == (size, NUM_CLASSES) and torch.equal(targets, expected_targets)
    if num_workers > 0:
        assert 0 <= worker_id < num_workers
        assert built_in_shared_memory, "a worker's batch must be built in shared memory"
        assert images.is_shared()
    else:
        assert worker_id == -1
    return params


@pytest.mark.parametrize(
    "num_workers, context",
    [(0, None), (2, "fork"), pytest.param(2, "spawn", marks=pytest.mark.slow)],
    ids=["main_process", "fork", "spawn"],
)
def test_dataloader_batches_match_reference_with_pin_memory_and_an_odd_last_batch(num_workers, context):
    ds = SyntheticImages(n=37)
    collate = collate_for_loader(dtype=torch.float32, mean=MEAN[3], std=STD[3], channels_last=True)
    loader = DataLoader(ds, batch_size=8, shuffle=True, drop_last=False, num_workers=num_workers,
                        multiprocessing_context=context, collate_fn=CollateWithParams(collate), pin_memory=True,
                        generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = list(loader)
    sizes, seen = [], []
    for batch in batches:
        check_loader_batch(ds, collate, batch, num_workers)
        sizes.append(len(batch[2]))
        seen += batch[2].tolist()
        # pin_memory=True: with an accelerator the batch is pinned; torch 2.13 without one (this
        # CPU-only build) warns once per iterator that pinned memory won't be used, and the batch
        # arrives as it is.
        assert batch[0].is_pinned() == torch.accelerator.is_available()
    if not torch.accelerator.is_available():
        assert any("pin_memory" in str(w.message) and "no accelerator" in str(w.message) for w in caught)
    assert sizes == [8, 8, 8, 8, 5], "the odd last batch is kept"
    assert sorted(seen) == list(range(37))
    if num_workers:
        assert {batch[4] for batch in batches} == set(range(num_workers))


@pytest.mark.slow
def test_dataloader_with_persistent_spawn_workers_over_two_epochs():
    ds = SyntheticImages(n=24, height=16, width=16)
    collate = collate_for_loader(dtype=torch.uint8)
    loader = DataLoader(ds, batch_size=6, shuffle=True, num_workers=2, multiprocessing_context="spawn",
                        persistent_workers=True, collate_fn=CollateWithParams(collate),
                        generator=torch.Generator().manual_seed(2))
    epochs = []
    for _ in range(2):
        lams = []
        for batch in loader:
            lams.append(check_loader_batch(ds, collate, batch, 2).lam)
        assert len(lams) == 4
        epochs.append(torch.stack(lams))
    # The workers persist and their streams go on: epoch 2 draws new lambdas.
    assert not torch.equal(epochs[0], epochs[1])


def loader_run(seed_collate, seed_loader, persistent, epochs=2, num_workers=2, n=32, batch_size=4):
    ds = SyntheticImages(n=n, height=16, width=16)
    collate = collate_for_loader(mode="elem", seed=seed_collate, dtype=torch.float32)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                        multiprocessing_context="fork", persistent_workers=persistent,
                        collate_fn=CollateWithParams(collate), generator=torch.Generator().manual_seed(seed_loader))
    runs = []
    for _ in range(epochs):
        runs.append([(b[0], b[1], b[2], b[3][1], b[4]) for b in loader])
    return runs


@pytest.mark.filterwarnings("ignore:This DataLoader will create 4 worker processes")  # 2-core CI machines
def test_four_workers_draw_different_lambda_sequences():
    (epoch,) = loader_run(seed_collate=0, seed_loader=0, persistent=False, epochs=1, num_workers=4, n=64)
    per_worker = {}
    for _, _, _, lam, worker in epoch:
        per_worker.setdefault(worker, []).append(lam)
    assert sorted(per_worker) == [0, 1, 2, 3]
    sequences = {w: torch.stack(lams) for w, lams in per_worker.items()}
    assert all(s.shape == (4, 4) for s in sequences.values())
    for a in range(4):
        for b in range(a + 1, 4):
            assert not torch.equal(sequences[a], sequences[b]), f"workers {a} and {b} drew the same lambdas"
            assert not torch.equal(sequences[a][0], sequences[b][0]), f"workers {a} and {b} start alike"
    all_lams = [tuple(lam.tolist()) for _, _, _, lam, _ in epoch]
    assert len(set(all_lams)) == len(all_lams) == 16


@pytest.mark.parametrize("persistent", [False, True], ids=["fresh_workers", "persistent_workers"])
def test_same_seeds_give_the_same_batches_over_two_epochs(persistent):
    first = loader_run(seed_collate=5, seed_loader=1, persistent=persistent)
    second = loader_run(seed_collate=5, seed_loader=1, persistent=persistent)
    for epoch_a, epoch_b in zip(first, second):
        assert len(epoch_a) == len(epoch_b) == 8
        for (images_a, targets_a, idx_a, lam_a, _), (images_b, targets_b, idx_b, lam_b, _) in zip(epoch_a, epoch_b):
            assert torch.equal(idx_a, idx_b)
            assert torch.equal(images_a, images_b) and torch.equal(targets_a, targets_b)
            assert torch.equal(lam_a, lam_b)
    # ... and the two epochs of a run differ (new worker seeds, or streams that go on).
    lams = [torch.stack([b[3] for b in epoch]) for epoch in first]
    assert not torch.equal(lams[0], lams[1])


def test_different_dataloader_seeds_give_different_lambdas():
    (a,) = loader_run(seed_collate=5, seed_loader=1, persistent=False, epochs=1)
    (b,) = loader_run(seed_collate=5, seed_loader=2, persistent=False, epochs=1)
    # (CutMix lambdas are box areas, a few hundred values on 16x16 images: compare whole batches.)
    lams_a = {tuple(x[3].tolist()) for x in a}
    lams_b = {tuple(x[3].tolist()) for x in b}
    assert len(lams_a) == len(lams_b) == 8
    assert not lams_a & lams_b, "a new DataLoader seed must give new worker streams"


def test_read_only_arrays_as_pil_gives_them_are_read_without_a_copy_or_a_warning():
    raw = [np.full((6, 5, 3), 40 * i, dtype=np.uint8) for i in range(4)]
    read_only = [a.copy() for a in raw]
    for a in read_only:
        a.flags.writeable = False
    expected = fastmix.MixupCollate(fastmix.Mixup(cutmix_alpha=1.0, num_classes=4, seed=0))([(a, i) for i, a in enumerate(raw)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = fastmix.MixupCollate(fastmix.Mixup(cutmix_alpha=1.0, num_classes=4, seed=0))([(a, i) for i, a in enumerate(read_only)])
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert all(not a.flags.writeable for a in read_only)
