"""Command line: ``python -m fastmix COMMAND [options]`` (see ``python -m fastmix COMMAND --help``)."""
from __future__ import annotations

import sys
from typing import List, Optional

USAGE = """usage: python -m fastmix COMMAND [options]

commands:
  bench      time fastmix against naive tensor arithmetic and the floor on a synthetic batch
  preview    draw one mixed batch as a grid of tiles labelled with their soft labels (needs Pillow)
  backends   list the backends and why any is unavailable
"""


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
        from .backends import available_backends

        for name, reason in available_backends().items():
            print(f"{name:6s} {'available' if reason is None else 'unavailable: ' + reason}")
        return 0
    print(f"unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
