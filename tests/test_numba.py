"""The numba backend: the same results as the torch reference (and the C++ kernels), bit for bit, for
the out-of-place mix and the collate path; chosen automatically when fastmix._C cannot be
imported, with one warning; forced by name or $FASTMIX_BACKEND; its kernels cached on disk.

The in-place op and the soft targets are covered by tests/test_parity.py, tests/test_inplace.py
and tests/test_errors_*.py, which run for every backend in helpers.COMPILED_BACKENDS (numba included).
Compiled kernels are shared by all tests of a process (and cached on disk between runs)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fastmix
from fastmix import MixKind, MixParams
from fastmix.backends import resolve_backend

from .helpers import HAS_CPP, HAS_NUMBA, requires_numba, random_params, random_values, reference_mix_, reference_mix_into

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DTYPES = [torch.uint8, torch.float32, torch.bfloat16, torch.float16]


def test_numba_is_installed_where_the_tests_run():
    """The "test" extra has numba: in CI the backend must run, not be skipped; and an installed
    numba that does not work is a failure anywhere."""
    import importlib.util

    if not os.environ.get("CI") and importlib.util.find_spec("numba") is None:
        pytest.skip("numba is not installed (enforced in CI: pip install -e '.[test]')")
    assert HAS_NUMBA, fastmix.available_backends()["numba"]


def bits(x: torch.Tensor) -> torch.Tensor:
    """The tensor's bits, so that comparisons are exact for every dtype (-0.0 vs 0.0, NaN payloads)."""
    return x.view(torch.int16) if x.element_size() == 2 else x


def assert_same_bits(got: torch.Tensor, expected: torch.Tensor) -> None:
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert torch.equal(bits(got.contiguous()), bits(expected.contiguous()))


def affine(channels, out_dtype, normalise, generator):
    if not normalise or out_dtype == torch.uint8:
        return torch.empty(0), torch.empty(0)
    scale = torch.rand(channels, generator=generator) * 4 + 0.1
    return scale, torch.randn(channels, generator=generator)


def mix_into_case(in_dtype, out_dtype, hwc, channels_last, normalise, shape, generator):
    batch, channels, height, width = shape
    images = random_values((batch, height, width, channels) if hwc else shape, in_dtype, generator)
    params = random_params(batch, height, width, generator)
    scale, bias = affine(channels, out_dtype, normalise, generator)
    out = torch.empty(shape, dtype=out_dtype)
    if channels_last:
        out = out.contiguous(memory_format=torch.channels_last)
    return out, images, params, scale, bias


def combos():
    for in_dtype in (torch.uint8, torch.float32):
        for out_dtype in OUT_DTYPES:
            if out_dtype == torch.uint8 and in_dtype != torch.uint8:
                continue
            for normalise in ([False] if out_dtype == torch.uint8 else [False, True]):
                yield in_dtype, out_dtype, normalise


COMBOS = list(combos())
COMBO_IDS = [f"{str(i)[6:]}->{str(o)[6:]}{'-norm' if n else ''}" for i, o, n in COMBOS]
# The parallel driver is compiled per dtype combination like the serial one (a few seconds each):
# two threads for a few combinations; the per-element code is the same for both drivers.
THREADED = [(torch.uint8, torch.uint8, False), (torch.uint8, torch.float32, True), (torch.float32, torch.bfloat16, False)]
CASES = [pytest.param(*combo, 1, id=f"{name}-1") for combo, name in zip(COMBOS, COMBO_IDS)] + [
    pytest.param(*combo, 2, id=f"{name}-2") for combo, name in zip(COMBOS, COMBO_IDS) if combo in THREADED]


