"""Builds fastmix and its C++ operator library fastmix._C against the installed torch.

    pip install --no-build-isolation .      # the recommended way (also with -e)
    pip install .                           # works too: the installed torch is found and used

FASTMIX_NO_EXT=1 installs the pure-Python package without the extension.
FASTMIX_CUDA=0/1 forces the CUDA sources off/on (default: on when torch has CUDA and nvcc exists).
TORCH_CUDA_ARCH_LIST picks the GPU architectures of a CUDA build (default: the visible GPUs'; with
none visible, as on a build box or in a Docker build, DEFAULT_CUDA_ARCH_LIST, and a message says so).
MAX_JOBS=N compiles N sources at once (default: one per CPU core), with ninja or without it.
FASTMIX_DEBUG=1 keeps debug info (-g), which makes the build about 1.5x slower.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))

HOW_TO_INSTALL = """
fastmix could not find PyTorch while building its C++ extension.

fastmix compiles its extension against the torch you already have, so install torch first and
then build without an isolated environment, e.g.:

    pip install torch==2.13.0
    pip install --no-build-isolation .

(or set FASTMIX_NO_EXT=1 to install without the extension and use the slower fallback backends).
"""


def _find_installed_torch_path() -> str | None:
    """The site directory holding torch for this interpreter, outside pip's isolated build env.

    pip's build isolation hides the user's site-packages behind PYTHONPATH/PYTHONNOUSERSITE;
    a child interpreter without them sees the environment the package is being installed into.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONNOUSERSITE", "PYTHONHOME")}
    code = "import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))"
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout.strip() else None
    return path if path and os.path.isdir(os.path.join(path, "torch")) else None


def _import_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        site_dir = _find_installed_torch_path()
        if site_dir is None:
            sys.stderr.write(HOW_TO_INSTALL)
            raise SystemExit(1)
        sys.path.append(site_dir)  # after the build env's own setuptools
        import torch  # noqa: F401
    return sys.modules["torch"]


def _want_cuda(torch) -> bool:
    forced = os.environ.get("FASTMIX_CUDA")
    if forced is not None:
        return forced not in ("0", "", "false", "False")
    from torch.utils.cpp_extension import CUDA_HOME

    return torch.version.cuda is not None and CUDA_HOME is not None and shutil.which("nvcc") is not None


# A CUDA build where no GPU is visible: A100-class (sm_80, also run by sm_86/sm_89 cards) and
# H100-class machine code, plus compute_90 PTX that the driver compiles for newer GPUs at load.
DEFAULT_CUDA_ARCH_LIST = "8.0;9.0+PTX"


def _cuda_arch_list(torch) -> str | None:
    """Sets TORCH_CUDA_ARCH_LIST to DEFAULT_CUDA_ARCH_LIST when it is unset (or empty) and no GPU
    is visible, saying so; returns the value set (None: left to torch).

    torch.utils.cpp_extension._get_cuda_arch_flags, given no TORCH_CUDA_ARCH_LIST, takes the
    architectures of the visible GPUs; with none it indexes an empty list (IndexError, torch 2.4
    to 2.13 at least). "native" needs a visible GPU too: refused here with the fix."""
    wanted = os.environ.get("TORCH_CUDA_ARCH_LIST", "").strip()
    if wanted and wanted != "native":
        return None
    if torch.cuda.device_count() > 0:
        return None
    if wanted == "native":
        raise SystemExit("fastmix: TORCH_CUDA_ARCH_LIST=native needs a visible GPU and none is visible here: "
                         f"name the architectures instead, e.g. TORCH_CUDA_ARCH_LIST='{DEFAULT_CUDA_ARCH_LIST}'")
    os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_CUDA_ARCH_LIST
    sys.stderr.write(f"fastmix: no GPU is visible and TORCH_CUDA_ARCH_LIST is unset: building the CUDA kernels for "
                     f"TORCH_CUDA_ARCH_LIST='{DEFAULT_CUDA_ARCH_LIST}' (sm_80, sm_90, PTX for newer GPUs); "
                     f"set TORCH_CUDA_ARCH_LIST to choose others\n")
    return DEFAULT_CUDA_ARCH_LIST


def _openmp_flags(torch) -> list[str]:
    """-fopenmp where torch runs its intra-op threads on OpenMP (Linux builds).

    at::parallel_for is inline: compiled without OpenMP it runs its whole range on the calling
    thread, so every CPU kernel ignored torch.set_num_threads. Only the compile takes the flag: the
    library does not link an OpenMP runtime of its own, so its GOMP_* calls bind to the one torch
    loaded (libtorch_cpu's, global once torch is imported), whatever its file is called.
    Elsewhere (macOS, Windows, clang) the kernels stay single-threaded; fastmix._C.cpu_threads()
    says which, and tests/test_backends.py holds a Linux build to torch's thread count.
    """
    if not sys.platform.startswith("linux") or not torch.backends.openmp.is_available():
        return []
    import sysconfig

    compiler = os.environ.get("CXX") or sysconfig.get_config_var("CXX") or ""
    if "clang" in compiler:  # clang's -fopenmp needs libomp, a second runtime beside torch's libgomp
        return []
    return ["-fopenmp"]


