"""``python -m fastmix bench --device cuda``: fastmix on a batch already on the GPU, against the
naive tensor formulas and the floor, timed with CUDA events.

Operations (each on shared data, interleaved round by round like the CPU bench):

* in-place Mixup, CutMix and elem-mode switching of a (B, 3, H, W) batch: the op
  ``torch.ops.fastmix.mix_`` (params and their plan already on the device, as ``fastmix.Mixup``
  passes them) and the backend's ``mix_`` with params from the host (their plan built and copied
  with them, each call) -- for Mixup also the op's fixed cost (its launches and its walk of the
  plan, on params that move no data) -- beside timm's flip
  formula, torchvision's roll formula or timm's per-sample loop, and the floor: a device-to-device
  copy of the batch (the same bytes: one read, one write). time(floor) / time(fastmix) is the
  fraction of the copy bandwidth fastmix achieves;
* the fused path: uint8 (B, H, W, 3) -> mixed, normalised bfloat16 (B, 3, H, W), NCHW or
  channels_last, in one op (``torch.ops.fastmix.mix_into_``), beside the naive chain (permute,
  float, /255, -mean, /std, flip-mix, cast) and the floor: one uint8 -> bfloat16 conversion pass;
* the soft targets, beside timm's ``mixup_target`` formula and ``torch.zeros``.

The scenarios are device-generic (on the CPU they run the cpp kernels), so the tests can check
them where no GPU is.
"""
from __future__ import annotations

from typing import Callable, Dict, List

import torch

from ..backends import resolve_backend
from ..backends.device_params import mix_args
from ..mixup import Mixup
from ..sampling.params import MixKind, MixParams
from . import baselines
from .inputs import each_round, make_batches, make_labels
from .timing import Scenario

# H100 / H200 L2 caches hold 50-60 MB: each call takes the next of several batches, so that no
# call finds the previous call's data in the cache (a 256x3x224x224 bfloat16 batch is 77 MB).
CUDA_INPUT_SETS = 3


def device_scenarios(
    device: torch.device, batch: int, size: int, dtype: torch.dtype, num_classes: int, input_sets: int
) -> List[Scenario]:
    """The operations on synthetic batches on ``device`` (``input_sets`` copies of each input)."""
    device = torch.device(device)
    backend = "cuda" if device.type == "cuda" else "cpp"
    shape = (batch, 3, size, size)
    images = make_batches(shape, dtype, device, input_sets)
    copy_sources = make_batches(shape, dtype, device, input_sets)
    copy_targets = [torch.empty_like(x) for x in copy_sources]
    nbytes = 2 * images[0].numel() * images[0].element_size()
    copy_floor = each_round(list(zip(copy_targets, copy_sources)), lambda pair: pair[0].copy_(pair[1]))

    def op_with(params: MixParams) -> Callable[[], object]:
        on_device = mix_args(params.as_tuple(), device, with_plan=True)  # what fastmix.Mixup passes

        def mix(x: torch.Tensor) -> torch.Tensor:
            torch.ops.fastmix.mix_(x, *on_device)
            return x

        return each_round(images, mix)

    def apply_with(params: MixParams) -> Callable[[], object]:
        ops = resolve_backend(backend, device)

        def mix(x: torch.Tensor) -> torch.Tensor:  # the plan built and moved with the params, each call
            ops.mix_(x, *mix_args(params.as_tuple(), x.device, with_plan=True))
            return x

        return each_round(images, mix)

    scenarios = []
    for operation, knobs in baselines.IN_PLACE_OPERATIONS:
        params = Mixup(num_classes=num_classes, seed=0, **knobs).sample(batch, size, size)
        lam = float(params.lam[0])
        candidates: Dict[str, Callable[[], object]] = {
            f"fastmix/{backend}": op_with(params),
            f"fastmix.mix_, params from the host@{backend}": apply_with(params),
        }
        if operation == "mixup batch":
            # The same plan (every sample written) with nothing to write: what the op costs beyond
            # moving data -- the mixing kernel's launch and its walk of the steps (the plan is built
            # on the host, once, as for the fastmix row).
            no_data = MixParams(params.partner, params.lam, torch.full_like(params.kind, int(MixKind.PASTE)),
                                torch.zeros_like(params.box))
            candidates[f"overhead: plan + launch, CutMix with empty boxes@{backend}"] = op_with(no_data)
            naive = "naive: timm flip formula"
            candidates[naive] = each_round(images, lambda x, lam=lam: baselines.naive_mixup_flip_(x, lam))
            candidates["naive: torchvision roll formula"] = each_round(
                images, lambda x, lam=lam: baselines.naive_mixup_roll_(x, lam))
        elif operation == "cutmix batch":
            naive = "naive: timm flip + paste"
            box = tuple(int(v) for v in params.box[0])
            candidates[naive] = each_round(images, lambda x, box=box: baselines.naive_cutmix_flip_(x, box))
        else:
            naive = "naive: timm clone + per-sample loop"
            candidates[naive] = each_round(images, lambda x, p=params: baselines.naive_elem_loop_(x, p))
        floor = "floor: device-to-device copy"
        candidates[floor] = copy_floor
        scenarios.append(Scenario(operation, nbytes, candidates, naive, floor))

    scenarios.append(fused_scenario(device, backend, batch, size, num_classes, input_sets))

    labels = make_labels(batch, num_classes).to(device)
    params = Mixup(num_classes=num_classes, seed=0, mixup_alpha=0.8).sample(batch, size, size)
    lam = float(params.lam[0])
    partner, lam_t, kind, _ = params.to(device).as_tuple()
    targets: Dict[str, Callable[[], object]] = {
        f"fastmix/{backend}": lambda: torch.ops.fastmix.mix_targets(labels, partner, lam_t, kind, num_classes, 0.1),
        "naive: timm mixup_target": lambda: baselines.naive_targets(labels, lam, num_classes, 0.1),
        "floor: torch.zeros": lambda: torch.zeros(batch, num_classes, device=device),
    }
    scenarios.append(Scenario(f"soft targets C={num_classes}", batch * num_classes * 4, targets,
                              "naive: timm mixup_target", "floor: torch.zeros"))
    return scenarios