@requires_numba
@pytest.mark.parametrize("in_dtype, out_dtype, normalise, threads", CASES)
@pytest.mark.parametrize("hwc", [False, True], ids=["chw", "hwc"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_mix_into_and_collate_match_the_reference(in_dtype, out_dtype, normalise, threads, hwc, channels_last):
    """Every input/output dtype, layout and normalisation, batches with cycles, trees and pastes,
    images of 1 to 4 channels and several row blocks."""
    from fastmix.backends import numba as numba_backend

    generator = torch.Generator().manual_seed(hash((str(in_dtype), str(out_dtype), normalise, hwc, channels_last)) % 2**31)
    torch.set_num_threads(threads)
    shapes = [(7, 3, 13, 11), (6, 1, 5, 9), (5, 4, 3, 7), (9, 3, 40, 300), (1, 3, 4, 4), (2, 2, 1, 1)]
    for shape in shapes:
        out, images, params, scale, bias = mix_into_case(in_dtype, out_dtype, hwc, channels_last, normalise, shape, generator)
        expected = reference_mix_into(out.clone(), images, params, scale, bias, hwc)
        args = (*params.as_tuple(), scale, bias, hwc)
        numba_backend.mix_into_(out, images, *args)
        assert_same_bits(out, expected)
        collated = torch.full_like(out, 7)
        numba_backend.collate_mix_(collated, list(images.unbind(0)), *args)
        assert_same_bits(collated, expected)
        if HAS_CPP:
            cpp = torch.empty_like(out)
            torch.ops.fastmix.mix_into_(cpp, images, *args)
            assert_same_bits(out, cpp)


@requires_numba
@given(data=st.data())
def test_mix_into_matches_the_reference_for_arbitrary_inputs(data):
    from fastmix.backends import numba as numba_backend

    in_dtype, out_dtype, normalise = data.draw(st.sampled_from(COMBOS), label="dtypes")
    hwc = data.draw(st.booleans(), label="hwc")
    channels_last = data.draw(st.booleans(), label="channels_last")
    shape = (data.draw(st.integers(1, 20), label="B"), data.draw(st.integers(1, 5), label="C"),
             data.draw(st.integers(1, 12), label="H"), data.draw(st.integers(1, 12), label="W"))
    generator = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31), label="seed"))
    torch.set_num_threads(1)  # the parallel drivers are covered above
    out, images, params, scale, bias = mix_into_case(in_dtype, out_dtype, hwc, channels_last, normalise, shape, generator)
    expected = reference_mix_into(out.clone(), images, params, scale, bias, hwc)
    numba_backend.mix_into_(out, images, *params.as_tuple(), scale, bias, hwc)
    assert_same_bits(out, expected)


@requires_numba
@pytest.mark.parametrize("dtype, mean", [(torch.uint8, None), (torch.float32, (0.485, 0.456, 0.406)),
                                         (torch.bfloat16, (0.5,)), (torch.float16, None)])
