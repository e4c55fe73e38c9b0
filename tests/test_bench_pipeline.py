"""`python -m fastmix bench --pipeline`: a real DataLoader over procedural JPEGs (the built-in set,
and the ImageNet-like one cropped in the workers), every row per num_workers in images/s, each
ratio against the right floor, where a batch's CPU time goes, the same in JSON; timm's row when
timm loads, a note when it does not; the pooled rows; the page faults of a worker batch."""
import io
import json
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from fastmix.bench import cli, peers, pipeline
from fastmix.collate import MixupCollate
from fastmix.mixup import Mixup
from fastmix.sampling.params import MixKind

TINY_ARGS = ["--pipeline", "--pipeline-images", "16", "--image-size", "32", "--batch-size", "8",
             "--pipeline-workers", "0,1", "--rounds", "1", "--num-classes", "10"]
ROWS_WITH_TIMM = ["1", "2", "2p", "3", "3p", "4", "5a", "5", "6"]
WORKER_ONLY = ("2p", "3p")


@pytest.fixture
def no_timm(monkeypatch):
    monkeypatch.setattr(peers, "_cached", (None, "timm is not installed"))


def keys_at(keys, num_workers):
    return [k for k in keys if num_workers > 0 or k not in WORKER_ONLY]


def check_ratios(rows, workers, keys):
    assert [(r.num_workers, r.key) for r in rows] == [(w, k) for w in workers for k in keys_at(keys, w)]
    for w in workers:
        by_key = {r.key: r for r in rows if r.num_workers == w}
        for r in by_key.values():
            assert r.images_per_s > 0 and r.median_epoch_ms > 0, r
            assert len(r.round_images_per_s) == 1 and r.round_images_per_s[0] == pytest.approx(r.images_per_s), r
            # every ratio against row 1 of the same num_workers; the float32 batches also against 5a
            assert r.ratio_to_floor == pytest.approx(r.images_per_s / by_key["1"].images_per_s), r
            if r.key in ("3", "3p", "5a", "5", "6"):
                assert r.ratio_to_float_floor == pytest.approx(r.images_per_s / by_key["5a"].images_per_s), r
            else:
                assert r.ratio_to_float_floor is None, r
            # where the batch's CPU time went, measured in the process that collated it
            assert r.decode_ms > 0 and r.to_sample_ms > 0 and r.collate_ms > 0, r
            assert (r.main_mix_ms > 0) == (r.key in ("5", "6")), r
            spent = r.decode_ms + r.to_sample_ms + r.collate_ms + r.main_mix_ms
            assert r.collate_mix_share == pytest.approx((r.collate_ms + r.main_mix_ms) / spent), r
        assert by_key["1"].ratio_to_floor == 1.0 and by_key["5a"].ratio_to_float_floor == 1.0


def table_keys(printed, title):
    """The row keys of the images/s table printed under ``title``."""
    lines = printed.splitlines()
    start = lines.index(title) + 3  # the title, the header, the rule
    end = lines.index("", start)
    return [line.split()[0] for line in lines[start:end]]


