"""What ``python -m fastmix bench`` times on the CPU: every operation as a Scenario, fastmix per
backend beside the naive formulas of timm / torchvision, timm as a peer where it is installed, and
the floor, all on the same synthetic batch (fastmix.bench.inputs) and the same fresh draws; and the
run of them (on ``device="cuda"``, the scenarios of fastmix.bench.device).

Operations: in-place Mixup, CutMix, elem-mode switching and batch-mode FMix and ResizeMix of a (B, 3, H, W)
batch; segmentation (the batch and its uint8 masks); the DataLoader collate of numpy HWC samples to uint8
(Mixup, switching, FMix, ResizeMix) and to float32 normalised batches; the soft targets.
"""
from __future__ import annotations

from types import ModuleType
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from torch.utils.data import default_collate

from ..backends import available_backends, resolve_backend
from ..collate import MixupCollate
from ..huge_pages import empty_on_huge_pages
from ..mixup import Mixup
from ..sampling.params import MixParams
from . import baselines
from .inputs import (DTYPES, IGNORE_INDEX, SEGMENTATION_CLASSES, SEGMENTATION_KNOBS, draw_sequence, each_round,
                     make_batch, make_labels, make_masks, make_samples, mask_planes_of)
from .peers import load_timm_mixup
from .timing import ProgressCallback, Row, Scenario, time_scenarios

SEGMENTATION_OPERATION = "segmentation: images + masks, in place"


def build_scenarios(
    batch: int, size: int, dtype: torch.dtype, backends: List[str], num_classes: int, notes: Optional[List[str]] = None,
    rounds: int = 11,
) -> List[Scenario]:
    """The table's operations on one synthetic batch, each round with a fresh draw (the same
    ``rounds + 1`` draws, warm-up included, for every row); ``notes`` collects what was left out
    and why. fastmix's rows are a user's whole call, ``Mixup(images, labels)``: sampling, the
    in-place mix and the soft targets (``masks=`` instead of labels in the segmentation scenario);
    the naive rows mix and make targets with the same draw."""
    notes = [] if notes is None else notes
    images = make_batch(batch, size, dtype)
    nbytes = 2 * images.numel() * images.element_size()
    timm_mixup, timm_how = load_timm_mixup()
    if timm_mixup is None:
        notes.append(f"no timm peer rows: {timm_how}")
    else:
        notes.append(f"peer rows: {timm_how} (timm draws from its own random streams)")
    notes.append(f"fresh draws: every round of an in-place or collate row uses a new MixParams, the same "
                 f"{rounds + 1} draws (one warm-up round) for every row of an operation")
    labels = make_labels(batch, num_classes)
    smoothing = 0.1

    timm_apply = timm_mixup  # timm's Mixup, where it can do the in-place work
    if timm_mixup is not None and dtype == torch.uint8:
        notes.append("no timm Mixup rows for uint8 images: timm's Mixup mixes float batches only")
        timm_apply = None
    elif timm_mixup is not None and batch % 2:
        notes.append(f"no timm Mixup rows: timm asserts an even batch size, got {batch}")
        timm_apply = None

    def with_targets(mix_images: Callable[[MixParams], object]) -> Callable[[MixParams], object]:
        def call(p: MixParams) -> object:
            mix_images(p)
            return baselines.naive_targets(labels, p.lam.view(-1, 1), num_classes, smoothing)
        return call

    scenarios = []
    for operation, knobs in baselines.IN_PLACE_OPERATIONS + baselines.OTHER_METHOD_OPERATIONS:
        draws = draw_sequence(knobs, num_classes, batch, size, rounds + 1)
        candidates: Dict[str, Callable[[], object]] = {}
        for b in backends:
            mix = Mixup(num_classes=num_classes, seed=0, label_smoothing=smoothing, backend=b, **knobs)
            candidates[f"fastmix/{b}"] = lambda mix=mix: mix(images, labels)
        if operation == "mixup batch":
            candidates["naive: timm flip formula"] = each_round(
                draws, with_targets(lambda p: baselines.naive_mixup_flip_(images, float(p.lam[0]))))
            candidates["naive: torchvision roll formula"] = each_round(
                draws, with_targets(lambda p: baselines.naive_mixup_roll_(images, float(p.lam[0]))))
            naive = "naive: timm flip formula"
        elif operation.startswith("fmix"):
            naive = "naive: FMix authors' float-mask blend"
            planes = mask_planes_of(draws)  # (elem mode: the planes cut beforehand, as a per-sample draw gives them)
            candidates[naive] = each_round(
                draws, with_targets(lambda p, planes=planes: baselines.naive_fmix_(images, planes[id(p)], p.partner)))
        elif operation == "resizemix batch":
            naive = "naive: mmpretrain F.interpolate + paste"
            candidates[naive] = each_round(draws, with_targets(
                lambda p: baselines.naive_resizemix_(images, p.partner, tuple(int(v) for v in p.box[0]))))
        elif operation == "cutmix batch":
            candidates["naive: timm flip + paste"] = each_round(
                draws, with_targets(lambda p: baselines.naive_cutmix_flip_(images, tuple(int(v) for v in p.box[0]))))
            naive = "naive: timm flip + paste"
        else:
            candidates["naive: timm clone + per-sample loop"] = each_round(
                draws, with_targets(lambda p: baselines.naive_elem_loop_(images, p)))
            naive = "naive: timm clone + per-sample loop"
        if timm_apply is not None and operation not in dict(baselines.OTHER_METHOD_OPERATIONS):
            peer = timm_apply.Mixup(num_classes=num_classes, label_smoothing=smoothing, **knobs)
            candidates["peer: timm Mixup (images + targets)"] = lambda peer=peer: peer(images, labels)
        candidates["floor: one in-place pass"] = lambda: baselines.floor_pass_(images)
        scenarios.append(Scenario(operation, nbytes, candidates, naive, "floor: one in-place pass"))
    scenarios.append(segmentation_scenario(images, backends, notes, rounds))
    scenarios += segmentation_settings_scenarios(images, backends, rounds)

    scenarios += collate_scenarios(batch, size, backends, num_classes, timm_mixup, notes, rounds)

    draws = draw_sequence(dict(mixup_alpha=0.8), num_classes, batch, size, rounds + 1)
    targets = {f"fastmix/{b}": each_round(draws, lambda p, t=resolve_backend(b, "cpu").mix_targets: t(
        labels, p.partner, p.lam, p.kind, num_classes, smoothing)) for b in backends}
    targets["naive: timm mixup_target"] = each_round(
        draws, lambda p: baselines.naive_targets(labels, float(p.lam[0]), num_classes, smoothing))
    if timm_mixup is not None:
        targets["peer: timm mixup_target"] = each_round(
            draws, lambda p: timm_mixup.mixup_target(labels, num_classes, float(p.lam[0]), smoothing))
    targets["floor: torch.zeros"] = lambda: torch.zeros(batch, num_classes)
    scenarios.append(
        Scenario(f"soft targets C={num_classes}", batch * num_classes * 4, targets, "naive: timm mixup_target", "floor: torch.zeros")
    )
    return scenarios


