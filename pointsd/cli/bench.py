"""``pointsd bench <name>``: benchmarks, one module per name in :mod:`pointsd.bench`.

Each module of ``pointsd/bench/`` exposes ``register(bench_subparsers)`` and is discovered here,
so adding a benchmark means adding a file there. A benchmark module (and torch with it) is imported
only when that benchmark runs: ``pointsd bench NAME --help`` shows its flags.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil

import pointsd.bench
from pointsd.cli._args import Parser


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench NAME [FLAGS]``; the flags are parsed by the benchmark's own parser."""
    parser = subparsers.add_parser("bench", help="measure speed (tables to stdout)",
                                   description=__doc__.splitlines()[0])
    names = sorted(m.name for m in pkgutil.iter_modules(pointsd.bench.__path__) if not m.name.startswith("_"))
    parser.add_argument("benchmark", choices=names, metavar="BENCH", help=f"one of: {', '.join(names)}")
    parser.add_argument("flags", nargs=argparse.REMAINDER, help="its flags (pointsd bench BENCH --help)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    """Import the chosen benchmark, parse its flags with its own parser, run it."""
    parser = Parser(prog="pointsd bench")
    sub = parser.add_subparsers(dest="bench_command", required=True, metavar="BENCH")
    importlib.import_module(f"pointsd.bench.{args.benchmark}").register(sub)
    inner = parser.parse_args([args.benchmark, *args.flags])
    return inner.func(inner)
