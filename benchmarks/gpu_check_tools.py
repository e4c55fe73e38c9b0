"""The parts of benchmarks/gpu_check.sh that read files: whether fastmix._C is already built for
these sources, nvcc's time per file from ninja's log, and what a junit XML (or, when pytest was
killed before writing one, its -v log) says was run.

    python benchmarks/gpu_check_tools.py build-current STAMP     # exit 0: no rebuild needed
    python benchmarks/gpu_check_tools.py write-stamp STAMP
    python benchmarks/gpu_check_tools.py build-times BUILD_DIR   # seconds per compiled file
    python benchmarks/gpu_check_tools.py junit XML --log LOG [--cuda-file tests/test_cuda.py ...]

``junit`` prints a digest (counts, each failure, each distinct skip reason) and exits 1 when a
test failed or errored, when no test of a --cuda-file ran, or when a test was skipped because the
cuda backend was missing: on the GPU machine that is a failure, never a pass.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
# The reason tests/helpers.py's requires_cuda (and benchmarks/test_bench_cuda.py) give a skip.
CUDA_MISSING = "cuda backend unavailable"


# -- the build -------------------------------------------------------------------------------------


def fingerprint() -> str:
    """What a build of fastmix._C depends on: every file under csrc/, setup.py, the torch it is
    built against and the knobs setup.py reads."""
    import torch

    digest = hashlib.sha256()
    for path in sorted([ROOT / "setup.py"] + [p for p in (ROOT / "csrc").rglob("*") if p.is_file()]):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    for knob in ("TORCH_CUDA_ARCH_LIST", "FASTMIX_CUDA", "FASTMIX_DEBUG"):
        digest.update(f"{knob}={os.environ.get(knob, '')}\0".encode())
    return f"torch {torch.__version__}\nsources {digest.hexdigest()}\n"


def build_current(stamp: Path) -> Tuple[bool, str]:
    """(True, why) when fastmix._C loads for the running torch, has CUDA kernels and was built
    from exactly these sources; else (False, why a build is needed)."""
    from fastmix.backends.extension import extension_error, has_cuda_kernels, load_extension

    ext = load_extension()
    if ext is None:
        return False, f"fastmix._C does not load: {extension_error()}"
    if ROOT not in Path(ext.__file__).resolve().parents:
        return False, f"fastmix._C was imported from {ext.__file__}, not from this tree"
    if not has_cuda_kernels():
        return False, "fastmix._C has no CUDA kernels"
    if not stamp.exists():
        return False, f"no build stamp ({stamp}): built by something else, or before these sources"
    if stamp.read_text() != fingerprint():
        return False, "csrc/, setup.py, torch or the build knobs changed since the last build"
    return True, "fastmix._C has CUDA kernels for this torch, built from these sources: no rebuild"


def build_times(build_dir: Path) -> List[Tuple[str, float]]:
    """(object, seconds) of each compile in ninja's logs under build_dir (the latest entry of
    each; csrc/cuda/mix_cuda.o is nvcc's time on csrc/cuda/mix_cuda.cu), slowest first."""
    latest: Dict[str, float] = {}
    for log in sorted(build_dir.glob("temp*/.ninja_log")):
        for line in log.read_text().splitlines():
            fields = line.split("\t")
            if line.startswith("#") or len(fields) < 4:
                continue
            output = fields[3]
            name = "csrc/" + output.split("/csrc/", 1)[1] if "/csrc/" in output else output
            latest[name] = (int(fields[1]) - int(fields[0])) / 1000
    return sorted(latest.items(), key=lambda item: -item[1])


# -- what pytest ran ---------------------------------------------------------------------------------


class Digest:
    def __init__(self) -> None:
        self.passed: List[str] = []
        self.failed: List[Tuple[str, str]] = []  # (test, first line of the message)
        self.skipped: List[Tuple[str, str]] = []  # (test, reason)
        self.by_file: Dict[str, int] = collections.Counter()  # tests that ran (passed or failed), per file
        self.source = ""
        self.notes: List[str] = []

    @property
    def ran(self) -> int:
        return len(self.passed) + len(self.failed)


def _test_file(classname: str) -> str:
    """tests.test_cuda -> tests/test_cuda.py (pytest's junit classname; a test class adds a part)."""
    parts = classname.split(".")
    while parts and not parts[-1].startswith("test_"):
        parts.pop()
    return "/".join(parts) + ".py" if parts else classname


