"""``python -m fastmix backends [--require NAME[,NAME]]``: what this process can run, and a
non-zero exit with the reason when a backend the user names did not load (the check after a
CUDA build: ``--require cuda``)."""
import os
import subprocess
import sys

import pytest

import fastmix
from fastmix.__main__ import USAGE, main

from .helpers import HAS_CUDA


def test_it_lists_every_backend_with_its_reason_and_what_the_extension_holds(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    status = fastmix.available_backends()
    for name, reason in status.items():
        assert f"  {name:6s} {'available' if reason is None else 'unavailable: ' + reason}" in out
    assert out.startswith("torch ") and "fastmix._C: " in out
    from fastmix.backends.extension import has_cuda_kernels

    assert ("CPU and CUDA kernels" in out) == has_cuda_kernels() or "not loaded" in out


def test_a_required_backend_that_loaded_exits_0(capsys):
    assert main(["backends", "--require", "torch"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.skipif(HAS_CUDA, reason="checks the refusal where the cuda backend does not load")
@pytest.mark.parametrize("argv", [["--require", "cuda"], ["--require", "cpp,cuda"], ["--require", "torch", "--require", "cuda"]])
def test_a_required_backend_that_did_not_load_exits_1_saying_why(capsys, argv):
    assert main(["backends", *argv]) == 1
    err = capsys.readouterr().err
    assert f"required backend 'cuda' is not available: {fastmix.available_backends()['cuda']}" in err
    assert "what to do: " in err


def test_a_name_that_is_no_backend_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["backends", "--require", "gpu"])
    assert exit_info.value.code == 2
    assert "--require: expected backend names among cpp, cuda, numba, torch, got 'gpu'" in capsys.readouterr().err


def test_the_usage_names_the_option():
    assert "--require cuda" in USAGE


@pytest.mark.slow
def test_the_command_line_exit_status_and_reason_without_the_extension():
    """The command a user runs, in a process where fastmix._C is switched off."""
    env = dict(os.environ, FASTMIX_NO_EXT="1")
    result = subprocess.run([sys.executable, "-m", "fastmix", "backends", "--require", "cpp"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "required backend 'cpp' is not available: disabled by FASTMIX_NO_EXT" in result.stderr
    assert "fastmix._C: not loaded: disabled by FASTMIX_NO_EXT" in result.stdout