@pytest.mark.slow  # 2-3.5 s here: two num_workers, nine rows and the page-fault table
def test_cli_prints_every_row_per_num_workers_and_writes_json(tmp_path, capsys):
    out = tmp_path / "pipeline.json"
    assert cli.main(TINY_ARGS + ["--json", str(out)]) == 0
    printed = capsys.readouterr().out
    timm_loads = peers.load_timm_mixup()[0] is not None
    keys = ROWS_WITH_TIMM if timm_loads else [k for k in ROWS_WITH_TIMM if k != "4"]

    saved = json.loads(out.read_text())
    rows = [pipeline.PipelineRow(**r) for r in saved["rows"]]
    check_ratios(rows, [0, 1], keys)
    assert {r.pipeline_set for r in rows} == {"builtin"}
    assert saved["args"]["batch_size"] == 8 and saved["args"]["pipeline_workers"] == [0, 1]
    assert saved["machine"] and len(saved["goals"]) == 4  # rows 2 and 3, per num_workers
    assert len(saved["pool"]) == 2  # rows 2p and 3p against 2 and 3 at num_workers=1
    assert any(note.startswith("pin_memory=True") for note in saved["notes"])
    assert any(note.startswith("machine: ") and "torch " + torch.__version__ in note for note in saved["notes"])
    parts = {(c["part"], c["dtype"]) for c in saved["os_costs"]}
    assert (pipeline.WORKER_FRESH, "uint8") in parts and (pipeline.MAIN_RELEASE, "float32") in parts

    header = next(line for line in printed.splitlines() if line.startswith("row"))
    for column in ("pipeline", "floor", "w=0 img/s", "w=1 img/s", "/ 1", "/ 5a"):
        assert column in header
    assert table_keys(printed, "builtin set") == keys
    for column in ("decode ms", "to-sample ms", "collate ms", "main mix ms", "mix share"):
        assert column in printed
    assert "goal: row 2 (fastmix collate -> uint8), builtin set, num_workers=0" in printed
    assert "pool: row 2p / row 2, builtin set, num_workers=1" in printed
    assert "the operating system's part of a worker batch of 8x3x32x32" in printed
    assert f"wrote {out}" in printed
    if timm_loads:
        assert any(line.startswith("note: row 4 is timm") for line in printed.splitlines())


