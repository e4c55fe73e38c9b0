"""`python -m fastmix bench`: the README's main job. Every operation is timed against its naive
formula and its floor on the same data, the table, JSON and plot say so, and timm joins as a peer
when it is installed."""
import io
import json
import subprocess
import sys
import textwrap

import pytest
import torch

import fastmix
from fastmix.bench import baselines, cli, inputs, peers, report, scenarios

from .helpers import dense_mask_targets

TINY = dict(batch=4, size=16, rounds=1, num_classes=10)
COMPILED_CPU_BACKENDS = [b for b in ("cpp", "numba") if fastmix.available_backends()[b] is None]


@pytest.fixture
def no_timm(monkeypatch):
    monkeypatch.setattr(peers, "_cached", (None, "timm is not installed"))


def rows_by_operation(rows):
    grouped = {}
    for row in rows:
        grouped.setdefault(row.operation, []).append(row)
    return grouped


def test_every_operation_has_fastmix_per_backend_its_naive_formula_and_its_floor(no_timm):
    rows = scenarios.run(backends=["cpp", "torch"], **TINY)
    grouped = rows_by_operation(rows)
    assert list(grouped) == [
        "mixup batch", "cutmix batch", "elem mixup/cutmix switching", "fmix batch", "fmix elem", "resizemix batch",
        "segmentation: images + masks, in place",
        "segmentation batch mixup: images + masks", "segmentation batch cutmix: images + masks",
        "segmentation batch switching: images + masks", "segmentation elem mixup: images + masks",
        "segmentation elem cutmix: images + masks", "collate uint8, mixup", "collate uint8, mixup/cutmix switching",
        "collate uint8, fmix batch", "collate uint8, fmix elem", "collate uint8, resizemix batch",
        "collate float32 normalised, mixup", "collate float32 normalised, mixup/cutmix switching",
        "soft targets C=10",
    ]
    for operation, group in grouped.items():
        fastmix_backends = [r.backend for r in group if r.implementation == "fastmix"]
        assert fastmix_backends == ["cpp", "torch"], operation
        naive = [r for r in group if r.implementation.startswith("naive")]
        floor = [r for r in group if r.implementation.startswith("floor")]
        assert naive and len(floor) == 1, operation
        # the ratios are taken against the scenario's own naive row and floor row
        assert any(r.times_faster_than_naive == pytest.approx(1.0) for r in naive), operation
        assert floor[0].ratio_to_floor == pytest.approx(1.0), operation
        for r in group:
            assert r.median_ms > 0 and r.gb_per_s > 0, (operation, r)
            assert r.times_faster_than_naive == pytest.approx(
                next(n.median_ms for n in naive if n.times_faster_than_naive == pytest.approx(1.0)) / r.median_ms)
    assert [r.implementation for r in grouped["mixup batch"]] == [
        "fastmix", "fastmix", "naive: timm flip formula", "naive: torchvision roll formula", "floor: one in-place pass"]
    collate = [r.implementation for r in grouped["collate uint8, mixup"]]
    assert "floor: default_collate, no mixing" in collate
    assert "fastmix collate, mixing off (prob=0)" in collate
    segmentation = [(r.implementation, r.backend) for r in grouped["segmentation: images + masks, in place"]]
    assert segmentation == [
        ("fastmix", "cpp"), ("fastmix", "torch"), ("fastmix, images alone", "cpp"),
        ("naive: clone + per-sample loop (images + masks)", "torch"),
        ("floor: one in-place pass (images + masks)", "torch")]


def test_every_round_uses_a_fresh_draw_and_every_row_the_same_sequence(no_timm, monkeypatch):
    """fastmix's rows (a whole Mixup call) and the naive rows see draw r in round r: the same
    lambdas and boxes, new each round, never one draw measured over and over."""
    seen = {}
    real_flip, real_paste = baselines.naive_mixup_flip_, baselines.naive_cutmix_flip_
    monkeypatch.setattr(baselines, "naive_mixup_flip_",
                        lambda images, lam: seen.setdefault("naive mixup", []).append(lam) or real_flip(images, lam))
    monkeypatch.setattr(baselines, "naive_cutmix_flip_",
                        lambda images, box: seen.setdefault("naive cutmix", []).append(box) or real_paste(images, box))
    rounds = 4
    by_name = {s.operation: s for s in scenarios.build_scenarios(4, 16, torch.float32, ["cpp"], 10, rounds=rounds)}
    for operation, key, value in [("mixup batch", "naive mixup", lambda p: float(p.lam[0])),
                                  ("cutmix batch", "naive cutmix", lambda p: tuple(int(v) for v in p.box[0]))]:
        candidates = by_name[operation].candidates
        fastmix_draws = []
        for _ in range(rounds + 1):
            candidates["naive: timm flip formula" if key == "naive mixup" else "naive: timm flip + paste"]()
            candidates["fastmix/cpp"]()
            fastmix_draws.append(value(candidates["fastmix/cpp"].__defaults__[0].last_params))
        assert seen[key] == fastmix_draws, operation
        assert len(set(fastmix_draws)) == rounds + 1, operation  # a new draw every round