def _extensions():
    if os.environ.get("FASTMIX_NO_EXT", "0") not in ("0", ""):
        return [], {}
    torch = _import_torch()
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    sources = sorted(glob.glob(os.path.join("csrc", "*.cpp")) + glob.glob(os.path.join("csrc", "cpu", "*.cpp")))
    # -g0 after Python's own -g: debug info of the template-heavy kernels is a third of the build.
    debug = os.environ.get("FASTMIX_DEBUG", "0") not in ("0", "")
    openmp = _openmp_flags(torch)
    cxx_flags = ["-O3", "-ffp-contract=off", "-fno-math-errno"] + openmp + ([] if debug else ["-g0"])
    macros = [("FASTMIX_TORCH_VERSION", '"%s"' % torch.__version__)]
    if _want_cuda(torch):
        _cuda_arch_list(torch)
        sources += sorted(glob.glob(os.path.join("csrc", "cuda", "*.cu")))
        ext = CUDAExtension(
            "fastmix._C",
            sources,
            define_macros=macros + [("FASTMIX_WITH_CUDA", "1")],
            extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "--fmad=false"]},
        )
    else:
        ext = CppExtension("fastmix._C", sources, define_macros=macros, extra_compile_args={"cxx": cxx_flags})
    return [ext], {"build_ext": _parallel_build_ext(BuildExtension)}


def _parallel_build_ext(base):
    """torch's BuildExtension, compiling the sources in parallel also where ninja is missing.

    With ninja, torch's build runs MAX_JOBS compilers at once; without it (pip's
    --no-build-isolation does not install the ninja of pyproject.toml), setuptools compiles one
    file after the other. Here each C++ source is handed to a thread instead. Builds with CUDA
    sources keep the serial path: torch swaps the compiler executable per file there."""
    from concurrent.futures import ThreadPoolExecutor

    class ParallelBuildExtension(base):
        def build_extensions(self):
            if not self.use_ninja and self.compiler.compiler_type == "unix":
                self._compile_in_parallel()
            super().build_extensions()

        def _compile_in_parallel(self):
            compiler = self.compiler
            serial_compile = compiler.compile
            jobs = int(os.environ.get("MAX_JOBS") or os.cpu_count() or 1)

            def compile(sources, output_dir=None, macros=None, include_dirs=None, debug=0, extra_preargs=None,
                        extra_postargs=None, depends=None):
                if jobs < 2 or any(src.endswith(".cu") for src in sources):
                    return serial_compile(sources, output_dir, macros, include_dirs, debug, extra_preargs,
                                          extra_postargs, depends)
                macros, objects, extra_postargs, pp_opts, build = compiler._setup_compile(
                    output_dir, macros, include_dirs, sources, depends, extra_postargs)
                cc_args = compiler._get_cc_args(pp_opts, debug, extra_preargs)
                todo = [(obj, *build[obj]) for obj in objects if obj in build]
                print(f"fastmix: compiling {len(todo)} sources, {jobs} at a time", flush=True)
                with ThreadPoolExecutor(max_workers=jobs) as pool:
                    for future in [pool.submit(compiler._compile, obj, src, ext, cc_args, extra_postargs, pp_opts)
                                   for obj, src, ext in todo]:
                        future.result()
                return objects

            compiler.compile = compile

    return ParallelBuildExtension


if __name__ == "__main__":  # pip's build backend and `python setup.py` run it so; tests import the helpers
    ext_modules, cmdclass = _extensions()

    setup(
        name="fastmix",
        version="0.2.0",
        description="In-place Mixup/CutMix for image batches and their labels: fused, any batch size, C++/CUDA kernels",
        long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read()
        if os.path.exists(os.path.join(HERE, "README.md"))
        else "",
        long_description_content_type="text/markdown",
        python_requires=">=3.10",
        packages=find_packages(include=["fastmix", "fastmix.*"]),
        ext_modules=ext_modules,
        cmdclass=cmdclass,
        # numba: the CPU fallback (the same kernels) is always there, and the bench shows its rows.
        install_requires=["torch>=2.4", "numpy", "numba>=0.59"],
        extras_require={
            "test": ["pytest>=7", "pytest-xdist>=3", "pytest-benchmark>=4", "hypothesis>=6", "scipy>=1.10", "numba>=0.59", "pillow", "matplotlib>=3.5"],
            "numba": [],  # numba is a default dependency now; the extra stays so old commands still work
            "plot": ["matplotlib>=3.5"],
            "preview": ["pillow"],  # python -m fastmix preview draws its grid with Pillow
        },
        entry_points={"console_scripts": ["fastmix=fastmix.__main__:main"]},
    )