def segmentation_scenario(
    images: torch.Tensor, backends: List[str], notes: Optional[List[str]] = None, rounds: int = 11
) -> Scenario:
    """``images, _, mask_targets = mix(images, None, masks=masks)`` on the bench's batch and uint8
    masks (elem mode), beside the same call on the images alone, the naive per-sample loop over
    images and masks, and the floor (one in-place pass over both); every row walks the same draws."""
    notes = [] if notes is None else notes
    batch, height, width = images.shape[0], images.shape[-2], images.shape[-1]
    masks = make_masks(batch, height, width)
    labels = make_labels(batch, SEGMENTATION_CLASSES)
    draws = draw_sequence(SEGMENTATION_KNOBS, SEGMENTATION_CLASSES, batch, height, rounds + 1)  # what fastmix's rows draw
    candidates: Dict[str, Callable[[], object]] = {}
    for b in backends:
        mix = Mixup(num_classes=SEGMENTATION_CLASSES, seed=0, backend=b, **SEGMENTATION_KNOBS)
        candidates[f"fastmix/{b}"] = lambda mix=mix: mix(images, None, masks=masks)
    alone_backend = "cpp" if "cpp" in backends else backends[0]
    alone = Mixup(num_classes=SEGMENTATION_CLASSES, seed=0, backend=alone_backend, **SEGMENTATION_KNOBS)
    candidates[f"fastmix, images alone@{alone_backend}"] = lambda mix=alone: mix(images, labels)
    naive = "naive: clone + per-sample loop (images + masks)"
    candidates[naive] = each_round(draws, lambda p: baselines.naive_elem_loop_with_masks_(images, masks, p))
    floor = "floor: one in-place pass (images + masks)"
    candidates[floor] = lambda: baselines.floor_pass_with_masks_(images, masks)
    notes.append(f"segmentation: uint8 masks ({batch}, {height}, {width}) of {SEGMENTATION_CLASSES} classes and "
                 f"{IGNORE_INDEX}, mixed with the images in elem mode; its \"fastmix, images alone\" row is the same "
                 f"call with labels ({SEGMENTATION_CLASSES} classes) instead of masks, the same draws")
    nbytes = 2 * (images.numel() * images.element_size() + masks.numel() * masks.element_size())
    return Scenario(SEGMENTATION_OPERATION, nbytes, candidates, naive, floor)


