"""``python -m fastmix bench``: fastmix against naive tensor arithmetic and the floor, on a
synthetic ImageNet-shaped batch (nothing downloaded).

Every implementation of one operation runs on the same batch, interleaved round by round so
that machine noise hits all of them alike; the table reports medians and ratios. When timm is
installed, its Mixup / FastCollateMixup / mixup_target join the table as peers.

``--pipeline`` measures instead a whole DataLoader over built-in JPEGs, in images per second per
collate and num_workers (fastmix.bench.pipeline).
"""
from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
from dataclasses import asdict
from types import ModuleType
from typing import Callable, Dict, List, Optional

import torch
from torch.utils.data import default_collate

from ..backends import available_backends, resolve_backend
from ..mixup import Mixup
from ..sampling.params import MixParams
from . import baselines, pipeline
from .peers import load_timm_mixup
from .timing import ProgressCallback, Row, Scenario, aligned_columns, interleaved_medians, time_scenarios  # noqa: F401 (re-exported)

DTYPES = {"uint8": torch.uint8, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _make_batch(batch: int, size: int, dtype: torch.dtype) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    if dtype == torch.uint8:
        return torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=generator)
    return torch.rand((batch, 3, size, size), generator=generator).to(dtype)


# The segmentation scenario: elem-mode Mixup/CutMix switching of the images and their uint8 masks,
# PASCAL VOC-like classes (20 and the background; 255 marks ignored pixels).
SEGMENTATION_OPERATION = "segmentation: images + masks, in place"
SEGMENTATION_KNOBS = dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem")
SEGMENTATION_CLASSES = 21
IGNORE_INDEX = 255


def _make_masks(batch: int, height: int, width: int) -> torch.Tensor:
    """uint8 (B, H, W) class maps: classes in [0, SEGMENTATION_CLASSES), about 5% of pixels ignored (255)."""
    generator = torch.Generator().manual_seed(2)
    masks = torch.randint(0, SEGMENTATION_CLASSES, (batch, height, width), dtype=torch.uint8, generator=generator)
    masks[torch.rand((batch, height, width), generator=generator) < 0.05] = IGNORE_INDEX
    return masks


def draw_sequence(knobs: dict, num_classes: int, batch: int, size: int, count: int) -> List[MixParams]:
    """The first ``count`` MixParams that ``Mixup(seed=0, **knobs)`` draws for (batch, 3, size, size)
    images: fastmix's rows draw exactly these, call after call, and every other row takes draw r in
    its round r, so all rows of a scenario average over the same lambdas and boxes."""
    mix = Mixup(num_classes=num_classes, seed=0, **knobs)
    return [mix.sample(batch, size, size) for _ in range(count)]


