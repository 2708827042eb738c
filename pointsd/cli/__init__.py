"""The ``pointsd`` command line: the only interface the Snakemake and DVC DAGs use.

Each module in this package owns one topic and exposes ``register(subparsers)``, which adds its
sub-commands with ``set_defaults(func=handler)``. A handler receives the parsed namespace,
validates it, calls the library and returns an exit code. Modules are discovered, so adding a
command means adding a file here, nothing else.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

from pointsd.errors import PointSDError
from pointsd.utils.run_info import git_commit


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every command module's sub-commands registered."""
    parser = argparse.ArgumentParser(prog="pointsd", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, dispatch, and turn a :class:`PointSDError` into one line and exit code 2."""
    args = build_parser().parse_args(argv)
    git_commit()
    try:
        code = args.func(args)
    except PointSDError as err:
        print(f"pointsd {args.command}: error: {err}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
