"""What ``python -m fastmix bench`` prints and writes: the table, the summary of the fastmix rows,
the machine and thread header, the progress line, and the JSON file (--json)."""
from __future__ import annotations

import json
import platform
import sys
from dataclasses import asdict
from typing import List, Sequence

import torch

from .timing import Row, aligned_columns


def format_table(rows: List[Row]) -> str:
    """The rows as a plain-text table: medians, GB/s and the two ratios, one line per implementation."""
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
    """The CPU model, torch and python versions; with ``device="cuda"`` the GPU first."""
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


def write_json(path: str, machine: str, args: dict, notes: List[str], rows: Sequence, **sections: object) -> None:
    """The run as JSON: the machine, the arguments, the notes, any further ``sections``, then every row (a dataclass)."""
    with open(path, "w") as f:
        json.dump({"machine": machine, "args": args, "notes": notes, **sections, "rows": [asdict(r) for r in rows]},
                  f, indent=2)