def each_round(draws: List[MixParams], fn: Callable[[MixParams], object]) -> Callable[[], object]:
    """A candidate that calls ``fn(draws[r])`` on its r-th call (the timing calls each once per round)."""
    upcoming = itertools.cycle(draws)
    return lambda: fn(next(upcoming))


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
    images = _make_batch(batch, size, dtype)
    nbytes = 2 * images.numel() * images.element_size()
    timm_mixup, timm_how = load_timm_mixup()
    if timm_mixup is None:
        notes.append(f"no timm peer rows: {timm_how}")
    else:
        notes.append(f"peer rows: {timm_how} (timm draws from its own random streams)")
    notes.append(f"fresh draws: every round of an in-place or collate row uses a new MixParams, the same "
                 f"{rounds + 1} draws (one warm-up round) for every row of an operation")
    labels = torch.randint(0, num_classes, (batch,), generator=torch.Generator().manual_seed(1))
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
    for operation, knobs in baselines.IN_PLACE_OPERATIONS:
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
        elif operation == "cutmix batch":
            candidates["naive: timm flip + paste"] = each_round(
                draws, with_targets(lambda p: baselines.naive_cutmix_flip_(images, tuple(int(v) for v in p.box[0]))))
            naive = "naive: timm flip + paste"
        else:
            candidates["naive: timm clone + per-sample loop"] = each_round(
                draws, with_targets(lambda p: baselines.naive_elem_loop_(images, p)))
            naive = "naive: timm clone + per-sample loop"
        if timm_apply is not None:
            peer = timm_apply.Mixup(num_classes=num_classes, label_smoothing=smoothing, **knobs)
            candidates["peer: timm Mixup (images + targets)"] = lambda peer=peer: peer(images, labels)
        candidates["floor: one in-place pass"] = lambda: baselines.floor_pass_(images)
        scenarios.append(Scenario(operation, nbytes, candidates, naive, "floor: one in-place pass"))
    scenarios.append(segmentation_scenario(images, backends, notes, rounds))

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
    masks = _make_masks(batch, height, width)
    labels = torch.randint(0, SEGMENTATION_CLASSES, (batch,), generator=torch.Generator().manual_seed(1))
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
    own collate with mixing off (prob=0) stands beside it, to show what the mixing itself costs."""
    import numpy as np

    from ..collate import MixupCollate

    notes = [] if notes is None else notes
    rng = np.random.default_rng(0)
    samples = [(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), int(rng.integers(num_classes))) for _ in range(batch)]
    # timm's fast collate takes CHW numpy samples (its ToNumpy transform makes them so)
    samples_chw = None
    nbytes = batch * size * size * 3 * 2  # one read of the samples, one write of a uint8 batch
    mean = torch.tensor(baselines.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(baselines.IMAGENET_STD).view(1, 3, 1, 1)
    floor_backend = "cpp" if "cpp" in backends else backends[0]
    scenarios = []
    normalised = dict(dtype=torch.float32, mean=baselines.IMAGENET_MEAN, std=baselines.IMAGENET_STD)
    for output, kwargs in [("uint8", dict(dtype=torch.uint8)), ("float32 normalised", normalised)]:
        for setting, knobs in [("mixup", dict(mixup_alpha=0.8)), ("mixup/cutmix switching", dict(mixup_alpha=0.8, cutmix_alpha=1.0))]:
            candidates: Dict[str, Callable[[], object]] = {}
            for b in backends:
                collate = MixupCollate(Mixup(num_classes=num_classes, seed=0, backend=b, **knobs), **kwargs)
                candidates[f"fastmix/{b}"] = lambda c=collate: c(samples)
            draws = draw_sequence(knobs, num_classes, batch, size, rounds + 1)  # what fastmix's rows draw
            if output == "uint8":
                candidates["naive: default_collate + permute + float blend + round"] = each_round(
                    draws, lambda p: baselines.naive_collate_uint8(samples, float(p.lam[0])))
                naive = "naive: default_collate + permute + float blend + round"
                if timm_mixup is not None and batch % 2 == 0:
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


def format_table(rows: List[Row]) -> str:
    header = ("operation", "implementation", "backend", "median ms", "GB/s", "x faster than naive", "/ floor")
    lines = [header]
    for r in rows:
        lines.append(
            (
                r.operation,
                r.implementation,
                r.backend,
                f"{r.median_ms:.2f}",
                f"{r.gb_per_s:.1f}",
                f"{r.times_faster_than_naive:.2f}",
                f"{r.ratio_to_floor:.2f}",
            )
        )
    return aligned_columns(lines)


def summary_lines(rows: List[Row]) -> List[str]:
    """Each compiled fastmix row in words, against its operation's floor and naive rows. Where the
    operation reads and writes the whole batch (Mixup, the fused conversion) the floor moves the
    same bytes, so "of the floor's speed" is the fraction of its bandwidth fastmix achieves."""
    floors = {r.operation: r for r in rows if r.implementation.startswith("floor")}
    lines = []
    for r in rows:
        floor = floors.get(r.operation)
        if r.implementation.startswith("fastmix") and r.backend != "torch" and floor is not None:
            lines.append(f"{r.operation}: {r.implementation} [{r.backend}] {r.median_ms:.3f} ms ({r.gb_per_s:.0f} GB/s), "
                         f"{1.0 / r.ratio_to_floor:.2f} of the floor's speed ({floor.implementation[7:]}: "
                         f"{floor.median_ms:.3f} ms, {floor.gb_per_s:.0f} GB/s), "
                         f"{r.times_faster_than_naive:.1f}x faster than naive")
    return lines


def kernel_threads(threads: int) -> str:
    """How many threads the cpp kernels really run on at ``threads``, said beside the thread count:
    a build without OpenMP runs them on one whatever torch.set_num_threads says."""
    from ..backends.extension import load_extension

    extension = load_extension()
    if extension is None or not hasattr(extension, "cpu_threads"):
        return ""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return f" (the cpp kernels on {extension.cpu_threads()})"
    finally:
        torch.set_num_threads(previous)


def machine_description(device: str = "cpu") -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    host = f"{cpu}, torch {torch.__version__}, python {platform.python_version()}"
    if device == "cuda":
        from .device import device_description

        return f"{device_description()}; host {host}"
    return host


class ProgressLine:
    """The progress display: one line rewritten in place on a terminal, one line per operation
    otherwise (logs, CI)."""

    def __init__(self, stream=None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.width = 0

    def __call__(self, scenario: int, scenarios: int, operation: str, done: int, rounds: int) -> None:
        what = f"[{scenario}/{scenarios}] {operation}: " + ("warm-up" if done == 0 else f"round {done}/{rounds}")
        if self.live:
            self.stream.write("\r" + what.ljust(self.width))
            self.width = len(what)
            if scenario == scenarios and done == rounds:
                self.close()
        elif done == 0:
            self.stream.write(f"[{scenario}/{scenarios}] {operation} ({rounds} rounds)\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.width = 0
            self.stream.flush()


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _worker_counts(text: str) -> List[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = [-1]
    if not counts or min(counts) < 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 0 such as 0,1,2, got {text!r}")
    return counts


def _pipeline_main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``--pipeline``: the DataLoader table (fastmix.bench.pipeline), printed and written like the main one."""
    for option, given in [("--device cuda", args.device != "cpu"), ("--plot", args.plot), ("--backends", args.backends),
                          ("--dtype", args.dtype)]:
        if given:  # said now, not after minutes of timing
            parser.error(f"{option}: not with --pipeline (its rows are fixed: see python -m fastmix bench --help)")
    args.batch_size = pipeline.DEFAULT_BATCH if args.batch_size is None else args.batch_size
    args.rounds = pipeline.DEFAULT_ROUNDS if args.rounds is None else args.rounds
    args.pipeline_images = pipeline.DEFAULT_IMAGES if args.pipeline_images is None else args.pipeline_images
    args.pipeline_workers = list(pipeline.DEFAULT_WORKERS) if args.pipeline_workers is None else args.pipeline_workers
    if args.pipeline_images < args.batch_size:
        parser.error(f"--pipeline-images: expected at least one batch (--batch-size {args.batch_size}) of images, "
                     f"got {args.pipeline_images}")
    try:
        import PIL  # noqa: F401
    except ImportError:
        parser.error("--pipeline: Pillow is not installed; install it with: pip install pillow")
    # one thread, as the main bench: on a shared machine two-thread ops in the main loop wait on a
    # descheduled thread (a 1 s collate seen here), and each worker runs one thread anyway
    torch.set_num_threads(args.threads)

    machine = machine_description()
    print(
        f"fastmix bench --pipeline: {args.pipeline_images} JPEGs of {args.image_size}x{args.image_size} in batches of "
        f"{args.batch_size}, num_workers {', '.join(map(str, args.pipeline_workers))}, medians of {args.rounds} "
        f"interleaved epochs\nmachine: {machine}",
        flush=True,
    )
    notes: List[str] = []
    progress = ProgressLine()
    try:
        rows = pipeline.run(args.pipeline_images, args.batch_size, args.image_size, args.rounds, args.pipeline_workers,
                            args.num_classes, progress, notes)
    finally:
        progress.close()
    print(pipeline.format_table(rows))
    goals = pipeline.goal_lines(rows)
    for line in goals:
        print(line)
    for note in notes:
        print(f"note: {note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "args": vars(args), "notes": notes, "goals": goals,
                       "rows": [asdict(r) for r in rows]}, f, indent=2)
        print(f"wrote {args.json}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastmix bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=_positive_int, default=None, help="default 256 (128 with --pipeline)")
    parser.add_argument("--image-size", type=_positive_int, default=224)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="of the in-place batch (default float32)")
    parser.add_argument("--threads", type=_positive_int, default=1,
                        help="torch.set_num_threads (default 1; with --pipeline, in the main process: workers use 1)")
    parser.add_argument("--backends", default=None,
                        help="comma-separated CPU backends: cpp, numba, torch (default: the available ones of cpp and numba; "
                             "torch is the plain-torch reference)")
    parser.add_argument("--rounds", type=_positive_int, default=None,
                        help="timed rounds per implementation (median reported; default 11; with --pipeline, 7 epochs per row)")
    parser.add_argument("--num-classes", type=_positive_int, default=1000)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cpu (default): CPU batches and the DataLoader collate; cuda: a batch already on the GPU, "
                             "timed with CUDA events (the cuda kernels; --backends and --threads do not apply)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows, notes and machine to FILE")
    parser.add_argument("--plot", metavar="FILE.png", help="also draw the table as a bar chart (needs matplotlib)")
    parser.add_argument("--pipeline", action="store_true",
                        help="instead: a DataLoader's images/s over built-in JPEGs decoded in its workers, per collate and "
                             "num_workers (default batch 128 of 224x224; needs Pillow)")
    parser.add_argument("--pipeline-images", type=_positive_int, default=None, metavar="N",
                        help=f"with --pipeline: JPEG images in the built-in set, one epoch (default {pipeline.DEFAULT_IMAGES})")
    parser.add_argument("--pipeline-workers", type=_worker_counts, default=None, metavar="0,1,2",
                        help="with --pipeline: the num_workers values to measure (default 0,1,2)")
    args = parser.parse_args(argv)
    if args.pipeline:
        return _pipeline_main(parser, args)
    for option in ("pipeline_images", "pipeline_workers"):
        if getattr(args, option) is not None:
            parser.error(f"--{option.replace('_', '-')}: only with --pipeline")
    args.batch_size = 256 if args.batch_size is None else args.batch_size
    args.dtype = "float32" if args.dtype is None else args.dtype
    args.rounds = 11 if args.rounds is None else args.rounds
    backends = args.backends.split(",") if args.backends else None
    if args.device == "cuda":
        if backends:
            parser.error("--backends: with --device cuda the cuda kernels are timed; leave --backends out")
        reason = available_backends()["cuda"]
        if reason is not None:
            parser.error(f"--device cuda: the cuda backend is not available: {reason}")
    elif backends:
        status = available_backends()
        for b in backends:
            if b not in status:
                parser.error(f"--backends: unknown backend {b!r}; expected some of cpp, numba, torch")
            if b == "cuda":
                parser.error("--backends: the bench times CPU batches here; time the CUDA kernels with --device cuda")
            if status[b] is not None:
                parser.error(f"--backends: {b} is not available: {status[b]}")
    if args.plot:
        from .plot import matplotlib_missing

        missing = matplotlib_missing()
        if missing:  # said now, not after minutes of timing
            parser.error(f"--plot: {missing}")

    where = f"{args.threads} thread(s){kernel_threads(args.threads)}" if args.device == "cpu" else "on the GPU, CUDA events"
    machine = machine_description(args.device)
    print(
        f"fastmix bench: batch {args.batch_size}x3x{args.image_size}x{args.image_size} {args.dtype}, "
        f"{where}, medians of {args.rounds} interleaved rounds\nmachine: {machine}",
        flush=True,
    )
    notes: List[str] = []
    progress = ProgressLine()
    try:
        rows = run(args.batch_size, args.image_size, args.dtype, args.threads, backends, args.rounds, args.num_classes,
                   progress, notes, args.device)
    finally:
        progress.close()
    print(format_table(rows))
    if args.device == "cuda":
        for line in summary_lines(rows):
            print(line)
    for note in notes:
        print(f"note: {note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "args": vars(args), "notes": notes, "rows": [asdict(r) for r in rows]},
                      f, indent=2)
        print(f"wrote {args.json}")
    if args.plot:
        from .plot import plot_rows

        title = (f"fastmix bench: {args.batch_size}x3x{args.image_size}x{args.image_size} {args.dtype}, "
                 f"{where}\n{machine}")
        plot_rows(rows, args.plot, title)
        print(f"wrote {args.plot}")
    return 0