@pytest.mark.parametrize("source", ["numpy hwc", "torch chw", "numpy gray"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_mixup_collate_matches_the_torch_backend(dtype, mean, source, channels_last):
    """MixupCollate end to end: the same seed gives the torch backend's batch and targets."""
    torch.set_num_threads(1)  # as in a DataLoader worker
    rng = np.random.default_rng(0)
    samples = []
    for i in range(9):
        if source == "numpy hwc":
            image = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
        elif source == "numpy gray":
            image = rng.integers(0, 256, (12, 10), dtype=np.uint8)
        else:
            image = torch.from_numpy(rng.integers(0, 256, (3, 12, 10), dtype=np.uint8))
        samples.append((image, i % 5))
    if source == "numpy gray" and mean is not None:
        mean = mean[:1]
    std = None if mean is None else tuple(0.2 + 0.01 * k for k in range(len(mean)))
    results = {}
    for backend in ["numba", "torch"]:
        mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", num_classes=5, label_smoothing=0.1,
                            seed=11, backend=backend)
        collate = fastmix.MixupCollate(mix, dtype=dtype, mean=mean, std=std, channels_last=channels_last)
        results[backend] = [collate(samples) for _ in range(3)]
    for (images, targets), (ref_images, ref_targets) in zip(results["numba"], results["torch"]):
        assert_same_bits(images, ref_images)
        assert torch.equal(targets, ref_targets)


@requires_numba
@pytest.mark.parametrize("threads", [1, 2])
def test_strided_layouts_across_many_chunks(threads):
    """Layouts the dense kernel cannot take, big enough to be split into chunks run in parallel."""
    generator = torch.Generator().manual_seed(5)
    torch.set_num_threads(threads)
    for dtype in [torch.uint8, torch.float32]:
        for make in [lambda: random_values((9, 3, 64, 256), dtype, generator)[..., ::2],
                     lambda: random_values((3, 9, 64, 128), dtype, generator).transpose(0, 1)]:
            images = make()
            params = random_params(9, 64, 128, generator)
            expected = reference_mix_(images.clone(), params)
            fastmix.mix_(images, params, backend="numba")
            assert_same_bits(images, expected)


@requires_numba
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8, torch.float16], ids=str)
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_swapped_pairs_that_paste_their_own_boxes_match_the_reference(dtype, channels_last):
    """Elem and pair modes' CutMix: both samples of a pair paste, each its own box (paste_pairs):
    boxes apart, overlapping, nested, equal, empty, whole rows and the whole image, in every plane."""
    generator = torch.Generator().manual_seed(11)
    height, width = 9, 13
    boxes = [((1, 5, 2, 7), (3, 8, 5, 12)), ((0, 3, 0, 4), (5, 9, 8, 13)), ((2, 8, 1, 12), (3, 6, 4, 9)),
             ((1, 4, 3, 6), (1, 4, 3, 6)), ((0, 0, 0, 0), (2, 7, 3, 10)), ((4, 4, 2, 9), (0, 0, 0, 0)),
             ((0, 9, 0, 13), (3, 5, 0, 13)), ((2, 6, 0, 13), (4, 9, 6, 7))]
    batch = 2 * len(boxes) + 1  # and one sample left alone
    partner = torch.arange(batch)
    box = torch.zeros(batch, 4, dtype=torch.int64)
    for n, (box_a, box_b) in enumerate(boxes):
        partner[2 * n], partner[2 * n + 1] = 2 * n + 1, 2 * n
        box[2 * n], box[2 * n + 1] = torch.tensor(box_a), torch.tensor(box_b)
    kind = torch.full((batch,), int(MixKind.PASTE), dtype=torch.uint8)
    params = MixParams(partner, torch.ones(batch), kind, box)
    images = random_values((batch, 3, height, width), dtype, generator)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    expected = reference_mix_(images.clone(), params)
    got = images.clone()
    resolve_backend("numba", "cpu").mix_(got, *params.as_tuple())
    assert_same_bits(got, expected)


@requires_numba
def test_raw_entry_points_refuse_bad_values_before_writing():
    from fastmix.backends import numba as numba_backend

    images = torch.rand(4, 3, 8, 8)
    before = images.clone()
    good = MixParams.identity(4)
    for field, value, message in [
        ("partner", torch.tensor([0, 1, 2, 4]), r"^partner\[3\]: expected an index in \[0, 4\)"),
        ("kind", torch.tensor([0, 6, 0, 0], dtype=torch.uint8), r"^kind\[1\]: "),
        ("box", torch.tensor([[0, 9, 0, 1]] * 4), r"^box\[0\]: "),
        ("lam", torch.ones(4, dtype=torch.float64), r"^lam: expected float32"),
    ]:
        fields = dict(zip(["partner", "lam", "kind", "box"], good.as_tuple()))
        fields[field] = value
        if field == "box":
            fields["kind"] = torch.full((4,), int(MixKind.PASTE), dtype=torch.uint8)
            fields["partner"] = torch.tensor([1, 0, 3, 2])
        with pytest.raises(ValueError, match=message):
            numba_backend.mix_(images, **fields)
        assert torch.equal(images, before)
    with pytest.raises(ValueError, match="^images: expected memory apart from out"):
        numba_backend.mix_into_(images, images, *good.as_tuple(), torch.empty(0), torch.empty(0), False)
    with pytest.raises(ValueError, match="^out: .*uint8 output needs uint8 input"):
        numba_backend.mix_into_(torch.empty(4, 3, 8, 8, dtype=torch.uint8), images, *good.as_tuple(),
                               torch.empty(0), torch.empty(0), False)


