"""``pointsd fewshot`` (one fold) and ``pointsd fewshot-aggregate`` (folds → mean ± std per setting)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pointsd.cli._args import existing_path, positive_int
from pointsd.cli.finetune import add_training_flags, config_from_args
from pointsd.errors import PointSDError
from pointsd.train.fewshot import run_fewshot
from pointsd.train.metrics import aggregate_folds
from pointsd.utils import atomic


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("fewshot", help="few-shot classification on one ModelNet40 fold",
                              description=__doc__.splitlines()[0])
    p.add_argument("--data-root", type=existing_path, required=True, help="SPEC §5 data root")
    p.add_argument("--way", type=positive_int, required=True, help="5 or 10 in the paper")
    p.add_argument("--shot", type=positive_int, required=True, help="10 or 20 in the paper")
    p.add_argument("--fold", type=int, required=True, help="0..9")
    add_training_flags(p)
    p.set_defaults(func=_run)

    a = subparsers.add_parser("fewshot-aggregate", help="mean ± std (population, ddof=0) over folds")
    a.add_argument("--inputs", type=existing_path, nargs="+", required=True, help="fold metrics.json files")
    a.add_argument("--out", type=Path, required=True)
    a.set_defaults(func=_aggregate)


def _run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args, "fewshot")
    result = run_fewshot(cfg, args.data_root, args.way, args.shot, args.fold)
    print(f"{args.way}way{args.shot}shot fold {args.fold} [{cfg.protocol}]: "
          f"test acc {result['test']['overall_acc']:.2f} → {cfg.out_dir / 'metrics.json'}")
    return 0


def _aggregate(args: argparse.Namespace) -> int:
    records = []
    for path in args.inputs:
        try:
            records.append(json.loads(Path(path).read_text()))
        except json.JSONDecodeError as err:
            raise PointSDError(f"{path}: not a JSON metrics file ({err})") from err
    settings = aggregate_folds(records)
    protocols = sorted({str(r.get("protocol")) for r in records})
    atomic.write_json(args.out, {"task": "fewshot", "protocols": protocols, "std": "population (ddof=0)",
                                 "settings": settings, "inputs": [str(p) for p in args.inputs]})
    for name, s in settings.items():
        print(f"{name}: {s['mean']:.1f} ± {s['std']:.1f} ({s['n_folds']} folds)")
    return 0
