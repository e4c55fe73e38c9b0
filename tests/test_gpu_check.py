"""benchmarks/gpu_check.sh, the one call on a lent GPU, checked where no GPU is: it parses, its
step limits fit the 8 minutes it is given, every test it names by id exists, its junit judge
fails a run that ran no CUDA test (or skipped one for want of the cuda backend), and run here it
refuses with "cuda backend not loaded: <reason>", exits non-zero and still leaves its archive and
summary, two files, in $OUT."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from benchmarks import gpu_check_tools as tools

from .helpers import HAS_CUDA

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
CALL_LIMIT = 480  # the 8 minutes (the device tool's call limit is 10)


def script_text() -> str:
    return SCRIPT.read_text()


def test_the_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


def step_limits(part: str) -> dict:
    """The limit each step of a part is given, read off the script's step calls."""
    limits = {}
    for name, limit in re.findall(r"(?:step|pytest_step|run_step) \"?([\w$-]+)\"? (\d+)", script_text()):
        for dtype in ("bfloat16", "float32"):
            limits[name.replace("$dtype", dtype)] = int(limit)
    limits["build"] = int(re.search(r"^ *build_limit=(\d+)$", script_text(), re.M).group(1))  # with ninja
    core = ["machine", "build", "loaded", "cuda-tests", "sanitizer-probe", "sanitizer"]
    wanted = {"core": core, "all": core + ["figures-bfloat16", "figures-float32", "bench-suite"],
              "rest": ["machine", "build", "loaded", "whole-suite"]}[part]
    return {name: limits[name] for name in wanted}


@pytest.mark.parametrize("part", ["core", "all"])
def test_the_step_limits_and_the_budget_fit_one_call(part):
    limits = step_limits(part)
    budget = int(re.search(r"FASTMIX_GPU_CHECK_BUDGET:-(\d+)", script_text()).group(1))
    assert sum(limits.values()) <= budget <= CALL_LIMIT - 10, limits
    # The header's table says the same numbers.
    for name, limit in limits.items():
        header_name = "figures" if name.startswith("figures") else name
        assert re.search(rf"^#   {re.escape(header_name)} +\d+", script_text(), re.M), name


def test_the_script_uses_maxfail_and_reports_failures_and_skips():
    text = script_text()
    assert " -x " not in text and "--maxfail=" in text and "-rfEs" in text and "--junitxml=" in text


def named_tests(array: str) -> list:
    block = re.search(rf"^{array}=\(\n(.*?)^\)", script_text(), re.M | re.S).group(1)
    return [re.match(r'\s*"?([^"\s#]+)"?', line).group(1) for line in block.splitlines() if line.strip()]


@pytest.mark.slow
def test_every_test_the_script_names_exists():
    named = {array: named_tests(array) for array in ("CUDA_TESTS", "SANITIZER_TESTS")}
    assert all(named.values())
    ids = sorted(set(named["CUDA_TESTS"] + named["SANITIZER_TESTS"]))
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *ids],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    collected = {line.strip() for line in result.stdout.splitlines() if "::" in line}
    for node in ids:
        if "::" in node:
            assert node in collected, f"{node}, named in benchmarks/gpu_check.sh, does not exist"


# -- the junit judge -----------------------------------------------------------------------------------

def junit(tmp_path: Path, cases: str) -> Path:
    path = tmp_path / "junit.xml"
    path.write_text(f'<?xml version="1.0"?><testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>')
    return path


PASSED = '<testcase classname="tests.test_cuda" name="test_a" />'
CUDA_SKIP = ('<testcase classname="tests.test_cuda" name="test_b"><skipped type="pytest.skip" '
             'message="cuda backend unavailable: no CUDA device is available" /></testcase>')
MEMORY_SKIP = ('<testcase classname="tests.test_cuda" name="test_c"><skipped type="pytest.skip" '
               'message="needs 27.8 GiB of free GPU memory; 20.0 of 79.6 GiB are free" /></testcase>')
FAILED = ('<testcase classname="tests.test_cuda" name="test_d[uint8]"><failure message="AssertionError: rows 0:2">'
          'long traceback</failure></testcase>')
OTHER_FILE = '<testcase classname="tests.test_backends" name="test_e" />'


def judge(path: Path, *cuda_files: str):
    args = [str(path), "--label", "cuda-tests"] + [arg for f in cuda_files for arg in ("--cuda-file", f)]
    return tools.main(["junit", *args])


def test_a_run_whose_cuda_tests_all_skipped_fails(tmp_path, capsys):
    assert judge(junit(tmp_path, CUDA_SKIP * 3 + OTHER_FILE), "tests/test_cuda.py") == 1
    out = capsys.readouterr().out
    assert "no test of tests/test_cuda.py ran" in out and "skipped because the cuda backend is missing" in out


def test_one_skip_for_want_of_the_cuda_backend_fails_a_run(tmp_path, capsys):
    assert judge(junit(tmp_path, PASSED + CUDA_SKIP), "tests/test_cuda.py") == 1
    assert "1 skipped because the cuda backend is missing" in capsys.readouterr().out


def test_a_run_with_no_test_fails(tmp_path, capsys):
    assert judge(junit(tmp_path, "")) == 1
    assert "no test ran" in capsys.readouterr().out