def read_junit(path: Path) -> Digest:
    digest = Digest()
    digest.source = path.name
    for case in ET.parse(path).getroot().iter("testcase"):
        file = _test_file(case.get("classname", ""))
        name = f"{file}::{case.get('name', '?')}"
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if problem is not None:
            message = (problem.get("message") or problem.text or "").strip().splitlines()
            digest.failed.append((name, (message[0] if message else problem.tag)[:300]))
            digest.by_file[file] += 1
        elif skipped is not None:
            digest.skipped.append((name, (skipped.get("message") or "").strip()))
        else:
            digest.passed.append(name)
            digest.by_file[file] += 1
    return digest


VERBOSE_LINE = re.compile(r"^(\S+::\S+(?:\[.*\])?) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b(.*)$")


def read_verbose_log(path: Path) -> Digest:
    """The counts from a pytest -v log, for a run killed before it wrote its junit XML; notes the
    test that was running when it stopped."""
    digest = Digest()
    digest.source = f"{path.name}: no junit XML, pytest was stopped before writing it"
    last_started: Optional[str] = None
    for line in path.read_text(errors="replace").splitlines():
        match = VERBOSE_LINE.match(line.strip())
        if not match:
            started = re.match(r"^(\S+\.py::\S+(?:\[.*\])?) *$", line.rstrip())
            if started:
                last_started = started.group(1)
            continue
        name, outcome, rest = match.groups()
        file = name.split("::", 1)[0]
        if outcome in ("PASSED", "XPASS"):
            digest.passed.append(name)
            digest.by_file[file] += 1
        elif outcome in ("FAILED", "ERROR"):
            digest.failed.append((name, outcome.lower()))
            digest.by_file[file] += 1
        else:
            digest.skipped.append((name, rest.strip(" ()")))
        last_started = None
    if last_started:
        digest.notes.append(f"still running when stopped: {last_started}")
    return digest


def judge(digest: Digest, cuda_files: List[str]) -> List[str]:
    """Why this run is not a pass (empty when it is)."""
    problems = []
    if digest.failed:
        problems.append(f"{len(digest.failed)} failed")
    if digest.ran == 0:
        problems.append("no test ran")
    for file in cuda_files:
        if digest.by_file.get(file, 0) == 0:
            problems.append(f"no test of {file} ran")
    missing = [name for name, reason in digest.skipped if CUDA_MISSING in reason]
    if missing:
        problems.append(f"{len(missing)} skipped because the cuda backend is missing")
    return problems


def digest_lines(label: str, digest: Digest, problems: List[str], limit: int = 20) -> List[str]:
    verdict = "FAIL: " + "; ".join(problems) if problems else "ok"
    lines = [f"{label}: {len(digest.passed)} passed, {len(digest.failed)} failed, {len(digest.skipped)} skipped "
             f"({verdict}) [{digest.source}]"]
    lines += [f"  {note}" for note in digest.notes]
    for name, message in digest.failed[:limit]:
        lines.append(f"  FAILED {name}: {message}")
    if len(digest.failed) > limit:
        lines.append(f"  ... and {len(digest.failed) - limit} more failures (see the log in the archive)")
    reasons = collections.Counter(reason for _, reason in digest.skipped)
    for reason, count in reasons.most_common(10):
        lines.append(f"  skipped x{count}: {reason[:200]}")
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build-current").add_argument("stamp", type=Path)
    commands.add_parser("write-stamp").add_argument("stamp", type=Path)
    commands.add_parser("build-times").add_argument("build_dir", type=Path)
    junit = commands.add_parser("junit")
    junit.add_argument("xml", type=Path)
    junit.add_argument("--log", type=Path, help="the run's pytest -v log, read when the XML is missing")
    junit.add_argument("--label", default="tests")
    junit.add_argument("--cuda-file", action="append", default=[],
                       help="a test file of which at least one test must have run (repeatable)")
    args = parser.parse_args(argv)
    if args.command == "build-current":
        current, why = build_current(args.stamp)
        print(why)
        return 0 if current else 1
    if args.command == "write-stamp":
        args.stamp.parent.mkdir(parents=True, exist_ok=True)
        args.stamp.write_text(fingerprint())
        return 0
    if args.command == "build-times":
        times = build_times(args.build_dir)
        for source, seconds in times:
            print(f"{seconds:7.1f} s  {source}")
        if not times:
            print(f"no ninja log under {args.build_dir}/temp*/ (built without ninja, or not built here)")
        return 0
    if args.xml.exists():
        digest = read_junit(args.xml)
    elif args.log is not None and args.log.exists():
        digest = read_verbose_log(args.log)
    else:
        print(f"{args.label}: FAIL: neither {args.xml} nor a log was written (the step did not start pytest?)")
        return 1
    problems = judge(digest, args.cuda_file)
    print("\n".join(digest_lines(args.label, digest, problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