# The other modes and methods of images + masks (the elem-mode switching above has the naive rows).
SEGMENTATION_SETTINGS = [
    ("batch", "mixup", dict(mixup_alpha=0.8)), ("batch", "cutmix", dict(mixup_alpha=0.0, cutmix_alpha=1.0)),
    ("batch", "switching", dict(mixup_alpha=0.8, cutmix_alpha=1.0)), ("elem", "mixup", dict(mixup_alpha=0.8)),
    ("elem", "cutmix", dict(mixup_alpha=0.0, cutmix_alpha=1.0)),
]


def segmentation_settings_scenarios(images: torch.Tensor, backends: List[str], rounds: int = 11) -> List[Scenario]:
    """Images + masks in place in batch and elem mode with Mixup, CutMix and switching: fastmix per
    backend, the naive per-sample loop and the images + masks floor, on the same fresh draws."""
    batch, height, width = images.shape[0], images.shape[-2], images.shape[-1]
    masks = make_masks(batch, height, width)
    nbytes = 2 * (images.numel() * images.element_size() + masks.numel() * masks.element_size())
    scenarios = []
    for mode, method, knobs in SEGMENTATION_SETTINGS:
        knobs = dict(knobs, mode=mode)
        candidates: Dict[str, Callable[[], object]] = {}
        for b in backends:
            mix = Mixup(num_classes=SEGMENTATION_CLASSES, seed=0, backend=b, **knobs)
            candidates[f"fastmix/{b}"] = lambda mix=mix: mix(images, None, masks=masks)
        draws = draw_sequence(knobs, SEGMENTATION_CLASSES, batch, height, rounds + 1)  # what fastmix's rows draw
        naive = "naive: clone + per-sample loop (images + masks)"
        candidates[naive] = each_round(draws, lambda p: baselines.naive_elem_loop_with_masks_(images, masks, p))
        floor = "floor: one in-place pass (images + masks)"
        candidates[floor] = lambda: baselines.floor_pass_with_masks_(images, masks)
        scenarios.append(Scenario(f"segmentation {mode} {method}: images + masks", nbytes, candidates, naive, floor))
    return scenarios


FRESH_OUTPUT = "OS: a fresh output batch (torch.empty, 4 KiB pages) + one write"
FRESH_OUTPUT_HUGE = "OS: a fresh output batch on 2 MiB pages + one write"
KEPT_OUTPUT_HUGE = "OS: fastmix's output batch (the last one's released mapping) + one write"
REUSED_OUTPUT = "OS: the same write into memory already mapped"