@requires_numba
def test_forced_by_name_and_by_environment_variable(monkeypatch, recwarn):
    cpu = torch.device("cpu")
    assert resolve_backend("numba", cpu).name == "numba"
    monkeypatch.setenv("FASTMIX_BACKEND", "numba")
    assert resolve_backend("auto", cpu).name == "numba"
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    expected = images.clone()
    mix = fastmix.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, num_classes=3, seed=0)
    mix(images, torch.tensor([0, 1, 2, 0, 1]))
    assert torch.equal(images, reference_mix_(expected, mix.last_params))
    assert not [w for w in recwarn if "not available" in str(w.message)], "a forced backend does not warn"
    with pytest.raises(ValueError, match="'numba' runs on cpu tensors"):
        resolve_backend("numba", torch.device("meta"))


# -- fresh interpreters --------------------------------------------------------------------------

# Ways to make fastmix._C unusable in a fresh interpreter: a flag, a real import failure (an import
# hook raising, as a missing .so or undefined symbols do) and an extension built for another torch.
HIDE_EXTENSION = {
    "FASTMIX_NO_EXT=1": "",
    "import fails": """
        import importlib.abc, sys
        class NoExtension(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "fastmix._C":
                    raise ImportError("fastmix/_C.so: undefined symbol: _ZN3c1015SmallVectorBase (simulated)")
        sys.meta_path.insert(0, NoExtension())
        """,
    "built for another torch": """
        import importlib.abc, importlib.machinery, sys
        class OldExtension(importlib.abc.MetaPathFinder, importlib.abc.Loader):
            def find_spec(self, name, path, target=None):
                if name == "fastmix._C":
                    return importlib.machinery.ModuleSpec(name, self)
            def create_module(self, spec):
                return None
            def exec_module(self, module):
                module.torch_version = "1.13.0"
        sys.meta_path.insert(0, OldExtension())
        """,
}

FALLBACK_SCRIPT = """
import warnings, numpy as np, torch
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import fastmix
    from fastmix.backends import resolve_backend
    from tests.helpers import reference_mix_into, reference_mix_, reference_targets
    status = fastmix.available_backends()
    assert status["cpp"] is not None and status["numba"] is None, status
    assert resolve_backend("auto", torch.device("cpu")).name == "numba"
    assert not hasattr(torch.ops.fastmix, "mix_"), "the C++ ops must not be registered"
    for dtype in [torch.float32, torch.uint8, torch.bfloat16]:
        for batch in [2, 5, 8]:
            mix = fastmix.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", num_classes=4, label_smoothing=0.1, seed=batch)
            images = (torch.rand(batch, 3, 16, 12) * 255).to(dtype)
            labels = torch.arange(batch) % 4
            expected = images.clone()
            out, targets = mix(images, labels)
            assert out is images
            reference_mix_(expected, mix.last_params)
            assert torch.equal(out, expected), (dtype, batch)
            assert torch.equal(targets, reference_targets(labels, mix.last_params, 4, 0.1))
    samples = [(np.random.default_rng(i).integers(0, 256, (16, 12, 3), dtype=np.uint8), i % 4) for i in range(7)]
    collate = fastmix.MixupCollate(fastmix.Mixup(mixup_alpha=0.8, num_classes=4, seed=1), dtype=torch.float32,
                                   mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    batch, targets = collate(samples)
    stacked = torch.stack([torch.from_numpy(s[0]) for s in samples])
    scale, bias = collate.affine(3, True)
    expected = reference_mix_into(torch.empty_like(batch), stacked, collate.mixup.last_params, scale, bias, True)
    assert torch.equal(batch, expected)
fallback = [str(w.message) for w in caught if "not available" in str(w.message)]
assert len(fallback) == 1, fallback
assert "using the numba backend" in fallback[0] and "pip install --no-build-isolation" in fallback[0], fallback[0]
print("ok", fallback[0])
"""


def run_python(script: str, env_extra=None, timeout=600):
    env = {k: v for k, v in os.environ.items() if k not in ("FASTMIX_BACKEND", "FASTMIX_NO_EXT")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)