def fused_scenario(
    device: torch.device, backend: str, batch: int, size: int, num_classes: int, input_sets: int
) -> Scenario:
    """uint8 (B, H, W, 3) on the device -> mixed, normalised bfloat16 (B, 3, H, W)."""
    images = make_batches((batch, size, size, 3), torch.uint8, device, input_sets)
    params = Mixup(num_classes=num_classes, seed=0, mixup_alpha=0.8).sample(batch, size, size)
    lam = float(params.lam[0])
    on_device = params.to(device).as_tuple()
    mean, std = torch.tensor(baselines.IMAGENET_MEAN), torch.tensor(baselines.IMAGENET_STD)
    scale, bias = (1.0 / (255.0 * std)).to(device), (-mean / std).to(device)  # x * scale + bias
    nchw = [torch.empty(batch, 3, size, size, dtype=torch.bfloat16, device=device) for _ in range(input_sets)]
    nhwc = [x.contiguous(memory_format=torch.channels_last) for x in nchw]

    def fused(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        torch.ops.fastmix.mix_into_(out, x, *on_device, scale, bias, True)
        return out

    mean_4d, std_4d = mean.view(1, 3, 1, 1).to(device), std.view(1, 3, 1, 1).to(device)
    naive = "naive: permute, float, /255, -mean, /std, flip-mix, to bfloat16"
    floor = "floor: one uint8 -> bfloat16 conversion pass"
    candidates: Dict[str, Callable[[], object]] = {
        f"fastmix/{backend}": each_round(list(zip(nchw, images)), lambda pair: fused(*pair)),
        f"fastmix mix_into_, channels_last out@{backend}": each_round(list(zip(nhwc, images)), lambda pair: fused(*pair)),
        naive: each_round(images, lambda x: baselines.naive_normalize_mix(x, lam, mean_4d, std_4d, torch.bfloat16)),
        floor: each_round(list(zip(nhwc, images)), lambda pair: pair[0].copy_(pair[1].permute(0, 3, 1, 2))),
    }
    nbytes = batch * size * size * 3 * (1 + 2)  # one uint8 read, one bfloat16 write
    return Scenario("fused uint8 HWC -> bfloat16 normalised, mixup", nbytes, candidates, naive, floor)


class CudaEventTimer:
    """Seconds between two CUDA events around one call, on the current stream.

    A short GPU spin is queued first, so the events and the call's kernels are all queued before
    the GPU reaches them and the host's launch overhead stays out of the timed region (a call
    whose launches take longer than the spin, like a per-sample Python loop, is timed with its
    host waits: that is its real cost)."""

    def __init__(self, spin_cycles: int = 2_000_000) -> None:
        self.spin_cycles = spin_cycles

    def __call__(self, fn: Callable[[], object]) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda._sleep(self.spin_cycles)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3


def device_description() -> str:
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return (f"{props.name} ({props.multi_processor_count} SMs, {props.total_memory / 2**30:.0f} GiB), "
            f"CUDA {torch.version.cuda}")
