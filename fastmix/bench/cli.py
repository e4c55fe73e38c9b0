"""``python -m fastmix bench``: fastmix against naive tensor arithmetic and the floor, on a
synthetic ImageNet-shaped batch (nothing downloaded).

Every implementation of one operation runs on the same batch, interleaved round by round so
that machine noise hits all of them alike; the table reports medians and ratios. When timm is
installed, its Mixup / FastCollateMixup / mixup_target join the table as peers.

``--pipeline`` measures instead a whole DataLoader over procedural JPEGs (``--pipeline-set``: the
built-in 224x224 set, an ImageNet-like set cropped in the workers, or both), in images per second
per collate and num_workers, where each batch's CPU time goes, and the page faults of a worker
batch (fastmix.bench.pipeline).

This module is the command: its arguments, checked before any timing, and what it prints; what is
timed is in fastmix.bench.scenarios (and device, pipeline), what is printed in fastmix.bench.report.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import List, Optional

import torch

from ..backends import available_backends
from . import pipeline, report, scenarios
from .inputs import DTYPES


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
    """``--pipeline``: the DataLoader tables (fastmix.bench.pipeline), one per set, and the
    operating system's part of a worker batch, printed and written like the main one."""
    for option, given in [("--device cuda", args.device != "cpu"), ("--plot", args.plot), ("--backends", args.backends),
                          ("--dtype", args.dtype)]:
        if given:  # said now, not after minutes of timing
            parser.error(f"{option}: not with --pipeline (its rows are fixed: see python -m fastmix bench --help)")
    args.batch_size = pipeline.DEFAULT_BATCH if args.batch_size is None else args.batch_size
    args.rounds = pipeline.DEFAULT_ROUNDS if args.rounds is None else args.rounds
    args.pipeline_workers = list(pipeline.DEFAULT_WORKERS) if args.pipeline_workers is None else args.pipeline_workers
    args.pipeline_set = pipeline.DEFAULT_SET if args.pipeline_set is None else args.pipeline_set
    sets = list(pipeline.SETS) if args.pipeline_set == "both" else [args.pipeline_set]
    images = {s: pipeline.DEFAULT_IMAGES[s] if args.pipeline_images is None else args.pipeline_images for s in sets}
    for s in sets:
        if images[s] < args.batch_size:
            parser.error(f"--pipeline-images: expected at least one batch (--batch-size {args.batch_size}) of images, "
                         f"got {images[s]}" + ("" if args.pipeline_images is not None else f" (the {s} set's default)"))
    try:
        import PIL  # noqa: F401
    except ImportError:
        parser.error("--pipeline: Pillow is not installed; install it with: pip install pillow")
    # one thread, as the main bench: on a shared machine two-thread ops in the main loop wait on a
    # descheduled thread (a 1 s collate seen here), and each worker runs one thread anyway
    torch.set_num_threads(args.threads)

    machine = report.machine_description()
    what = ", ".join(f"{s} ({images[s]} JPEGs)" for s in sets)
    print(
        f"fastmix bench --pipeline: {what}, {args.image_size}x{args.image_size} batches of {args.batch_size}, "
        f"num_workers {', '.join(map(str, args.pipeline_workers))}, medians of {args.rounds} interleaved epochs\n"
        f"machine: {machine}",
        flush=True,
    )
    notes: List[str] = []
    rows: List[pipeline.PipelineRow] = []
    progress = report.ProgressLine()
    try:
        for s in sets:
            rows += pipeline.run(images[s], args.batch_size, args.image_size, args.rounds, args.pipeline_workers,
                                 args.num_classes, progress, notes, s)
        costs = pipeline.os_costs(args.batch_size, args.image_size) if args.pipeline_os_costs else []
    finally:
        progress.close()
    for s in sets:
        print(f"\n{s} set")
        print(pipeline.format_table([r for r in rows if r.pipeline_set == s]))
    if costs:
        print(f"\nthe operating system's part of a worker batch of {args.batch_size}x3x{args.image_size}x{args.image_size} "
              f"(one worker, medians of {costs[0].batches} batches)")
        print(pipeline.format_os_costs(costs))
    print()
    goals = pipeline.goal_lines(rows)
    for line in goals + pipeline.pool_lines(rows):
        print(line)
    for note in notes:
        print(f"note: {note}")
    if args.json:
        report.write_json(args.json, machine, vars(args), notes, rows, goals=goals, pool=pipeline.pool_lines(rows),
                          os_costs=[asdict(c) for c in costs])
        print(f"wrote {args.json}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m fastmix bench [options]``: parse ``argv``, time, print the table; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m fastmix bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=_positive_int, default=None, help="default 256 (128 with --pipeline)")
    parser.add_argument("--image-size", type=_positive_int, default=224)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=None,
                        help="of the in-place batch (default float32)")
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
    parser.add_argument("--pipeline-set", choices=pipeline.SETS + ("both",), default=None,
                        help=f"with --pipeline: {pipeline.BUILTIN} (procedural 224x224 JPEGs, decoded only), "
                             f"{pipeline.IMAGENET_LIKE} (500x375 JPEGs of ImageNet's file size, decoded and "
                             f"RandomResizedCrop-ed to --image-size in the workers) or both (default {pipeline.DEFAULT_SET})")
    parser.add_argument("--pipeline-images", type=_positive_int, default=None, metavar="N",
                        help="with --pipeline: JPEG images in each set, one epoch (default "
                             + ", ".join(f"{n} {s}" for s, n in pipeline.DEFAULT_IMAGES.items()) + ")")
    parser.add_argument("--pipeline-workers", type=_worker_counts, default=None, metavar="0,1,2",
                        help="with --pipeline: the num_workers values to measure (default 0,1,2)")
    parser.add_argument("--no-pipeline-os-costs", dest="pipeline_os_costs", action="store_false",
                        help="with --pipeline: leave out the table of a worker batch's page faults (about 15 s)")
    args = parser.parse_args(argv)
    if args.pipeline:
        return _pipeline_main(parser, args)
    for option in ("pipeline_images", "pipeline_workers", "pipeline_set"):
        if getattr(args, option) is not None:
            parser.error(f"--{option.replace('_', '-')}: only with --pipeline")
    if not args.pipeline_os_costs:
        parser.error("--no-pipeline-os-costs: only with --pipeline")
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

    where = f"{args.threads} thread(s){report.kernel_threads(args.threads)}" if args.device == "cpu" else "on the GPU, CUDA events"
    machine = report.machine_description(args.device)
    print(
        f"fastmix bench: batch {args.batch_size}x3x{args.image_size}x{args.image_size} {args.dtype}, "
        f"{where}, medians of {args.rounds} interleaved rounds\nmachine: {machine}",
        flush=True,
    )
    notes: List[str] = []
    progress = report.ProgressLine()
    try:
        rows = scenarios.run(args.batch_size, args.image_size, args.dtype, args.threads, backends, args.rounds,
                             args.num_classes, progress, notes, args.device)
    finally:
        progress.close()
    print(report.format_table(rows))
    if args.device == "cuda":
        for line in report.summary_lines(rows):
            print(line)
    for note in notes:
        print(f"note: {note}")
    if args.json:
        report.write_json(args.json, machine, vars(args), notes, rows)
        print(f"wrote {args.json}")
    if args.plot:
        from .plot import plot_rows

        title = (f"fastmix bench: {args.batch_size}x3x{args.image_size}x{args.image_size} {args.dtype}, "
                 f"{where}\n{machine}")
        plot_rows(rows, args.plot, title)
        print(f"wrote {args.plot}")
    return 0
