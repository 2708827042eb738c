"""`pointsd report table | not-run | curves`: the results table, a benchmark's "not run" record, and the
training curves of every run as PNG figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from pointsd.errors import PointSDError
from pointsd.utils import atomic, json_io
from pointsd.utils.arg_types import existing_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="results table, not-run records, training curves")
    topics = parser.add_subparsers(dest="report_command", required=True, metavar="TOPIC")
    table = topics.add_parser("table", help="one row per paper cell: ours, chance, scratch, paper, data, protocol")
    table.add_argument("--metrics", nargs="+", required=True, type=existing_path,
                       help="metrics.json of each run and the few-shot summary")
    table.add_argument("--scratch", nargs="*", default=[], type=existing_path,
                       help="metrics.json of from-scratch runs (the Scratch column of their tasks)")
    table.add_argument("--out", required=True, help="table.md to write; table.json goes beside it")
    table.set_defaults(func=run_table)

    not_run = topics.add_parser("not-run", help="record that a benchmark was not run, and why (its table row)")
    not_run.add_argument("--task", required=True, help="the task name its row reads, e.g. modelnet10")
    not_run.add_argument("--reason", required=True, help="what is missing, e.g. 'no data at /data/modelnet10'")
    not_run.add_argument("--hint", default="", help="how to make it run")
    not_run.add_argument("--data-profile", choices=("synthetic", "real"), default="real")
    not_run.add_argument("--out", type=Path, required=True, help="run folder; metrics.json is written inside")
    not_run.set_defaults(func=run_not_run)

    curves = topics.add_parser("curves", help="loss and accuracy curves of run folders as PNG figures")
    curves.add_argument("--runs", nargs="+", required=True, type=existing_path,
                        help="run folders holding metrics.jsonl")
    curves.add_argument("--out", type=Path, required=True, help="folder for one <run>.png per run")
    curves.set_defaults(func=run_curves)


def run_table(args: argparse.Namespace) -> int:
    from pointsd.results.table import build_rows, read_metrics, to_json, to_markdown

    if not args.out.endswith(".md"):
        raise PointSDError(f"--out must name a .md file, got {args.out}")
    rows = build_rows([read_metrics(path) for path in args.metrics], [read_metrics(path) for path in args.scratch])
    atomic.write_text(args.out, to_markdown(rows))
    sources = [str(p) for p in [*args.metrics, *args.scratch]]
    json_io.write_json(args.out[: -len(".md")] + ".json", to_json(rows, sources))
    print(to_markdown(rows))
    return 0


def run_not_run(args: argparse.Namespace) -> int:
    from pointsd.utils.run_info import run_metadata

    record = {"task": args.task, "status": "not run", "reason": args.reason, "hint": args.hint,
              "meta": run_metadata(profile="-", protocol="-", seed=0, data_profile=args.data_profile)}
    args.out.mkdir(parents=True, exist_ok=True)
    json_io.write_json(args.out / "metrics.json", record)
    print(f"{args.task}: not run ({args.reason}) → {args.out / 'metrics.json'}")
    return 0


def run_curves(args: argparse.Namespace) -> int:
    from pointsd.results.curves import plot_run

    for run in args.runs:
        out = plot_run(run, args.out)
        print(f"{run} → {out}")
    return 0
