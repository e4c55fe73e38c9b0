"""Settings a training loop changes (timm's knobs: mixup_enabled, mix_prob, alphas, ...) are plain
writable attributes, validated when set, and reach every DataLoader worker for the next batch it
starts: fork and spawn, persistent or not. What a worker did to a batch comes back with it."""
import copy
import pickle

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import fastmix
from fastmix.sampling.params import MixKind

from .helpers import reference_mix_

KNOBS = {  # timm's attribute -> a valid new value
    "mixup_enabled": False, "mixup_alpha": 0.4, "cutmix_alpha": 0.7, "cutmix_minmax": (0.3, 0.6), "mix_prob": 0.25,
    "switch_prob": 0.9, "mode": "elem", "correct_lam": False, "label_smoothing": 0.2, "num_classes": 7,
    "multi_label": True,
    # the methods beyond timm's (FMix, ClassMix, ResizeMix), by the names the reference projects give them
    "fmix_alpha": 0.5, "fmix_decay_power": 4.0, "classmix": True, "method_probs": {"mixup": 1.0, "cutmix": 3.0},
    "resizemix_alpha": 0.7, "resizemix_lam_min": 0.2, "resizemix_lam_max": 0.6, "resizemix_interpolation": "nearest",
}


@pytest.mark.parametrize("attribute, value", KNOBS.items())
def test_every_timm_knob_is_a_writable_attribute_of_the_mixup_and_the_collate(attribute, value):
    mix = fastmix.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, num_classes=10)
    collate = fastmix.MixupCollate(mix)
    setattr(mix, attribute, value)
    expected = tuple(value) if isinstance(value, tuple) else value
    assert getattr(mix, attribute) == expected and getattr(collate, attribute) == expected
    setattr(collate, attribute, KNOBS[attribute] if attribute != "mixup_enabled" else True)
    assert getattr(mix, attribute) == getattr(collate, attribute)


@pytest.mark.parametrize("attribute, value, error, message", [
    ("mix_prob", 1.5, ValueError, "mix_prob: expected a float in [0, 1], got 1.5"),
    ("mixup_enabled", 1, TypeError, "mixup_enabled: expected a bool, got int"),
    ("mixup_alpha", -1.0, ValueError, "mixup_alpha: expected a finite float >= 0, got -1.0"),
    ("mode", "half", ValueError, "mode: expected one of 'batch', 'pair', 'elem', got 'half'"),
    ("num_classes", 0, ValueError, "num_classes: expected an int in [1, 2147483647], got 0"),
    ("cutmix_alpha", 0.0, ValueError, "mixup_alpha, cutmix_alpha: expected at least one > 0"),
    ("fmix_alpha", -1.0, ValueError, "fmix_alpha: expected a finite float >= 0, got -1.0"),
    ("fmix_decay_power", 0.0, ValueError, "fmix_decay_power: expected a finite float > 0, got 0.0"),
    ("fmix_decay_power", "3", TypeError, "fmix_decay_power: expected a float > 0, got str"),
    ("classmix", 1, TypeError, "classmix: expected a bool, got int"),
    ("method_probs", {"saliencymix": 1.0}, ValueError,
     "method_probs: expected keys among 'mixup', 'cutmix', 'fmix', 'classmix', 'resizemix', got 'saliencymix'"),
    ("method_probs", {"resizemix": 1.0}, ValueError,
     "method_probs['resizemix']: expected a weight only for an enabled method (cutmix), got 1.0"),
    ("resizemix_alpha", float("nan"), ValueError, "resizemix_alpha: expected a finite float >= 0, got nan"),
    ("resizemix_lam_min", 0.9, ValueError, "resizemix_lam_min, resizemix_lam_max: expected 0 <= resizemix_lam_min <= "
     "resizemix_lam_max <= 1, got 0.9 and 0.8"),
    ("resizemix_lam_max", 1.5, ValueError, "resizemix_lam_min, resizemix_lam_max: expected 0 <= resizemix_lam_min <= "
     "resizemix_lam_max <= 1, got 0.1 and 1.5"),
    ("resizemix_lam_max", None, TypeError, "resizemix_lam_max: expected a float in [0, 1], got NoneType"),
    ("resizemix_interpolation", "bicubic", ValueError,
     "resizemix_interpolation: expected one of 'bilinear', 'nearest', got 'bicubic'"),
    ("method_probs", {"cutmix": -1.0}, ValueError, "method_probs['cutmix']: expected a finite float >= 0, got -1.0"),
    ("method_probs", {"fmix": 1.0}, ValueError, "method_probs['fmix']: expected a weight only for an enabled method (cutmix), got 1.0"),
    ("method_probs", [1.0], TypeError, "method_probs: expected None or a dict of method names to weights, got list"),
])
def test_a_bad_value_is_refused_with_the_attribute_named_and_nothing_changes(attribute, value, error, message):
    mix = fastmix.Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, num_classes=10)
    before = (mix.policy, mix.mixup_enabled)
    with pytest.raises(error) as caught:
        setattr(fastmix.MixupCollate(mix), attribute, value)
    assert message in str(caught.value)
    assert (mix.policy, mix.mixup_enabled) == before


