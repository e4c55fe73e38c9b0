"""Command line: ``python -m fastmix COMMAND [options]`` (see ``python -m fastmix COMMAND --help``)."""
from __future__ import annotations

import sys
from typing import List, Optional

USAGE = """usage: python -m fastmix COMMAND [options]

commands:
  bench      time fastmix against naive tensor arithmetic and the floor on a synthetic batch
  preview    draw one mixed batch as a grid of tiles labelled with their soft labels (needs Pillow)
  backends   list the backends and why any is unavailable (--require cuda: exit 1 unless it loaded)
"""


def backends_main(argv: List[str]) -> int:
    """``python -m fastmix backends [--require NAME[,NAME]]``: what this process can run.

    Prints the torch build and the GPU torch sees, what fastmix._C was built with, then each
    backend with why it is unavailable. Exit status 1 when a backend named by --require did not
    load (each one's reason on stderr), 2 for a name that is no backend."""
    import argparse

    from .backends import available_backends

    parser = argparse.ArgumentParser(prog="python -m fastmix backends", description=backends_main.__doc__.split("\n\n")[1])
    parser.add_argument("--require", action="append", default=[], metavar="NAME[,NAME]",
                        help="exit 1, saying why, unless each named backend loaded (e.g. --require cuda)")
    args = parser.parse_args(argv)
    status = available_backends()
    required = [name.strip() for value in args.require for name in value.split(",") if name.strip()]
    unknown = [name for name in required if name not in status]
    if unknown:
        parser.error(f"--require: expected backend names among {', '.join(status)}, got {', '.join(map(repr, unknown))}")
    for line in _build_lines():
        print(line)
    print("backends:")
    for name, reason in status.items():
        print(f"  {name:6s} {'available' if reason is None else 'unavailable: ' + reason}")
    missing = [name for name in required if status[name] is not None]
    for name in missing:
        print(f"required backend {name!r} is not available: {status[name]}", file=sys.stderr)
        hint = _cuda_hint() if name == "cuda" else None
        if hint:
            print(f"  what to do: {hint}", file=sys.stderr)
    return 1 if missing else 0


def _cuda_hint() -> Optional[str]:
    import torch

    from .backends.extension import has_cuda_kernels, load_extension

    if torch.version.cuda is None:
        return "this torch is a CPU build: install a CUDA build of torch, then rebuild fastmix (docs/cuda_notes.md)"
    if load_extension() is not None and not has_cuda_kernels():
        return ("rebuild with nvcc on PATH (or CUDA_HOME set) and FASTMIX_CUDA=1: "
                "FASTMIX_CUDA=1 pip install --no-build-isolation -v .")
    if load_extension() is not None and not torch.cuda.is_available():
        return "torch sees no GPU here: check nvidia-smi, the driver and CUDA_VISIBLE_DEVICES"
    return None


def _build_lines() -> List[str]:
    """torch's build and devices, and what fastmix._C holds: the facts behind the cuda backend's reason."""
    import torch

    from .backends.extension import extension_error, has_cuda_kernels, load_extension

    if torch.cuda.is_available():
        gpu = ", ".join(f"{torch.cuda.get_device_name(i)} (sm_{''.join(map(str, torch.cuda.get_device_capability(i)))})"
                        for i in range(torch.cuda.device_count()))
    else:
        gpu = "none visible"
    lines = [f"torch {torch.__version__} (CUDA {torch.version.cuda or 'none: a CPU build'}); GPU: {gpu}"]
    ext = load_extension()
    if ext is None:
        lines.append(f"fastmix._C: not loaded: {extension_error()}")
    else:
        kernels = "CPU and CUDA kernels" if has_cuda_kernels() else "CPU kernels only (built without CUDA)"
        lines.append(f"fastmix._C: {ext.__file__}, built for torch {getattr(ext, 'torch_version', '?')}, {kernels}")
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "bench":
        from .bench.cli import main as bench_main

        return bench_main(rest)
    if command == "preview":
        from .preview.cli import main as preview_main

        return preview_main(rest)
    if command == "backends":
        return backends_main(rest)
    print(f"unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