def test_segmentation_rows_mix_images_and_masks_with_the_same_fresh_draws(no_timm, monkeypatch):
    """The segmentation scenario: fastmix's call with masks=, the same call on the images alone and
    the naive loop over images and masks see draw r in round r; the naive loop does fastmix's work
    (the same images, masks and MaskTargets for one draw)."""
    seen = []
    real_loop = baselines.naive_elem_loop_with_masks_
    monkeypatch.setattr(baselines, "naive_elem_loop_with_masks_",
                        lambda images, masks, p: seen.append(p) or real_loop(images, masks, p))
    rounds = 4
    built = scenarios.build_scenarios(6, 16, torch.float32, ["cpp"], 10, rounds=rounds)
    candidates = {s.operation: s for s in built}[scenarios.SEGMENTATION_OPERATION].candidates
    assert list(candidates) == ["fastmix/cpp", "fastmix, images alone@cpp",
                                "naive: clone + per-sample loop (images + masks)",
                                "floor: one in-place pass (images + masks)"]
    with_masks, alone = (candidates[name].__defaults__[0] for name in ("fastmix/cpp", "fastmix, images alone@cpp"))
    boxes = []
    for _ in range(rounds + 1):
        for name, candidate in candidates.items():
            out = candidate()
            if name == "fastmix/cpp":
                assert len(out) == 3 and isinstance(out[2], fastmix.MaskTargets) and out[1] is None
        assert torch.equal(with_masks.last_params.box, alone.last_params.box)
        assert torch.equal(with_masks.last_params.box, seen[-1].box)
        boxes.append(tuple(with_masks.last_params.box.flatten().tolist()))
    assert len(set(boxes)) == rounds + 1  # a new draw every round

    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    masks = inputs.make_masks(6, 16, 16)
    assert int(masks.max()) == 255 and int(masks[masks != 255].max()) < inputs.SEGMENTATION_CLASSES
    mix = fastmix.Mixup(num_classes=inputs.SEGMENTATION_CLASSES, seed=0, backend="cpp", **inputs.SEGMENTATION_KNOBS)
    naive_images, naive_masks = images.clone(), masks.clone()
    _, _, mask_targets = mix(images, None, masks=masks)
    assert set(mix.last_params.kind.tolist()) >= {1, 2}, "both kinds are drawn"
    naive_images, naive_targets = real_loop(naive_images, naive_masks, mix.last_params)
    torch.testing.assert_close(naive_images, images, atol=1e-6, rtol=0)
    for got, want in zip(naive_targets, dense_mask_targets(mask_targets)):
        assert torch.equal(got, want)


def test_the_inputs_are_seeded_so_every_row_and_every_benchmark_times_the_same_values():
    """fastmix.bench.inputs, what the scenarios and benchmarks/ time on: the same values call after
    call, the uint8 batch in [0, 256), the masks alike in every dtype, the input sets all different."""
    assert torch.equal(inputs.make_batch(4, 8, torch.float32), inputs.make_batch(4, 8, torch.float32))
    images = inputs.make_batch(4, 8, torch.uint8)
    assert images.dtype == torch.uint8 and images.shape == (4, 3, 8, 8) and int(images.max()) > 200
    assert torch.equal(inputs.make_batches((4, 3, 8, 8), torch.uint8)[0], images)
    first, second = inputs.make_batches((4, 8, 8, 3), torch.bfloat16, count=2)
    assert first.dtype == torch.bfloat16 and not torch.equal(first, second)
    masks = inputs.make_masks(4, 8, 8)
    assert masks.dtype == torch.uint8 and torch.equal(inputs.make_masks(4, 8, 8, torch.int64), masks.long())
    assert torch.equal(inputs.make_labels(4, 10), inputs.make_labels(4, 10))
    samples = inputs.make_samples(3, 8, 10)
    assert [(image.shape, image.dtype.name) for image, _ in samples] == [((8, 8, 3), "uint8")] * 3
    assert all(isinstance(label, int) and 0 <= label < 10 for _, label in samples)


