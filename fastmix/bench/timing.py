"""How the bench times its scenarios: every candidate of one operation runs on shared data,
interleaved round by round so that machine noise hits all of them alike; medians become rows
with GB/s and the ratios to the operation's naive formula and floor."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

Timer = Callable[[Callable[[], object]], float]  # seconds one call of the candidate took


@dataclass
class Row:
    operation: str
    implementation: str
    backend: str
    median_ms: float
    gb_per_s: float
    times_faster_than_naive: Optional[float]
    ratio_to_floor: Optional[float]


@dataclass
class Scenario:
    """One operation: fastmix per backend, the naive formulas and the floor, on shared data."""

    operation: str
    bytes_moved: int  # nominal traffic: one read and one write of the batch (or of the targets)
    candidates: Dict[str, Callable[[], object]]  # "fastmix/<backend>", "naive: ...", "floor: ...[@backend]"
    naive: str  # the key the "times faster" column divides by
    floor: str


def wall_seconds(fn: Callable[[], object]) -> float:
    """Host wall-clock seconds of one call (CPU work is synchronous)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved_medians(
    candidates: Dict[str, Callable[[], object]],
    rounds: int,
    on_round: Callable[[int, int], None] = lambda done, total: None,
    timer: Timer = wall_seconds,
) -> Dict[str, float]:
    """Median seconds of each candidate over ``rounds`` rounds, each round running every candidate
    once (after one warm-up round). ``on_round(done, rounds)`` is called before each round."""
    times: Dict[str, List[float]] = {name: [] for name in candidates}
    for r in range(rounds + 1):  # round 0 warms up
        on_round(r, rounds)
        for name, fn in candidates.items():
            elapsed = timer(fn)
            if r:
                times[name].append(elapsed)
    return {name: statistics.median(ts) for name, ts in times.items()}


ProgressCallback = Callable[[int, int, str, int, int], None]  # (scenario, of scenarios, operation, round, of rounds)


def time_scenarios(
    scenarios: List[Scenario], rounds: int, progress: Optional[ProgressCallback] = None, timer: Timer = wall_seconds
) -> List[Row]:
    """One row per candidate of every scenario, in order."""
    rows: List[Row] = []
    for k, scenario in enumerate(scenarios, 1):
        def on_round(done: int, total: int, k: int = k, operation: str = scenario.operation) -> None:
            if progress is not None:
                progress(k, len(scenarios), operation, done, total)

        medians = interleaved_medians(scenario.candidates, rounds, on_round, timer)
        for name, seconds in medians.items():
            # "fastmix/<backend>", or "<baseline>" (plain torch), or "<implementation>@<backend>"
            if name.startswith("fastmix/"):
                implementation, _, backend = name.partition("/")
            else:
                implementation, _, backend = name.partition("@")
            rows.append(
                Row(
                    operation=scenario.operation,
                    implementation=implementation,
                    backend=backend or "torch",
                    median_ms=seconds * 1e3,
                    gb_per_s=scenario.bytes_moved / seconds / 1e9,
                    times_faster_than_naive=medians[scenario.naive] / seconds,
                    ratio_to_floor=seconds / medians[scenario.floor],
                )
            )
    return rows


def aligned_columns(lines: List[List[str]], text_columns: int = 3) -> str:
    """A plain-text table: ``lines[0]`` is the header (underlined); the first ``text_columns``
    columns are left-aligned, the numbers after them right-aligned."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) if i < text_columns else cell.rjust(w)
                             for i, (cell, w) in enumerate(zip(line, widths))))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