def collate_scenarios(
    batch: int,
    size: int,
    backends: List[str],
    num_classes: int,
    timm_mixup: Optional[ModuleType] = None,
    notes: Optional[List[str]] = None,
    rounds: int = 11,
) -> List[Scenario]:
    """The DataLoader path: B numpy HWC uint8 samples (as PIL/OpenCV decode them) -> a batch.

    The floor is default_collate, the plain stacking a DataLoader does without mixing; fastmix's
    own collate with mixing off (prob=0) stands beside it, to show what the mixing itself costs, and
    four rows of the operating system's part: a fresh output batch written once (4 KiB pages as
    torch.empty gives them, and 2 MiB pages), fastmix's batch (the released mapping of the batch
    before it, pages already mapped: what the collate allocates from its second batch on), and the
    same write into a tensor kept alive."""
    notes = [] if notes is None else notes
    samples = make_samples(batch, size, num_classes)
    # timm's fast collate takes CHW numpy samples (its ToNumpy transform makes them so)
    samples_chw = None
    nbytes = batch * size * size * 3 * 2  # one read of the samples, one write of a uint8 batch
    mean = torch.tensor(baselines.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(baselines.IMAGENET_STD).view(1, 3, 1, 1)
    floor_backend = "cpp" if "cpp" in backends else backends[0]
    scenarios = []
    normalised = dict(dtype=torch.float32, mean=baselines.IMAGENET_MEAN, std=baselines.IMAGENET_STD)
    for output, kwargs in [("uint8", dict(dtype=torch.uint8)), ("float32 normalised", normalised)]:
        settings = [("mixup", dict(mixup_alpha=0.8)), ("mixup/cutmix switching", dict(mixup_alpha=0.8, cutmix_alpha=1.0))]
        if output == "uint8":
            settings += baselines.OTHER_METHOD_OPERATIONS
        for setting, knobs in settings:
            candidates: Dict[str, Callable[[], object]] = {}
            for b in backends:
                collate = MixupCollate(Mixup(num_classes=num_classes, seed=0, backend=b, **knobs), **kwargs)
                candidates[f"fastmix/{b}"] = lambda c=collate: c(samples)
            draws = draw_sequence(knobs, num_classes, batch, size, rounds + 1)  # what fastmix's rows draw
            if setting.startswith("fmix"):
                naive = "naive: default_collate + permute + FMix float-mask blend + round"
                planes = mask_planes_of(draws)
                candidates[naive] = each_round(
                    draws, lambda p, planes=planes: baselines.naive_collate_fmix_uint8(samples, planes[id(p)], p.partner))
            elif setting == "resizemix batch":
                naive = "naive: default_collate + permute + mmpretrain F.interpolate + paste"
                candidates[naive] = each_round(draws, lambda p: baselines.naive_collate_resizemix_uint8(
                    samples, p.partner, tuple(int(v) for v in p.box[0])))
            elif output == "uint8":
                candidates["naive: default_collate + permute + float blend + round"] = each_round(
                    draws, lambda p: baselines.naive_collate_uint8(samples, float(p.lam[0])))
                naive = "naive: default_collate + permute + float blend + round"
                if timm_mixup is not None and batch % 2 == 0 and setting not in dict(baselines.OTHER_METHOD_OPERATIONS):
                    if samples_chw is None:
                        samples_chw = [(np.ascontiguousarray(image.transpose(2, 0, 1)), label) for image, label in samples]
                    peer = timm_mixup.FastCollateMixup(num_classes=num_classes, label_smoothing=0.1, **knobs)
                    candidates["peer: timm FastCollateMixup (CHW numpy samples)"] = lambda peer=peer: peer(samples_chw)
            else:
                candidates["naive: default_collate + float + normalise + blend"] = each_round(
                    draws, lambda p: baselines.naive_collate_normalized(samples, float(p.lam[0]), mean, std))
                naive = "naive: default_collate + float + normalise + blend"
            off = MixupCollate(Mixup(num_classes=num_classes, seed=0, prob=0.0, backend=floor_backend, **knobs), **kwargs)
            candidates[f"fastmix collate, mixing off (prob=0)@{floor_backend}"] = lambda c=off: c(samples)
            floor = "floor: default_collate, no mixing"
            candidates[floor] = lambda: default_collate(samples)
            # What is the operating system's: the output's fresh pages, against the same write
            # into memory already mapped (huge_pages.py), for the collate's output dtype.
            shape, out_dtype = (batch, 3, size, size), kwargs["dtype"]
            reused = torch.empty(shape, dtype=out_dtype)
            candidates[FRESH_OUTPUT] = lambda s=shape, d=out_dtype: torch.empty(s, dtype=d).fill_(1)
            candidates[FRESH_OUTPUT_HUGE] = lambda s=shape, d=out_dtype: empty_on_huge_pages(s, d, reuse=False).fill_(1)
            candidates[KEPT_OUTPUT_HUGE] = lambda s=shape, d=out_dtype: empty_on_huge_pages(s, d).fill_(1)
            candidates[REUSED_OUTPUT] = lambda r=reused: r.fill_(1)
            scenarios.append(Scenario(f"collate {output}, {setting}", nbytes, candidates, naive, floor))
    if timm_mixup is not None:
        notes.append("no timm peer for the float32 normalised collate: timm normalises on the GPU after its uint8 collate")
    return scenarios


def run(
    batch: int = 256,
    size: int = 224,
    dtype: str = "float32",
    threads: int = 1,
    backends: Optional[List[str]] = None,
    rounds: int = 11,
    num_classes: int = 1000,
    progress: Optional[ProgressCallback] = None,
    notes: Optional[List[str]] = None,
    device: str = "cpu",
) -> List[Row]:
    """Time every scenario and return one row per implementation.

    On the CPU (``build_scenarios``), ``backends`` defaults to the compiled CPU backends available
    (cpp, numba), else torch; the torch backend is the plain-torch reference, 50-100x slower, so
    it is timed only when asked for. On ``device="cuda"`` (``fastmix.bench.device``) the batch
    lives on the GPU, the cuda kernels run and CUDA events time them; ``backends`` is ignored.
    ``notes``, when given, receives what was left out of the table and why."""
    torch.set_num_threads(threads)
    if device != "cpu":
        from .device import CUDA_INPUT_SETS, CudaEventTimer, device_scenarios

        scenarios = device_scenarios(torch.device(device), batch, size, DTYPES[dtype], num_classes, CUDA_INPUT_SETS)
        return time_scenarios(scenarios, rounds, progress, CudaEventTimer())
    if backends is None:
        status = available_backends()
        backends = [b for b in ("cpp", "numba") if status[b] is None] or ["torch"]
    scenarios = build_scenarios(batch, size, DTYPES[dtype], backends, num_classes, notes, rounds)
    return time_scenarios(scenarios, rounds, progress)
