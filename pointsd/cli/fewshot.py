"""``pointsd fewshot`` (one fold) and ``pointsd fewshot-aggregate`` (folds → mean ± std per setting)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pointsd.cli._defaults import add_params_flags, setting
from pointsd.cli.finetune import add_training_flags, config_from_args
from pointsd.errors import PointSDError
from pointsd.utils import json_io
from pointsd.utils.arg_types import existing_path, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("fewshot", help="few-shot classification on one ModelNet40 fold",
                              description=__doc__.splitlines()[0])
    setting(p, "--data-root", type=existing_path, help="SPEC §5 data root")
    p.add_argument("--way", type=positive_int, required=True, help="5 or 10 in the paper")
    p.add_argument("--shot", type=positive_int, required=True, help="10 or 20 in the paper")
    p.add_argument("--fold", type=int, required=True, help="0..9")
    add_training_flags(p, with_votes=False)
    add_params_flags(p, "fewshot",
                     pick=lambda a: ("fewshot", {"item": {"way": a.way, "shot": a.shot, "fold": a.fold}}))
    p.set_defaults(func=_run)

    a = subparsers.add_parser("fewshot-aggregate", help="mean ± std (population, ddof=0) over folds")
    src = a.add_mutually_exclusive_group(required=True)
    src.add_argument("--inputs", type=existing_path, nargs="+", help="fold metrics.json files")
    src.add_argument("--root", type=Path,
                     help="folder of fold runs ROOT/{way}w{shot}s/fold{fold}/metrics.json (with --ways --shots --folds)")
    a.add_argument("--ways", type=positive_int, nargs="+", help="with --root (params fewshot.grid)")
    a.add_argument("--shots", type=positive_int, nargs="+", help="with --root")
    a.add_argument("--folds", type=int, nargs="+", help="with --root")
    a.add_argument("--out", type=Path, required=True)
    a.set_defaults(func=_aggregate)


def _run(args: argparse.Namespace) -> int:
    from pointsd.train.fewshot import run_fewshot

    cfg = config_from_args(args, "fewshot")
    result = run_fewshot(cfg, args.data_root, args.way, args.shot, args.fold)
    print(f"{args.way}way{args.shot}shot fold {args.fold} [{cfg.protocol}]: "
          f"test acc {result['test']['overall_acc']:.2f} → {cfg.out_dir / 'metrics.json'}")
    return 0


def _aggregate(args: argparse.Namespace) -> int:
    from pointsd.train.metrics import aggregate_folds

    if args.root is not None and None in (args.ways, args.shots, args.folds):
        raise PointSDError("fewshot-aggregate --root needs --ways, --shots and --folds (params fewshot.grid)")
    inputs = args.inputs or [args.root / f"{w}w{s}s" / f"fold{f}" / "metrics.json"
                             for w in args.ways for s in args.shots for f in args.folds]
    records = []
    for path in inputs:
        records.append(json_io.read_json(path, "fold metrics file"))
    settings = aggregate_folds(records)
    protocols = sorted({str(r.get("protocol")) for r in records})
    inits = sorted({str(r.get("init")) for r in records})
    summary = {"task": "fewshot", "protocols": protocols, "std": "population (ddof=0)", "settings": settings,
               "inputs": [str(p) for p in inputs], "meta": records[0].get("meta", {})}
    if len(protocols) == 1:
        summary["protocol"] = protocols[0]
    if len(inits) == 1:
        summary["init"] = inits[0]
    json_io.write_json(args.out, summary)
    for name, s in settings.items():
        print(f"{name}: {s['mean']:.1f} ± {s['std']:.1f} ({s['n_folds']} folds)")
    return 0