def test_the_default_backends_are_the_available_compiled_cpu_backends(no_timm):
    rows = scenarios.run(**TINY)
    assert [r.backend for r in rows if r.operation == "mixup batch" and r.implementation == "fastmix"] == (
        COMPILED_CPU_BACKENDS or ["torch"])


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys, no_timm):
    out = tmp_path / "bench.json"
    assert cli.main(["--batch-size", "4", "--image-size", "16", "--rounds", "1", "--num-classes", "10",
                     "--backends", "cpp", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("operation"))
    for column in ("implementation", "backend", "median ms", "GB/s", "x faster than naive", "/ floor"):
        assert column in header
    assert "note: no timm peer rows: timm is not installed" in printed
    saved = json.loads(out.read_text())
    assert saved["args"]["batch_size"] == 4 and saved["notes"][0] == "no timm peer rows: timm is not installed"
    assert saved["notes"][1].startswith("fresh draws: every round") and "the same 2 draws" in saved["notes"][1]
    assert {r["operation"] for r in saved["rows"]} >= {"mixup batch", "soft targets C=10"}
    assert set(saved["rows"][0]) == {"operation", "implementation", "backend", "median_ms", "gb_per_s",
                                     "times_faster_than_naive", "ratio_to_floor"}


@pytest.mark.skipif(not sys.platform.startswith("linux") or not torch.backends.openmp.is_available(),
                    reason="the extension is built with OpenMP where torch's Linux builds use it")
def test_the_header_says_how_many_threads_the_cpp_kernels_really_run_on(capsys, no_timm):
    assert cli.main(["--batch-size", "4", "--image-size", "16", "--rounds", "1", "--num-classes", "10",
                     "--backends", "cpp", "--threads", "2"]) == 0
    assert "2 thread(s) (the cpp kernels on 2)" in capsys.readouterr().out.splitlines()[0]


@pytest.mark.slow  # more than 2 s on the development machine (the fast loop leaves it out)
def test_plot_draws_the_table_as_a_png(tmp_path, capsys, no_timm):
    from PIL import Image  # matplotlib and Pillow are both in the test extras

    out = tmp_path / "bench.png"
    assert cli.main(["--batch-size", "4", "--image-size", "16", "--rounds", "1", "--num-classes", "10",
                     "--backends", "cpp", "--plot", str(out)]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert width > 800 and height > 1000  # nine panels, one per operation
    assert f"wrote {out}" in capsys.readouterr().out


@pytest.mark.slow  # more than 2 s on the development machine (the fast loop leaves it out)
def test_plot_without_matplotlib_says_what_to_install_before_timing_anything():
    code = textwrap.dedent("""
        import sys
        sys.modules["matplotlib"] = None  # as if it were not installed
        from fastmix.bench import cli, scenarios
        scenarios.run = lambda *a, **k: sys.exit("the timing must not start")
        cli.main(["--plot", "out.png"])
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert "--plot: matplotlib is not installed; install it with: pip install matplotlib" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv,message", [
    (["--backends", "cpu"], "--backends: unknown backend 'cpu'"),
    (["--backends", "cuda"], "--backends: the bench times CPU batches"),
    (["--batch-size", "0"], "expected an integer >= 1, got 0"),
    (["--dtype", "int32"], "invalid choice: 'int32'"),
])
def test_bad_arguments_are_refused_with_what_was_expected(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_progress_rewrites_one_line_on_a_terminal_and_prints_one_line_per_operation_otherwise():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    log, terminal = io.StringIO(), Terminal()
    for stream in (log, terminal):
        progress = report.ProgressLine(stream)
        for scenario in (1, 2):
            for done in range(3):
                progress(scenario, 2, f"op{scenario}", done, 2)
    assert log.getvalue() == "[1/2] op1 (2 rounds)\n[2/2] op2 (2 rounds)\n"
    written = terminal.getvalue()
    assert "\n" not in written and written.count("\r") == 8  # six updates, then the line is blanked and the cursor returned
    assert "[2/2] op2: round 2/2" in written and written.endswith("\r")


# A stand-in for an installed timm whose package import fails (as it does wherever torchvision
# does not match torch) but whose timm/data/mixup.py loads alone. It has timm's interface, and
# mixes like timm's batch mode, so the peer rows can be checked end to end.
STAND_IN_MIXUP = '''
import numpy as np
import torch


def mixup_target(target, num_classes, lam=1.0, smoothing=0.0):
    off = smoothing / num_classes
    y1 = torch.full((target.size(0), num_classes), off).scatter_(1, target.view(-1, 1), 1 - smoothing + off)
    y2 = torch.full((target.size(0), num_classes), off).scatter_(1, target.flip(0).view(-1, 1), 1 - smoothing + off)
    return y1 * lam + y2 * (1 - lam)


class Mixup:
    calls = 0

    def __init__(self, mixup_alpha=1.0, cutmix_alpha=0.0, mode="batch", label_smoothing=0.1, num_classes=1000, **_):
        self.num_classes, self.smoothing = num_classes, label_smoothing

    def __call__(self, x, target):
        assert len(x) % 2 == 0
        type(self).calls += 1
        x.mul_(0.5).add_(x.flip(0).mul_(0.5))
        return x, mixup_target(target, self.num_classes, 0.5, self.smoothing)


class FastCollateMixup(Mixup):
    def __call__(self, batch, _=None):
        type(self).calls += 1
        assert batch[0][0].shape[0] == 3, "CHW samples"
        return torch.from_numpy(np.stack([b[0] for b in batch])), torch.tensor([b[1] for b in batch])
'''


@pytest.fixture
def broken_timm_package(tmp_path, monkeypatch):
    package = tmp_path / "timm"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('operator torchvision::nms does not exist')\n")
    (package / "data" / "__init__.py").write_text("")
    (package / "data" / "mixup.py").write_text(STAND_IN_MIXUP)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(peers, "_cached", None)
    for name in [m for m in sys.modules if m == "timm" or m.startswith("timm.")]:
        monkeypatch.delitem(sys.modules, name)
    yield
    peers._cached = None


def test_timm_mixup_file_is_loaded_alone_when_the_timm_package_does_not_import(broken_timm_package):
    module, how = peers.load_timm_mixup()
    assert module is not None and hasattr(module, "FastCollateMixup")
    assert "timm/data/mixup.py loaded alone" in how and "torchvision::nms" in how


def test_timm_joins_the_table_as_a_peer_where_it_can_do_the_same_work(broken_timm_package):
    notes = []
    rows = scenarios.run(backends=["cpp"], notes=notes, **TINY)
    peer_rows = {(r.operation, r.implementation) for r in rows if r.implementation.startswith("peer")}
    assert peer_rows == {
        ("mixup batch", "peer: timm Mixup (images + targets)"),
        ("cutmix batch", "peer: timm Mixup (images + targets)"),
        ("elem mixup/cutmix switching", "peer: timm Mixup (images + targets)"),
        ("collate uint8, mixup", "peer: timm FastCollateMixup (CHW numpy samples)"),
        ("collate uint8, mixup/cutmix switching", "peer: timm FastCollateMixup (CHW numpy samples)"),
        ("soft targets C=10", "peer: timm mixup_target"),
    }
    module, _ = peers.load_timm_mixup()
    assert module.Mixup.calls >= 3 * 2  # warm-up and timed round of each apply scenario
    assert any(note.startswith("peer rows: timm") for note in notes)
    assert any("float32 normalised collate" in note for note in notes)


def test_timm_peer_is_left_out_for_uint8_batches_with_a_note(broken_timm_package):
    notes = []
    rows = scenarios.run(backends=["cpp"], dtype="uint8", notes=notes, **TINY)
    assert not [r for r in rows if r.operation == "mixup batch" and r.implementation.startswith("peer")]
    assert "no timm Mixup rows for uint8 images: timm's Mixup mixes float batches only" in notes


def test_no_timm_means_no_peer_rows_and_a_note(no_timm):
    notes = []
    rows = scenarios.run(backends=["cpp"], notes=notes, **TINY)
    assert not [r for r in rows if r.implementation.startswith("peer")]
    assert notes[0] == "no timm peer rows: timm is not installed"


@pytest.mark.slow  # more than 2 s on the development machine (the fast loop leaves it out)
def test_python_dash_m_fastmix_bench_runs_the_main_job():
    result = subprocess.run(
        [sys.executable, "-m", "fastmix", "bench", "--batch-size", "2", "--image-size", "8", "--rounds", "1",
         "--backends", "cpp"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "fastmix bench: batch 2x3x8x8 float32" in result.stdout
    assert "[20/20] soft targets C=1000" in result.stderr  # the progress display, one line per operation