def test_a_change_applies_to_the_next_call():
    mix = fastmix.Mixup(mixup_alpha=1.0, num_classes=4, seed=0)
    images = torch.arange(4.0).view(4, 1, 1, 1).repeat(1, 1, 2, 2)
    mix.mixup_enabled = False
    out, targets = mix(images.clone(), torch.arange(4))
    assert torch.equal(out, images)
    assert torch.equal(targets.argmax(1), torch.arange(4)) and torch.allclose(targets.max(1).values, torch.full((4,), 0.925))
    mix.mixup_enabled = True
    mix.label_smoothing = 0.0
    _, targets = mix(images.clone(), torch.arange(4))
    assert bool((targets.max(1).values < 1).all()), "mixed again, without smoothing"


def test_a_plain_pickle_or_deepcopy_is_an_independent_copy():
    mix = fastmix.Mixup(mixup_alpha=1.0, num_classes=4)
    for clone in (pickle.loads(pickle.dumps(mix)), copy.deepcopy(mix)):
        clone.mix_prob = 0.5
        assert mix.mix_prob == 1.0 and clone.mix_prob == 0.5


# -- a real DataLoader: the main process switches, the workers follow ---------------------------------

NUM_CLASSES = 10


class ConstantImages(Dataset):
    """Sample i: a (3, 6, 5) uint8 image of value 7 * i % 256, label i % 10, and its index."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.full((3, 6, 5), 7 * i % 256, dtype=torch.uint8), i % NUM_CLASSES, i


def unmixed(indices: torch.Tensor) -> torch.Tensor:
    return (7 * indices % 256).to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 6, 5)


def smoothed_one_hot(labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    off = smoothing / NUM_CLASSES
    return torch.full((len(labels), NUM_CLASSES), off).scatter_(1, labels.view(-1, 1), 1 - smoothing + off)


def run_epoch(loader):
    """(images, targets, indices, params) of every batch, each checked: the images are what its
    params (made in a worker) do to the unmixed samples, exactly."""
    batches = []
    for images, targets, indices, params in loader:
        assert isinstance(params, fastmix.MixParams)
        assert torch.equal(images, reference_mix_(unmixed(indices).clone(), params))
        batches.append((images, targets, indices, params))
    return batches


@pytest.mark.parametrize("context, persistent", [("fork", True), ("fork", False), pytest.param("spawn", True, marks=pytest.mark.slow),
                                                  pytest.param("spawn", False, marks=pytest.mark.slow)])
def test_switching_in_the_main_process_reaches_every_worker(context, persistent):
    mix = fastmix.Mixup(mixup_alpha=1.0, mode="elem", label_smoothing=0.1, num_classes=NUM_CLASSES, seed=0)
    collate = fastmix.MixupCollate(mix, return_params=True)
    loader = DataLoader(ConstantImages(48), batch_size=8, shuffle=True, num_workers=2, collate_fn=collate,
                        multiprocessing_context=context, persistent_workers=persistent)

    mixed = [b for b in run_epoch(loader) if bool(b[3].mixed().any())]
    assert len(mixed) == 6, "epoch 0: mixing on, every batch mixed"

    collate.mixup_enabled = False  # as timm's PrefetchLoader does at mixup_off_epoch
    for images, targets, indices, params in run_epoch(loader):
        assert not bool(params.mixed().any())
        assert torch.equal(images, unmixed(indices))
        assert torch.equal(targets, smoothed_one_hot(indices % NUM_CLASSES, 0.1))

    mix.mixup_enabled = True  # back on, set on the Mixup this time
    mix.mix_prob = 0.25
    kinds = torch.cat([b[3].kind for b in run_epoch(loader) + run_epoch(loader)])
    fraction = float((kinds != int(MixKind.NONE)).float().mean())
    assert 0.08 <= fraction <= 0.45, f"mixed fraction {fraction} for mix_prob=0.25 (96 samples)"


def test_the_other_methods_knobs_reach_every_worker():
    mix = fastmix.Mixup(mixup_alpha=1.0, mode="elem", num_classes=NUM_CLASSES, seed=2)
    collate = fastmix.MixupCollate(mix, return_params=True)
    loader = DataLoader(ConstantImages(32), batch_size=8, num_workers=2, collate_fn=collate, persistent_workers=True)
    assert all(b[3].method is None for b in run_epoch(loader)), "Mixup only: the stream of timm's methods"
    mix.fmix_alpha = 1.0
    mix.method_probs = {"fmix": 1.0}
    for images, targets, indices, params in run_epoch(loader):  # (each batch replayed from its params)
        assert bool((params.kind == int(MixKind.MASK)).all()) and params.pixel_masks() is not None
        assert torch.equal(targets, fastmix.mix_targets(indices % NUM_CLASSES, params, NUM_CLASSES, smoothing=0.1))
    mix.resizemix_alpha = 1.0
    mix.resizemix_interpolation = "nearest"
    mix.resizemix_lam_min, mix.resizemix_lam_max = 0.5, 0.5  # one box size: sides sqrt(0.5) * (H, W), clipped
    mix.method_probs = {"resizemix": 1.0}
    for images, targets, indices, params in run_epoch(loader):
        assert bool((params.kind == int(MixKind.RESIZE_NEAREST)).all())
        sides = params.box[:, 1::2] - params.box[:, 0::2]
        assert bool((sides <= torch.tensor([int(6 * 0.5 ** 0.5), int(5 * 0.5 ** 0.5)])).all()), "(H, W) = (6, 5)"
        assert torch.equal(targets, fastmix.mix_targets(indices % NUM_CLASSES, params, NUM_CLASSES, smoothing=0.1))


def test_the_params_a_worker_drew_replay_its_batch_and_targets():
    mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode="pair", num_classes=NUM_CLASSES, seed=1)
    collate = fastmix.MixupCollate(mix, return_params=True)
    loader = DataLoader(ConstantImages(20), batch_size=5, num_workers=1, collate_fn=collate)
    for images, targets, indices, params in run_epoch(loader):
        expected = fastmix.mix_targets(indices % NUM_CLASSES, params, NUM_CLASSES, smoothing=0.1)
        assert torch.equal(targets, expected)
    assert mix.last_params is None, "the main process collated nothing: its last_params says so"


def test_dict_samples_carry_the_params_under_their_key():
    collate = fastmix.MixupCollate(fastmix.Mixup(num_classes=3, seed=0), return_params=True)
    out = collate([{"image": torch.zeros(3, 4, 4, dtype=torch.uint8), "label": i} for i in range(3)])
    assert set(out) == {"image", "label", "mix_params"} and out["mix_params"].batch_size == 3


def test_a_reader_sees_only_states_that_were_written_while_a_thread_writes():
    import threading

    mix = fastmix.Mixup(mixup_alpha=0.0, cutmix_minmax=(0.1, 0.2), num_classes=4)
    written = {(0.1, 0.2), (0.6, 0.8)}
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            for value in written:
                mix.cutmix_minmax = value

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen = {mix.policy.cutmix_minmax for _ in range(20000)}
    finally:
        stop.set()
        thread.join()
    assert seen <= written, f"a state never written: {seen - written}"
