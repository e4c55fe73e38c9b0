"""setup.py on a machine that sees no GPU (the usual build box, a Docker build): a CUDA build gets
DEFAULT_CUDA_ARCH_LIST instead of torch's IndexError on an empty architecture list, says so, and
leaves an explicit TORCH_CUDA_ARCH_LIST (or a machine with a GPU) to torch. The CUDA sources
compile with exactly the flags torch makes of that default (nvcc, no GPU needed; slow)."""
from __future__ import annotations

import concurrent.futures
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from torch.utils import cpp_extension

ROOT = Path(__file__).resolve().parent.parent


def load_setup():
    """setup.py's helpers (setup() itself runs only as __main__)."""
    spec = importlib.util.spec_from_file_location("fastmix_setup", ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def test_without_a_gpu_or_an_arch_list_the_build_gets_the_default(no_gpu, capsys):
    setup = load_setup()
    assert setup._cuda_arch_list(torch) == setup.DEFAULT_CUDA_ARCH_LIST == "8.0;9.0+PTX"
    assert os.environ["TORCH_CUDA_ARCH_LIST"] == "8.0;9.0+PTX"
    assert "no GPU is visible and TORCH_CUDA_ARCH_LIST is unset" in capsys.readouterr().err
    assert sorted(cpp_extension._get_cuda_arch_flags()) == [
        "-gencode=arch=compute_80,code=sm_80", "-gencode=arch=compute_90,code=compute_90",
        "-gencode=arch=compute_90,code=sm_90"]


def test_torch_alone_fails_there(no_gpu):
    """What the default avoids (torch 2.4 to 2.13 at least); a later torch may pick its own."""
    try:
        flags = cpp_extension._get_cuda_arch_flags()
    except IndexError:
        return
    assert flags


@pytest.mark.parametrize("value", ["8.6", "7.5;8.0+PTX", "Hopper"])
def test_an_explicit_arch_list_is_left_alone(no_gpu, monkeypatch, capsys, value):
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", value)
    assert load_setup()._cuda_arch_list(torch) is None
    assert os.environ["TORCH_CUDA_ARCH_LIST"] == value and capsys.readouterr().err == ""


def test_a_visible_gpu_is_left_to_torch(monkeypatch):
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert load_setup()._cuda_arch_list(torch) is None
    assert "TORCH_CUDA_ARCH_LIST" not in os.environ


def test_native_without_a_gpu_is_refused_with_the_fix(no_gpu, monkeypatch):
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "native")
    with pytest.raises(SystemExit, match="TORCH_CUDA_ARCH_LIST=native needs a visible GPU .* TORCH_CUDA_ARCH_LIST='8.0;9.0[+]PTX'"):
        load_setup()._cuda_arch_list(torch)


# -- the CUDA sources compile for the default architectures ------------------------------------------

NVCC = shutil.which("nvcc") or (os.path.join(cpp_extension.CUDA_HOME, "bin", "nvcc") if cpp_extension.CUDA_HOME else None)
# A CPU torch wheel lacks this generated header of a CUDA build; its one macro matters on Windows only.
CMAKE_MACROS_SHIM = "#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n"


@pytest.mark.slow
@pytest.mark.skipif(NVCC is None or not os.path.exists(NVCC), reason="nvcc not found")
def test_the_cuda_sources_compile_for_the_default_arch_list(no_gpu, tmp_path):
    """Each csrc/cuda/*.cu with setup.py's nvcc flags and the default's sm_80 machine code: the one
    -gencode of the default that no other test compiles (tests/test_cuda_compile.py builds sm_90
    machine code and compute_90 PTX, the default's other two; compiling them here again doubled
    the slowest test of the suite)."""
    load_setup()._cuda_arch_list(torch)
    arch_flags = [f for f in cpp_extension._get_cuda_arch_flags() if f.endswith("code=sm_80")]
    assert arch_flags == ["-gencode=arch=compute_80,code=sm_80"]
    shim = tmp_path / "include" / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h"
    shim.parent.mkdir(parents=True)
    shim.write_text(CMAKE_MACROS_SHIM)
    includes = [f"-I{tmp_path / 'include'}"] + [f"-I{p}" for p in cpp_extension.include_paths()]
    abi = int(getattr(torch._C, "_GLIBCXX_USE_CXX11_ABI", True))
    flags = list(getattr(cpp_extension, "COMMON_NVCC_FLAGS", [])) + [
        "-std=c++20", "-DTORCH_API_INCLUDE_EXTENSION_H", "-DTORCH_EXTENSION_NAME=_C", f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
        '-DFASTMIX_TORCH_VERSION="%s"' % torch.__version__, "-DFASTMIX_WITH_CUDA=1", "-O3", "--fmad=false",
        "-Xcompiler", "-fPIC", *arch_flags]
    sources = sorted((ROOT / "csrc" / "cuda").glob("*.cu"))
    assert sources

    def compile_one(source: Path) -> subprocess.CompletedProcess:
        command = [NVCC, *includes, *flags, "-c", str(source), "-o", str(tmp_path / f"{source.name}.o")]
        return subprocess.run(command, capture_output=True, text=True, timeout=900)

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for source, result in zip(sources, pool.map(compile_one, sources)):
            assert result.returncode == 0, f"nvcc {' '.join(arch_flags)} failed on {source.name}:\n{result.stderr[-20000:]}"
            assert (tmp_path / f"{source.name}.o").stat().st_size > 0