def test_a_memory_skip_is_listed_not_failed(tmp_path, capsys):
    assert judge(junit(tmp_path, PASSED + MEMORY_SKIP + OTHER_FILE), "tests/test_cuda.py") == 0
    out = capsys.readouterr().out
    assert "2 passed, 0 failed, 1 skipped (ok)" in out and "skipped x1: needs 27.8 GiB" in out


def test_failures_are_named_with_their_message(tmp_path, capsys):
    assert judge(junit(tmp_path, PASSED + FAILED), "tests/test_cuda.py") == 1
    out = capsys.readouterr().out
    assert "FAILED tests/test_cuda.py::test_d[uint8]: AssertionError: rows 0:2" in out and "1 failed" in out


def test_a_killed_run_is_judged_from_its_verbose_log(tmp_path, capsys):
    log = tmp_path / "cuda-tests.log"
    log.write_text("tests/test_cuda.py::test_a PASSED     [  1%]\n"
                   "tests/test_cuda.py::test_b[uint8] FAILED     [  2%]\n"
                   "tests/test_cuda.py::test_c[0.0-int32 indices] PASSED     [  3%]\n"
                   "tests/test_cuda.py::test_hangs[0.1-int32 indices] \n"
                   "+++++++++++++++ Timeout +++++++++++++++\n")
    assert tools.main(["junit", str(tmp_path / "missing.xml"), "--log", str(log), "--cuda-file", "tests/test_cuda.py"]) == 1
    out = capsys.readouterr().out
    assert "2 passed, 1 failed" in out
    assert "still running when stopped: tests/test_cuda.py::test_hangs[0.1-int32 indices]" in out


def test_ninja_log_times_per_file(tmp_path, capsys):
    temp = tmp_path / "temp.linux-x86_64-cpython-312"
    temp.mkdir()
    (temp / ".ninja_log").write_text("# ninja log v5\n"
                                     f"0\t31250\t0\t{temp}/csrc/cuda/mix_cuda.o\tabc\n"
                                     f"10\t9010\t0\t{temp}/csrc/ops.o\tdef\n")
    assert tools.build_times(tmp_path) == [("csrc/cuda/mix_cuda.o", 31.25), ("csrc/ops.o", 9.0)]


def test_the_build_stamp_tracks_the_sources(tmp_path, monkeypatch):
    stamp = tmp_path / "stamp"
    stamp.write_text(tools.fingerprint())
    assert stamp.read_text() == tools.fingerprint()
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.6")
    assert stamp.read_text() != tools.fingerprint()
    current, why = tools.build_current(tmp_path / "stamp")
    if not HAS_CUDA:  # here fastmix._C has no CUDA kernels: a build is due whatever the stamp says
        assert not current and why


# -- the script run here, where the cuda backend cannot load -------------------------------------------


def run_script(tmp_path: Path, *extra_env: tuple, part: str = "all") -> tuple:
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable, FASTMIX_GPU_CHECK_BUILD="0", TMPDIR=str(tmp_path))
    env.update(dict(extra_env))
    result = subprocess.run(["bash", str(SCRIPT), part], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    return result, out


@pytest.mark.slow
@pytest.mark.skipif(HAS_CUDA, reason="checks the refusal where the cuda backend does not load")
def test_where_cuda_does_not_load_the_script_refuses_and_still_leaves_its_files(tmp_path):
    result, out = run_script(tmp_path)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.tar.gz", "summary.txt"]
    summary = (out / "summary.txt").read_text()
    assert re.search(r"cuda backend not loaded: \S", summary), summary
    assert "RESULT: FAIL" in summary and "loaded" in summary.split("RESULT:")[1]
    assert re.search(r"cuda-tests +NOT RUN .*cuda backend not loaded", summary), summary
    with tarfile.open(out / "gpu_check.tar.gz") as archive:
        names = {Path(n).name for n in archive.getnames()}
    assert {"summary.txt", "machine.log", "loaded.log", "steps.txt"} <= names
    assert "cuda backend not loaded" in result.stdout  # the printed summary, last


@pytest.mark.slow
@pytest.mark.skipif(HAS_CUDA, reason="checks the script where the cuda backend does not load")
def test_where_cuda_does_not_load_every_later_step_fails_instead_of_passing_by_skipping(tmp_path):
    """FASTMIX_GPU_CHECK_CONTINUE=1 runs the GPU steps anyway: the CUDA tests all skip, and that is
    a failure; the sanitizer (absent here) is reported unsupported, not failed."""
    result, out = run_script(tmp_path, ("FASTMIX_GPU_CHECK_CONTINUE", "1"), ("FASTMIX_GPU_CHECK_BUDGET", "300"))
    summary = (out / "summary.txt").read_text()
    assert result.returncode == 1, summary
    assert re.search(r"cuda-tests +FAIL \(junit\)", summary), summary
    assert "no test of tests/test_cuda.py ran" in summary and "skipped because the cuda backend is missing" in summary
    assert re.search(r"bench-suite +FAIL", summary) and re.search(r"figures-bfloat16 +FAIL", summary)
    assert re.search(r"sanitizer +(UNSUPPORTED|FAIL)", summary)
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.tar.gz", "summary.txt"]


def test_an_unknown_part_is_refused_before_anything_runs(tmp_path):
    result = subprocess.run(["bash", str(SCRIPT), "everything"], capture_output=True, text=True,
                            env={"OUT": str(tmp_path / "out"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and "usage:" in result.stderr and "[core|rest|all]" in result.stderr
    assert not (tmp_path / "out").exists()
