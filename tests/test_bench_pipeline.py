"""`python -m fastmix bench --pipeline`: a real DataLoader over built-in JPEGs, every row per
num_workers in images/s, each ratio against the right floor, the same in JSON; timm's row when
timm loads, a note when it does not."""
import json

import pytest
import torch

from fastmix.bench import cli, peers, pipeline
from fastmix.sampling.params import MixKind

TINY_ARGS = ["--pipeline", "--pipeline-images", "16", "--image-size", "32", "--batch-size", "8",
             "--pipeline-workers", "0,1", "--rounds", "1", "--num-classes", "10"]
ROWS_WITH_TIMM = ["1", "2", "3", "4", "5a", "5", "6"]


@pytest.fixture
def no_timm(monkeypatch):
    monkeypatch.setattr(peers, "_cached", (None, "timm is not installed"))


def check_ratios(rows, workers, keys):
    assert [(r.num_workers, r.key) for r in rows] == [(w, k) for w in workers for k in keys]
    for w in workers:
        by_key = {r.key: r for r in rows if r.num_workers == w}
        for r in by_key.values():
            assert r.images_per_s > 0 and r.median_epoch_ms > 0, r
            assert len(r.round_images_per_s) == 1 and r.round_images_per_s[0] == pytest.approx(r.images_per_s), r
            # every ratio against row 1 of the same num_workers; the float32 batches also against 5a
            assert r.ratio_to_floor == pytest.approx(r.images_per_s / by_key["1"].images_per_s), r
            if r.key in ("3", "5a", "5", "6"):
                assert r.ratio_to_float_floor == pytest.approx(r.images_per_s / by_key["5a"].images_per_s), r
            else:
                assert r.ratio_to_float_floor is None, r
        assert by_key["1"].ratio_to_floor == 1.0 and by_key["5a"].ratio_to_float_floor == 1.0


def test_cli_prints_every_row_per_num_workers_and_writes_json(tmp_path, capsys):
    out = tmp_path / "pipeline.json"
    assert cli.main(TINY_ARGS + ["--json", str(out)]) == 0
    printed = capsys.readouterr().out
    timm_loads = peers.load_timm_mixup()[0] is not None
    keys = ROWS_WITH_TIMM if timm_loads else [k for k in ROWS_WITH_TIMM if k != "4"]

    saved = json.loads(out.read_text())
    rows = [pipeline.PipelineRow(**r) for r in saved["rows"]]
    check_ratios(rows, [0, 1], keys)
    assert saved["args"]["batch_size"] == 8 and saved["args"]["pipeline_workers"] == [0, 1]
    assert saved["machine"] and len(saved["goals"]) == 4  # rows 2 and 3, per num_workers
    assert any(note.startswith("pin_memory=True") for note in saved["notes"])
    assert any(note.startswith("machine: ") and "torch " + torch.__version__ in note for note in saved["notes"])

    header = next(line for line in printed.splitlines() if line.startswith("row"))
    for column in ("pipeline", "floor", "w=0 img/s", "w=1 img/s", "/ 1", "/ 5a"):
        assert column in header
    table_keys = [line.split()[0] for line in printed.splitlines()[printed.splitlines().index(header) + 2:]
                  if line and not line.startswith(("goal:", "note:", "wrote"))]
    assert table_keys == keys
    assert "goal: row 2 (fastmix collate -> uint8), num_workers=0" in printed
    assert f"wrote {out}" in printed
    if timm_loads:
        assert any(line.startswith("note: row 4 is timm") for line in printed.splitlines())


def test_without_timm_its_row_is_left_out_and_a_note_says_why(no_timm):
    notes = []
    rows = pipeline.run(images=16, batch=8, size=32, rounds=1, workers=[0], num_classes=10, notes=notes)
    check_ratios(rows, [0], ["1", "2", "3", "5a", "5", "6"])
    assert "no timm row (4): timm is not installed" in notes


def test_the_defaults_are_batch_128_of_224x224_over_1024_images_and_workers_0_1_2(monkeypatch, capsys):
    seen = {}

    def fake_run(images, batch, size, rounds, workers, num_classes, progress, notes):
        seen.update(images=images, batch=batch, size=size, rounds=rounds, workers=workers, num_classes=num_classes)
        return []

    monkeypatch.setattr(pipeline, "run", fake_run)
    assert cli.main(["--pipeline"]) == 0
    assert seen == dict(images=1024, batch=128, size=224, rounds=7, workers=[0, 1, 2], num_classes=1000)
    assert torch.get_num_threads() == 1  # the main loop runs one thread, like the main bench


@pytest.mark.parametrize("argv,message", [
    (["--pipeline-images", "16"], "--pipeline-images: only with --pipeline"),
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
