"""`pointsd report table`: metrics JSONs → results/table.md and table.json beside it."""

from __future__ import annotations

import argparse

from pointsd.cli._args import existing_path
from pointsd.errors import PointSDError
from pointsd.utils import atomic


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="results table from metrics files")
    topics = parser.add_subparsers(dest="report_command", required=True, metavar="TOPIC")
    table = topics.add_parser("table", help="one row per paper cell: ours, paper, data, protocol, seeds")
    table.add_argument("--metrics", nargs="+", required=True, type=existing_path,
                       help="metrics.json of each run and the few-shot summary")
    table.add_argument("--out", required=True, help="table.md to write; table.json goes beside it")
    table.set_defaults(func=run_table)


def run_table(args: argparse.Namespace) -> int:
    from pointsd.results.table import build_rows, read_metrics, to_json, to_markdown

    if not args.out.endswith(".md"):
        raise PointSDError(f"--out must name a .md file, got {args.out}")
    records = [read_metrics(path) for path in args.metrics]
    rows = build_rows(records)
    atomic.write_text(args.out, to_markdown(rows))
    atomic.write_json(args.out[: -len(".md")] + ".json", to_json(rows, [str(p) for p in args.metrics]))
    print(to_markdown(rows))
    return 0
