"""``pointsd bench <name>``: benchmarks, one module per name in :mod:`pointsd.bench`.

Each module of ``pointsd/bench/`` exposes ``register(bench_subparsers)`` and is discovered here,
so adding a benchmark means adding a file there.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil

import pointsd.bench


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench`` and every benchmark module's sub-command."""
    parser = subparsers.add_parser("bench", help="measure speed (tables to stdout)")
    bench_sub = parser.add_subparsers(dest="bench_command", required=True, metavar="BENCH")
    for info in sorted(pkgutil.iter_modules(pointsd.bench.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"pointsd.bench.{info.name}").register(bench_sub)