@pytest.mark.slow
@requires_numba
@pytest.mark.parametrize("case", list(HIDE_EXTENSION))
def test_without_the_extension_numba_takes_over_with_one_warning(case):
    hook = textwrap.dedent(HIDE_EXTENSION[case])
    env = {"FASTMIX_NO_EXT": "1"} if case == "FASTMIX_NO_EXT=1" else {}
    result = run_python(hook + FALLBACK_SCRIPT, env)
    assert result.returncode == 0 and result.stdout.startswith("ok"), result.stderr[-3000:]
    expected_reason = {"FASTMIX_NO_EXT=1": "disabled by FASTMIX_NO_EXT", "import fails": "undefined symbol",
                       "built for another torch": "built for torch 1.13.0"}[case]
    assert expected_reason in result.stdout, result.stdout


@pytest.mark.slow
def test_backends_says_how_to_get_numba_when_it_is_missing():
    script = textwrap.dedent(
        """
        import sys, warnings, torch
        sys.modules["numba"] = None  # as if numba were not installed
        import fastmix
        from fastmix.backends import resolve_backend
        assert fastmix.available_backends()["numba"] == "numba is not installed: pip install numba", fastmix.available_backends()
        try:
            resolve_backend("numba", torch.device("cpu"))
        except ValueError as exc:
            assert "numba is not installed: pip install numba" in str(exc), exc
        else:
            raise AssertionError("backend='numba' must refuse to run without numba")
        print("ok")
        """
    )
    result = run_python(script)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


@pytest.mark.slow
@requires_numba
def test_kernels_are_cached_on_disk_and_numbas_thread_pool_is_never_started(tmp_path):
    """A second process loads the compiled kernels from the cache instead of compiling them; one
    build serves every thread count (the work is split over Python threads, parallel.py), so
    numba's own thread pool is never started, which keeps forked DataLoader workers safe."""
    script = textwrap.dedent(
        """
        import json, time, torch
        torch.set_num_threads(2)
        import fastmix
        from fastmix.backends.numba import mix_numba, mix_targets_numba
        from numba.np.ufunc import parallel
        images = torch.rand(4, 3, 8, 8)
        params = fastmix.Mixup(mixup_alpha=1.0, num_classes=3, seed=0).sample(4, 8, 8)
        start = time.perf_counter()
        fastmix.mix_(images, params, backend="numba")
        fastmix.mix_targets(torch.arange(4) % 3, params, 3, 0.1, backend="numba")
        elapsed = time.perf_counter() - start
        stats = [mix_numba.dense_chunks.stats, mix_targets_numba.targets_rows.stats]
        print(json.dumps({"hits": sum(len(s.cache_hits) for s in stats), "misses": sum(len(s.cache_misses) for s in stats),
                          "pool_started": bool(getattr(parallel, "_is_initialized", False)), "seconds": elapsed}))
        """
    )
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    import json

    cold = run_python(script, env)
    assert cold.returncode == 0, cold.stderr[-3000:]
    warm = run_python(script, env)
    assert warm.returncode == 0, warm.stderr[-3000:]
    cold, warm = json.loads(cold.stdout.splitlines()[-1]), json.loads(warm.stdout.splitlines()[-1])
    assert cold["misses"] == 2 and cold["hits"] == 0, cold
    assert warm["hits"] == 2 and warm["misses"] == 0, warm
    assert not cold["pool_started"] and not warm["pool_started"]


@requires_numba
def test_collate_in_dataloader_workers():
    """MixupCollate on numba inside worker processes gives the batches the torch backend gives."""
    from torch.utils.data import DataLoader

    rng = np.random.default_rng(3)
    data = [(rng.integers(0, 256, (10, 8, 3), dtype=np.uint8), i % 4) for i in range(32)]
    batches = {}
    for backend in ["numba", "torch"]:
        collate = fastmix.MixupCollate(fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=4, seed=2,
                                                     backend=backend))
        collate(data[:8])  # compiles (or loads) the kernels before the workers start
        loader = DataLoader(data, batch_size=8, num_workers=2, collate_fn=collate,
                            generator=torch.Generator().manual_seed(0))
        batches[backend] = list(loader)
    for (images, targets), (ref_images, ref_targets) in zip(batches["numba"], batches["torch"]):
        assert torch.equal(images, ref_images) and torch.equal(targets, ref_targets)
