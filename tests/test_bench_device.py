"""`python -m fastmix bench --device cuda`: a batch already on the GPU, fastmix beside the naive
formulas and the floor. The scenarios are device-generic, so here they run on the CPU (the cpp
kernels) to show that every row of an operation does the same work; the CUDA run itself is
checked where a GPU is."""
import subprocess
from pathlib import Path

import pytest
import torch

from fastmix.bench import cli, report
from fastmix.bench import device as bench_device
from fastmix.bench.inputs import each_round
from fastmix.bench import scenarios as bench_scenarios
from fastmix.bench.timing import Row, time_scenarios

from .helpers import HAS_CUDA, requires_cpp, requires_cuda

TINY = dict(batch=6, size=16, num_classes=10)


@pytest.fixture
def recorded_inputs(monkeypatch):
    """The synthetic input batches the scenarios make, in the order they are made."""
    made = []
    original = bench_device.make_batches

    def recording(*args, **kwargs):
        batches = original(*args, **kwargs)
        made.extend(batches)
        return batches

    monkeypatch.setattr(bench_device, "make_batches", recording)
    return made


def by_operation(scenarios):
    return {s.operation: s for s in scenarios}


@requires_cpp
def test_every_operation_has_fastmix_its_naive_formulas_and_its_floor():
    scenarios = bench_device.device_scenarios(torch.device("cpu"), dtype=torch.float32, input_sets=2, **TINY)
    assert [s.operation for s in scenarios] == [
        "mixup batch", "cutmix batch", "elem mixup/cutmix switching",
        "fused uint8 HWC -> bfloat16 normalised, mixup", "soft targets C=10"]
    names = {s.operation: list(s.candidates) for s in scenarios}
    assert names["mixup batch"] == [
        "fastmix/cpp", "fastmix.mix_, params from the host@cpp",
        "overhead: plan + launch, CutMix with empty boxes@cpp", "naive: timm flip formula",
        "naive: torchvision roll formula", "floor: device-to-device copy"]
    assert names["fused uint8 HWC -> bfloat16 normalised, mixup"] == [
        "fastmix/cpp", "fastmix mix_into_, channels_last out@cpp",
        "naive: permute, float, /255, -mean, /std, flip-mix, to bfloat16", "floor: one uint8 -> bfloat16 conversion pass"]
    for s in scenarios:
        assert s.naive in s.candidates and s.floor in s.candidates
    # The in-place floor moves the bytes a full in-place pass moves: one read, one write.
    assert scenarios[0].bytes_moved == 2 * 6 * 3 * 16 * 16 * 4
    assert scenarios[3].bytes_moved == 6 * 3 * 16 * 16 * (1 + 2)


