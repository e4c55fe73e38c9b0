"""FMix's thresholds: the values at given ranks of a field's ascending order and how many values lie
below each (fastmix/sampling/order_statistics.py).

The specification is np.sort: value[j] = np.sort(values)[ranks[j]] (+0.0 for either zero), below[j]
= np.searchsorted(np.sort(values), value[j], "left"). The extension's bucketed selection
(csrc/cpu/order_statistics.h) equals it bit for bit on noise images, on many ties, on signed zeros,
on one repeated value (its big-bucket path) and on values spanning float32's range; the masks cut at
those levels take exactly ``below`` pixels; bad arguments are refused by name.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastmix.sampling.order_statistics as order
from fastmix.sampling.fmix import fmix_pixel_masks, image_threshold, low_frequency_images

from .helpers import requires_cpp


def value_sets(rng: np.random.Generator):
    """(name, float32 values) of every shape of data the selection has a path for."""
    yield "noise image 224x224", low_frequency_images(1, 224, 224, 3.0, rng).reshape(-1)
    yield "normals", rng.standard_normal(5000).astype(np.float32)
    yield "seven values, many ties", rng.integers(-3, 4, 3000).astype(np.float32)
    zeros = np.where(rng.random(2000) < 0.5, np.float32(-0.0), np.float32(0.0))
    yield "signed zeros and ones", (zeros + (rng.random(2000) < 0.3) * rng.integers(-1, 2, 2000)).astype(np.float32)
    yield "one value (one bucket of all)", np.full(9000, 2.5, dtype=np.float32)
    yield "tiny values", (rng.standard_normal(3000) * 1e-38).astype(np.float32)
    yield "the whole float32 range", np.concatenate([[np.finfo(np.float32).min, np.finfo(np.float32).max],
                                                     rng.standard_normal(998)]).astype(np.float32)
    yield "one value", np.array([7.0], dtype=np.float32)


@requires_cpp
@pytest.mark.parametrize("case", range(8))
def test_the_extensions_selection_equals_the_sorted_definition(case):
    rng = np.random.default_rng(case)
    name, values = list(value_sets(rng))[case]
    ranks = np.concatenate([[0, values.size - 1], rng.integers(0, values.size, 300)])
    value, below = order.order_statistics(values, ranks)
    sorted_value, sorted_below = order.order_statistics_by_sort(values, ranks)
    assert value.dtype == np.float32 and below.dtype == np.int64
    assert value.tobytes() == sorted_value.tobytes(), name
    np.testing.assert_array_equal(below, sorted_below, err_msg=name)
    ascending = np.sort(values)
    np.testing.assert_array_equal(value, ascending[ranks])
    assert not np.signbit(value[value == 0]).any(), "a zero comes back as +0.0"


@requires_cpp
def test_the_fields_levels_are_the_same_with_and_without_the_extension(monkeypatch):
    """The draw does not depend on whether fastmix._C loaded: the same seed gives the same masks."""
    lam = np.random.default_rng(3).beta(1.0, 1.0, 64)
    with_extension = fmix_pixel_masks(lam, 32, 40, 3.0, np.random.default_rng(4))
    monkeypatch.setattr(order, "load_extension", lambda: None)
    without = fmix_pixel_masks(lam, 32, 40, 3.0, np.random.default_rng(4))
    np.testing.assert_array_equal(with_extension[0], without[0])
    np.testing.assert_array_equal(with_extension[1], without[1])


def test_a_tie_across_the_cut_stays_the_samples_own():
    """image_threshold: the partner gives the ``cut`` dimmest pixels, fewer where the pixel below the
    cut equals the level; the mask below the level takes exactly ``taken`` pixels."""
    image = np.array([0.0, 1.0, 1.0, 1.0, 2.0, -1.0], dtype=np.float32)
    threshold, taken = image_threshold(image, np.array([0, 1, 2, 3, 4, 5, 6]))
    np.testing.assert_array_equal(threshold, np.array([-1, 0, 1, 1, 1, 2, np.inf], dtype=np.float32))
    np.testing.assert_array_equal(taken, [0, 1, 2, 2, 2, 5, 6])
    for level, count in zip(threshold, taken):
        assert (image < level).sum() == count


def test_batch_mode_masks_take_as_many_pixels_as_their_lam_says():
    lam = np.random.default_rng(5).beta(1.0, 1.0, 40)
    masks, own = fmix_pixel_masks(lam, 24, 20, 3.0, np.random.default_rng(6))
    np.testing.assert_array_equal(masks.reshape(40, -1).sum(axis=1), np.round((1 - own) * 480))
    assert np.all(np.abs(own - lam) <= 1 / 480)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("way", ["extension", "np.sort"])
def test_values_that_are_not_finite_are_refused_on_both_paths(bad, way):
    """NaN has no rank (np.sort puts it last, a selection by buckets cannot place it) and an
    infinite range has no bucket width: both paths refuse them alike, writing nothing."""
    if way == "extension" and order.load_extension() is None:
        pytest.skip("fastmix._C did not load")
    values = np.array([1.0, 2.0, bad, 0.0], dtype=np.float32)
    select = order.order_statistics if way == "extension" else order.order_statistics_by_sort
    with pytest.raises(ValueError, match="values must be finite"):
        select(values, np.array([0, 3]))


@requires_cpp
def test_bad_arguments_are_refused_by_name():
    from fastmix import _C

    values = np.zeros(10, dtype=np.float32)
    value, below = np.empty(2, dtype=np.float32), np.empty(2, dtype=np.int64)
    with pytest.raises(ValueError, match=r"ranks must be 1-D in \[0, 10\), got shape \(2,\) with range \[3, 10\]"):
        order.order_statistics(values, np.array([3, 10]))
    with pytest.raises(ValueError, match="every rank must be in"):
        _C.order_statistics(values, np.array([-1, 2]), value, below)
    with pytest.raises(TypeError, match="values must be a 1-D float32 array"):
        _C.order_statistics(values.astype(np.float64), np.array([1, 2]), value, below)
    with pytest.raises(TypeError, match="ranks must be a 1-D int64 array"):
        _C.order_statistics(values, np.array([1, 2], dtype=np.int32), value, below)
    with pytest.raises(ValueError, match="value and below must have as many elements as ranks"):
        _C.order_statistics(values, np.array([1, 2, 3]), value, below)
    readonly = np.empty(2, dtype=np.float32)
    readonly.setflags(write=False)
    with pytest.raises((TypeError, BufferError, ValueError)):
        _C.order_statistics(values, np.array([1, 2]), readonly, below)
    untouched = below.copy()
    with pytest.raises(ValueError):
        _C.order_statistics(values, np.array([1, 20]), value, below)
    np.testing.assert_array_equal(below, untouched)
