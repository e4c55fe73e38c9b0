"""Bad knobs are refused by name: Mixup(...) checks every knob when it is built (and num_classes
again when it is set during training), raising ValueError or TypeError whose message begins with
the knob's name. A backend named at construction is resolved there.

Read each table as a specification: (what is wrong, the exception, how its message begins: the
argument's name, as a regex)."""
import math

import pytest
import torch

import fastmix

from .helpers import B, C, HAS_CUDA, NAN, small_images, small_labels


# ---------------------------------------------------------------------------------------------
# Mixup(...): the knobs, checked when the object is built
# ---------------------------------------------------------------------------------------------

BAD_KNOBS = [
    # mixup_alpha / cutmix_alpha: finite floats >= 0
    (dict(mixup_alpha=-0.1), ValueError, "mixup_alpha:"),
    (dict(mixup_alpha=NAN), ValueError, "mixup_alpha:"),
    (dict(mixup_alpha=math.inf), ValueError, "mixup_alpha:"),
    (dict(mixup_alpha="0.8"), TypeError, "mixup_alpha:"),
    (dict(mixup_alpha=None), TypeError, "mixup_alpha:"),
    (dict(cutmix_alpha=-1.0), ValueError, "cutmix_alpha:"),
    (dict(cutmix_alpha=NAN), ValueError, "cutmix_alpha:"),
    (dict(cutmix_alpha=True), TypeError, "cutmix_alpha:"),
    # nothing to mix with while mixing is on
    (dict(mixup_alpha=0.0, cutmix_alpha=0.0), ValueError, "mixup_alpha, cutmix_alpha:"),
    (dict(mixup_alpha=0.0, cutmix_alpha=0.0, prob=0.5), ValueError, "mixup_alpha, cutmix_alpha:"),
    # prob / switch_prob: probabilities
    (dict(prob=-0.1), ValueError, "prob:"),
    (dict(prob=1.1), ValueError, "prob:"),
    (dict(prob=NAN), ValueError, "prob:"),
    (dict(prob="1"), TypeError, "prob:"),
    (dict(switch_prob=-0.5), ValueError, "switch_prob:"),
    (dict(switch_prob=2.0), ValueError, "switch_prob:"),
    (dict(switch_prob=NAN), ValueError, "switch_prob:"),
    # cutmix_minmax: None or (min, max) with 0 <= min < max <= 1
    (dict(cutmix_minmax=(0.2,)), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=(0.2, 0.5, 0.8)), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=()), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=(0.5, 0.5)), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=(0.6, 0.2)), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=(-0.1, 0.5)), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=(0.2, 1.5)), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=(NAN, 0.5)), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=("0.2", "0.8")), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=(None, 0.8)), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax="ab"), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=0.5), ValueError, "cutmix_minmax:"),
    # mode / backend: one of the names
    (dict(mode="sample"), ValueError, "mode:"),
    (dict(mode="Batch"), ValueError, "mode:"),
    (dict(mode=None), ValueError, "mode:"),
    (dict(backend="gpu"), ValueError, "backend:"),
    (dict(backend="CPP"), ValueError, "backend:"),
    (dict(backend=None), ValueError, "backend:"),
    # num_classes: an int in [1, 2**31 - 1] (fastmix/backends/checks.py MAX_NUM_CLASSES says why); past it a
    # call could only fail (out of memory, an overflowed size, an int the ops cannot take)
    (dict(num_classes=2**31), ValueError, r"num_classes: expected an int in \[1, 2147483647\], got 2147483648$"),
    (dict(num_classes=2**40), ValueError, r"num_classes: .*got 1099511627776$"),
    (dict(num_classes=2**62), ValueError, "num_classes:"),
    (dict(num_classes=2**63), ValueError, "num_classes:"),
    (dict(num_classes=2**64), ValueError, "num_classes:"),
    (dict(num_classes=0), ValueError, r"num_classes: expected an int in \[1, 2147483647\], got 0$"),
    (dict(num_classes=-3), ValueError, "num_classes:"),
    (dict(num_classes=10.0), TypeError, "num_classes:"),
    (dict(num_classes="10"), TypeError, "num_classes:"),
    (dict(num_classes=True), TypeError, "num_classes:"),
    # label_smoothing: in [0, 1]
    (dict(label_smoothing=-0.1), ValueError, "label_smoothing:"),
    (dict(label_smoothing=1.5), ValueError, "label_smoothing:"),
    (dict(label_smoothing=NAN), ValueError, "label_smoothing:"),
    # the rest
    (dict(correct_lam="yes"), TypeError, "correct_lam:"),
    (dict(seed="1"), TypeError, "seed:"),
    (dict(seed=1.5), TypeError, "seed:"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_KNOBS, ids=[repr(k) for k, _, _ in BAD_KNOBS])
def test_bad_knob_is_refused_by_name(kwargs, error, message):
    with pytest.raises(error, match="^" + message):
        fastmix.Mixup(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(mixup_alpha=0.0, cutmix_alpha=0.0, prob=0.0),  # label smoothing only
        dict(mixup_alpha=0.0, cutmix_alpha=0.0, cutmix_minmax=(0.2, 0.8)),  # minmax turns CutMix on
        dict(prob=0.0, switch_prob=1.0, label_smoothing=1.0, num_classes=1),  # the closed ends
        dict(cutmix_minmax=[0, 1], backend="torch"),
        dict(num_classes=2**31 - 1),  # the largest num_classes
    ],
    ids=repr,
)
def test_edge_knobs_are_accepted(kwargs):
    fastmix.Mixup(**kwargs)


def test_no_mixing_with_both_alphas_zero_gives_smoothed_one_hot():
    mix = fastmix.Mixup(mixup_alpha=0.0, cutmix_alpha=0.0, prob=0.0, label_smoothing=0.2, num_classes=C, seed=0)
    images, labels = small_images(), small_labels()
    images_before = images.clone()
    out, targets = mix(images, labels)
    assert out is images and torch.equal(images, images_before)
    expected = torch.full((B, C), 0.2 / C)
    expected[torch.arange(B), labels] = 1 - 0.2 + 0.2 / C
    assert targets.dtype == torch.float32 and targets.shape == (B, C)
    torch.testing.assert_close(targets, expected, rtol=0, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# backend='cuda': refused where it cannot run, and for CPU tensors
# ---------------------------------------------------------------------------------------------


def test_cuda_backend_is_refused_where_it_cannot_run_and_for_cpu_tensors():
    """A named backend is resolved when the object is built: without CUDA kernels or a GPU,
    backend='cuda' fails there; with them, a call on CPU tensors says they are on the wrong device."""
    if not HAS_CUDA:
        with pytest.raises(ValueError, match="^backend: expected a backend available here, got 'cuda'"):
            fastmix.Mixup(num_classes=C, seed=0, backend="cuda")
        return
    mix = fastmix.Mixup(num_classes=C, seed=0, backend="cuda")
    images, labels = small_images(), small_labels()
    images_before = images.clone()
    with pytest.raises(ValueError, match="^backend: 'cuda' runs on cuda tensors"):
        mix(images, labels)
    assert torch.equal(images, images_before)


# ---------------------------------------------------------------------------------------------
# num_classes set during training: checked as at construction
# ---------------------------------------------------------------------------------------------


def test_num_classes_set_during_training_is_checked_as_at_construction():
    mix = fastmix.Mixup(num_classes=C, seed=0)
    with pytest.raises(ValueError, match=r"^num_classes: expected an int in \[1, 2147483647\], got 1099511627776$"):
        mix.num_classes = 2**40
    assert mix.num_classes == C