@requires_cpp
@pytest.mark.parametrize("operation", ["mixup batch", "cutmix batch", "elem mixup/cutmix switching"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_in_place_rows_mix_the_batch_alike(recorded_inputs, operation, dtype):
    scenario = by_operation(bench_device.device_scenarios(torch.device("cpu"), dtype=dtype, input_sets=1, **TINY))[operation]
    images = recorded_inputs[0]
    original = images.clone()
    results = {}
    names = [name for name in scenario.candidates if name.startswith("fastmix")] + [scenario.naive]
    for name in names:  # the two fastmix rows and the naive formula
        images.copy_(original)
        assert scenario.candidates[name]() is images  # in place
        results[name] = images.clone()
    fastmix_op, fastmix_apply, naive = results.values()
    assert not torch.equal(fastmix_op, original), "the batch was mixed"
    assert torch.equal(fastmix_op, fastmix_apply)
    tolerance = 1e-6 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(naive, fastmix_op, atol=tolerance, rtol=tolerance)


@requires_cpp
def test_the_overhead_row_runs_the_plan_but_changes_nothing(recorded_inputs):
    scenario = by_operation(bench_device.device_scenarios(torch.device("cpu"), dtype=torch.float32, input_sets=1,
                                                          **TINY))["mixup batch"]
    images = recorded_inputs[0]
    original = images.clone()
    assert scenario.candidates["overhead: plan + launch, CutMix with empty boxes@cpp"]() is images
    assert torch.equal(images, original)


@requires_cpp
def test_fused_rows_convert_normalise_and_mix_alike(recorded_inputs):
    scenario = by_operation(bench_device.device_scenarios(torch.device("cpu"), dtype=torch.float32, input_sets=1,
                                                          **TINY))["fused uint8 HWC -> bfloat16 normalised, mixup"]
    fastmix_nchw, fastmix_nhwc, naive, floor = (fn().clone() for fn in scenario.candidates.values())  # outputs are reused
    assert fastmix_nchw.dtype == naive.dtype == torch.bfloat16 and fastmix_nchw.shape == (6, 3, 16, 16)
    assert scenario.candidates["fastmix mix_into_, channels_last out@cpp"]().is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(fastmix_nchw, fastmix_nhwc)
    # x * (1 / (255 std)) + (-mean / std) against ((x / 255) - mean) / std: float32 apart, then one bfloat16 rounding
    torch.testing.assert_close(fastmix_nchw.float(), naive.float(), atol=0.02, rtol=0.01)
    images = recorded_inputs[2]  # after the in-place batches and the copy floor's sources
    assert images.shape == (6, 16, 16, 3)
    assert torch.equal(floor, images.permute(0, 3, 1, 2).to(torch.bfloat16))


@requires_cpp
def test_soft_target_rows_agree():
    scenario = bench_device.device_scenarios(torch.device("cpu"), dtype=torch.float32, input_sets=1, **TINY)[-1]
    fastmix_targets = scenario.candidates["fastmix/cpp"]()
    naive = scenario.candidates["naive: timm mixup_target"]()
    torch.testing.assert_close(fastmix_targets, naive, atol=1e-6, rtol=1e-6)


def test_each_round_candidates_take_the_next_input_set_each_call():
    calls = []
    candidate = each_round(["a", "b", "c"], lambda x: calls.append(x))
    for _ in range(5):
        candidate()
    assert calls == ["a", "b", "c", "a", "b"]


@requires_cpp
def test_timed_rows_divide_by_their_own_naive_and_floor_rows():
    scenarios = bench_device.device_scenarios(torch.device("cpu"), dtype=torch.float32, input_sets=2, **TINY)
    rows = time_scenarios(scenarios, rounds=1)
    assert len(rows) == sum(len(s.candidates) for s in scenarios)
    for s in scenarios:
        group = {r.implementation + "@" + r.backend: r for r in rows if r.operation == s.operation}
        floor = next(r for r in group.values() if r.implementation == s.floor)
        assert floor.ratio_to_floor == pytest.approx(1.0)
        for r in group.values():
            assert r.median_ms > 0
            assert r.ratio_to_floor == pytest.approx(r.median_ms / floor.median_ms)


def test_summary_says_the_fraction_of_the_floor_and_the_speed_up_over_naive():
    rows = [
        Row("mixup batch", "fastmix", "cuda", 0.080, 3850.0, 5.0, 1.25),
        Row("mixup batch", "naive: timm flip formula", "torch", 0.400, 770.0, 1.0, 6.25),
        Row("mixup batch", "floor: device-to-device copy", "torch", 0.064, 4812.0, 6.25, 1.0),
    ]
    assert report.summary_lines(rows) == [
        "mixup batch: fastmix [cuda] 0.080 ms (3850 GB/s), 0.80 of the floor's speed "
        "(device-to-device copy: 0.064 ms, 4812 GB/s), 5.0x faster than naive"]


@pytest.mark.skipif(HAS_CUDA, reason="checks the refusal where no GPU is")
def test_device_cuda_without_a_gpu_is_refused_before_any_timing(capsys, monkeypatch):
    monkeypatch.setattr(bench_scenarios, "run", lambda *a, **k: pytest.fail("the timing must not start"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--device", "cuda"])
    assert exit_info.value.code == 2
    assert "--device cuda: the cuda backend is not available: " in capsys.readouterr().err


def test_device_cuda_takes_no_backends(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--device", "cuda", "--backends", "cpp"])
    assert exit_info.value.code == 2
    assert "--backends: with --device cuda the cuda kernels are timed" in capsys.readouterr().err


@requires_cuda
def test_cli_on_the_gpu_prints_the_table_and_the_summary(tmp_path, capsys):
    out = tmp_path / "bench_cuda.json"
    assert cli.main(["--device", "cuda", "--batch-size", "8", "--image-size", "32", "--rounds", "3",
                     "--dtype", "bfloat16", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "on the GPU, CUDA events" in printed and torch.cuda.get_device_name() in printed
    assert "mixup batch: fastmix [cuda]" in printed and "of the floor's speed (device-to-device copy" in printed
    assert "fused uint8 HWC -> bfloat16 normalised, mixup: fastmix mix_into_, channels_last out [cuda]" in printed
    assert out.exists()


@requires_cuda
def test_cuda_rows_mix_the_batch_alike(recorded_inputs):
    scenario = by_operation(bench_device.device_scenarios(torch.device("cuda"), dtype=torch.float32, input_sets=1,
                                                          **TINY))["mixup batch"]
    images = recorded_inputs[0]
    original = images.clone()
    fastmix_op = scenario.candidates["fastmix/cuda"]().clone()
    images.copy_(original)
    naive = scenario.candidates["naive: timm flip formula"]().clone()
    torch.testing.assert_close(naive, fastmix_op, atol=1e-6, rtol=1e-6)


@requires_cuda
def test_cuda_event_timer_times_the_gpu_work():
    x = torch.rand(64 * 2**20 // 4, device="cuda")  # 64 MiB of real values
    timer = bench_device.CudaEventTimer()
    one = sorted(timer(lambda: x.mul_(1.0)) for _ in range(7))[3]
    four = sorted(timer(lambda: [x.mul_(1.0) for _ in range(4)]) for _ in range(7))[3]
    assert 2.5 < four / one < 5.5


def test_the_gpu_check_script_parses_and_names_its_parts():
    """benchmarks/gpu_check.sh runs only where a GPU is lent: here it must at least be valid bash
    and refuse an unknown part before doing anything."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    result = subprocess.run(["bash", str(script), "everything"], capture_output=True, text=True,
                            env={"OUT": "/tmp/fastmix-gpu-check-usage", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and "usage:" in result.stderr and "[core|rest|all]" in result.stderr