def test_the_imagenet_like_set_crops_in_the_workers_and_has_its_own_rows(capsys):
    argv = ["--pipeline", "--pipeline-set", "imagenet-like", "--pipeline-images", "8", "--image-size", "32",
            "--batch-size", "8", "--pipeline-workers", "0", "--rounds", "1", "--num-classes", "10",
            "--no-pipeline-os-costs"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert table_keys(printed, "imagenet-like set") == ["1", "2", "3", "5a", "5"]  # 2p, 3p: with workers only
    assert "builtin set" not in printed and "operating system's part" not in printed
    assert "note: imagenet-like set: 8 procedural 500x375 RGB JPEGs, textured, RandomResizedCrop-ed to 32x32" in printed


def test_without_timm_its_row_is_left_out_and_a_note_says_why(no_timm):
    notes = []
    rows = pipeline.run(images=16, batch=8, size=32, rounds=1, workers=[0], num_classes=10, notes=notes)
    check_ratios(rows, [0], ["1", "2", "3", "5a", "5", "6"])
    assert "no timm row (4): timm is not installed" in notes


def test_the_defaults_are_the_builtin_set_batch_128_of_224x224_and_workers_0_1_2(monkeypatch, capsys):
    seen = []

    def fake_run(images, batch, size, rounds, workers, num_classes, progress, notes, pipeline_set):
        seen.append(dict(images=images, batch=batch, size=size, rounds=rounds, workers=workers,
                         num_classes=num_classes, pipeline_set=pipeline_set))
        return []

    monkeypatch.setattr(pipeline, "run", fake_run)
    monkeypatch.setattr(pipeline, "os_costs", lambda batch, size: seen.append(("os_costs", batch, size)) or [])
    assert cli.main(["--pipeline"]) == 0
    assert seen == [dict(images=1024, batch=128, size=224, rounds=7, workers=[0, 1, 2], num_classes=1000,
                         pipeline_set="builtin"), ("os_costs", 128, 224)]
    assert torch.get_num_threads() == 1  # the main loop runs one thread, like the main bench
    seen.clear()
    assert cli.main(["--pipeline", "--pipeline-set", "both", "--no-pipeline-os-costs"]) == 0
    assert [(s["pipeline_set"], s["images"]) for s in seen] == [("builtin", 1024), ("imagenet-like", 512)]


@pytest.mark.parametrize("argv,message", [
    (["--pipeline-images", "16"], "--pipeline-images: only with --pipeline"),
    (["--pipeline-set", "both"], "--pipeline-set: only with --pipeline"),
    (["--no-pipeline-os-costs"], "--no-pipeline-os-costs: only with --pipeline"),
    (["--pipeline", "--pipeline-set", "imagenet"], "invalid choice: 'imagenet'"),
    (["--pipeline", "--pipeline-set", "imagenet-like", "--batch-size", "600"],
     "--pipeline-images: expected at least one batch (--batch-size 600) of images, got 512 (the imagenet-like set's default)"),
    (["--pipeline", "--plot", "x.png"], "--plot: not with --pipeline"),
    (["--pipeline", "--dtype", "uint8"], "--dtype: not with --pipeline"),
    (["--pipeline", "--pipeline-images", "8", "--batch-size", "16"], "--pipeline-images: expected at least one batch"),
    (["--pipeline", "--pipeline-workers", "0,x"], "expected comma-separated integers >= 0"),
])
def test_bad_pipeline_arguments_are_refused_before_any_timing(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(pipeline, "run", lambda *a, **k: pytest.fail("the timing must not start"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_row_6_applies_torchvision_formulas_to_the_draws_of_row_5():
    """The naive row mixes with the same draws as fastmix's Mixup(seed=0): Mixup and CutMix batches
    alike, each by torchvision v2's formula (roll partners)."""
    naive = pipeline.TorchvisionMixUpCutMix(num_classes=10, seed=0)
    reference = pipeline.Mixup(num_classes=10, seed=0, **pipeline.MIX_KNOBS)
    images = torch.rand(4, 3, 8, 8)
    labels = torch.tensor([0, 3, 5, 9])
    kinds = set()
    for _ in range(8):
        params = reference.sample(4, 8, 8)
        mixed, targets = naive(images, labels)
        lam, kind = float(params.lam[0]), int(params.kind[0])
        kinds.add(kind)
        if kind == MixKind.BLEND:
            assert torch.allclose(mixed, images * lam + images.roll(1, 0) * (1 - lam))
        else:
            y0, y1, x0, x1 = params.box[0].tolist()
            expected = images.clone()
            expected[..., y0:y1, x0:x1] = images.roll(1, 0)[..., y0:y1, x0:x1]
            assert torch.equal(mixed, expected)
        one_hot = torch.nn.functional.one_hot(labels, 10).float() * 0.9 + 0.01
        assert torch.allclose(targets, one_hot * lam + one_hot.roll(1, 0) * (1 - lam))
    assert kinds == {MixKind.BLEND, MixKind.PASTE}


def torchvision_get_params(width, height, uniforms, integers, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision v1's RandomResizedCrop.get_params, its random draws replaced by the given ones (and
    its float32 log ratios by float64 ones)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * (scale[0] + (scale[1] - scale[0]) * next(uniforms))
        aspect_ratio = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * next(uniforms))
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            return next(integers) % (height - h + 1), next(integers) % (width - w + 1), h, w
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w = width
        h = height
    return (height - h) // 2, (width - w) // 2, h, w


class ScriptedRng:
    """A numpy Generator's uniform and integers, from scripted values (torchvision's draws)."""

    def __init__(self, uniforms, integers):
        self.scripted_uniforms, self.scripted_integers = iter(uniforms), iter(integers)

    def uniform(self, low, high):
        return low + (high - low) * next(self.scripted_uniforms)

    def integers(self, low, high):
        return low + next(self.scripted_integers) % (high - low)


@pytest.mark.parametrize("width,height,scale", [(500, 375, (0.08, 1.0)), (375, 500, (0.08, 1.0)), (500, 375, (0.9, 1.0)),
                                                (2000, 100, (0.08, 1.0)), (100, 2000, (0.5, 1.0)), (500, 375, (3.0, 4.0))])
def test_random_resized_crop_params_follow_torchvisions_sampling_and_fallback(width, height, scale):
    rng = np.random.default_rng(0)
    for _ in range(50):
        uniforms, integers = rng.random(20).tolist(), rng.integers(0, 10 ** 6, 2).tolist()
        expected = torchvision_get_params(width, height, iter(uniforms), iter(integers), scale)
        top, left, h, w = pipeline.random_resized_crop_params(width, height, ScriptedRng(uniforms, integers), scale)
        assert (top, left, h, w) == expected
        assert 0 <= top and top + h <= height and 0 <= left and left + w <= width
    if scale[0] > 1:  # never fits: the central crop of the ratio-clamped box (500x375 is within 3/4..4/3: whole)
        assert pipeline.random_resized_crop_params(width, height, rng, scale) == (0, 0, height, width)


def test_the_imagenet_like_jpegs_are_500x375_and_weigh_about_what_imagenets_do():
    from PIL import Image

    jpegs = pipeline.make_imagenet_like_jpegs(3)
    assert all(Image.open(io.BytesIO(j)).size == (500, 375) for j in jpegs)
    assert 80_000 < np.mean([len(j) for j in jpegs]) < 140_000  # ImageNet's training JPEGs: about 110 KB
    assert pipeline.make_imagenet_like_jpegs(3) == jpegs  # the same set on every run


def test_the_dataset_crops_to_the_size_and_counts_decode_and_conversion_time():
    jpegs = pipeline.make_imagenet_like_jpegs(2)
    pipeline._pending.update(decode=0.0, to_sample=0.0)
    dataset = pipeline.JpegDataset(jpegs, [3, 4], pipeline.numpy_hwc_uint8, crop=40)
    image, label = dataset[1]
    assert image.shape == (40, 40, 3) and image.dtype == np.uint8 and label == 4
    assert pipeline._pending["decode"] > 0 and pipeline._pending["to_sample"] >= 0


def test_a_pooled_row_collates_in_its_worker_what_the_plain_collate_does():
    """Row 2p's collate (MixupCollate's default, reuse_worker_memory=True) in a DataLoader worker:
    the same batch and targets as row 2's (reuse_worker_memory=False), sent from a reused slot (a
    plain, unshared tensor here) instead of fresh shared memory."""
    samples = [(np.random.default_rng(i).integers(0, 256, (224, 224, 3), dtype=np.uint8), i) for i in range(8)]
    got = {}
    for name, reuse in (("plain", False), ("pooled", True)):
        collate = MixupCollate(Mixup(num_classes=10, seed=0, **pipeline.MIX_KNOBS), reuse_worker_memory=reuse)
        loader = DataLoader(samples, batch_size=8, num_workers=1, collate_fn=collate,
                            generator=torch.Generator().manual_seed(0))  # the same worker seed: the same draws
        got[name] = list(loader)
    (plain_images, plain_targets), = got["plain"]
    (pooled_images, pooled_targets), = got["pooled"]
    assert plain_images.is_shared() and not pooled_images.is_shared()
    assert torch.equal(plain_images, pooled_images) and torch.equal(plain_targets, pooled_targets)


@pytest.mark.slow
def test_os_costs_count_the_page_faults_of_fresh_shared_batches_and_none_of_reused_ones():
    rows = pipeline.os_costs(batch=8, size=224, count=9, warmup=6)
    cost = {(r.part, r.dtype): r for r in rows}
    pages = {"uint8": 8 * 3 * 224 * 224 // 4096, "float32": 8 * 3 * 224 * 224 * 4 // 4096}
    for dtype, n in pages.items():
        assert cost[pipeline.WORKER_FRESH, dtype].median_faults >= n  # one fault per new 4 KiB page
        assert cost[pipeline.WORKER_MAPPED, dtype].median_faults < n / 20
        assert cost[pipeline.WORKER_POOLED, dtype].median_faults < n / 20
        assert cost[pipeline.MAIN_FIRST, dtype].median_faults >= n / 32  # 16 pages a fault at least, here
        assert cost[pipeline.MAIN_SECOND, dtype].median_faults < n / 20
        assert cost[pipeline.MAIN_POOLED_FIRST, dtype].median_faults < n / 20
        assert all(cost[part, dtype].batches == 3 for part in (pipeline.WORKER_FRESH, pipeline.MAIN_FIRST))
        assert cost[pipeline.MAIN_RELEASE, dtype].batches == 3 and cost[pipeline.MAIN_POOLED_RELEASE, dtype].batches == 3
