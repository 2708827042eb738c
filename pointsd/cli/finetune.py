"""``pointsd finetune`` (one classification run) and ``pointsd finetune-aggregate`` (mean ± std over seeds).

Every hyper-parameter is a flag; those the pipeline owns have no default of their own: a hand run takes
the ones it is not given from params.yaml (pointsd/cli/_defaults.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pointsd.cli._args import add_backbone_flags, add_overwrite_flag, add_run_flags, backbone_from_args
from pointsd.cli._defaults import add_params_flags, setting
from pointsd.errors import PointSDError
from pointsd.train.presets import AUGMENTS, CLASSIFICATION_TASKS, OPTIMIZERS, PROTOCOLS, SCRATCH_INITS
from pointsd.utils import json_io
from pointsd.utils.arg_types import existing_path, non_negative_float, positive_int

if TYPE_CHECKING:
    from pointsd.train.finetune import FinetuneConfig

def add_training_flags(p: argparse.ArgumentParser, with_votes: bool = True) -> None:
    """Flags shared by ``finetune`` and ``fewshot``: model, optimiser, schedule, protocol, run.

    Settings the pipeline owns come from params.yaml when not given (the SPEC's in `profiles.paper`;
    `python workflow/stage_table.py args finetune --key TASK [--profile paper]` prints them)."""
    setting(p, "--init", help="checkpoint path (any public layout) or 'scratch'")
    setting(p, "--scratch-init", choices=SCRATCH_INITS,
            help="with --init scratch: pytorch (PyTorch's default, where pre-training starts) or point_mae "
                 "(Point-MAE's truncated normal)")
    p.add_argument("--out", type=Path, required=True, help="run folder (metrics.json, metrics.jsonl, best.pt)")
    setting(p, "--protocol", choices=PROTOCOLS,
                   help="paper: best epoch on the test set; honest: best epoch on a validation split")
    p.add_argument("--val-fraction", type=non_negative_float, default=0.1)
    setting(p, "--epochs", type=positive_int)
    setting(p, "--batch-size", type=positive_int, help="per process")
    p.add_argument("--eval-batch-size", type=positive_int, default=64)
    setting(p, "--lr", type=non_negative_float)
    setting(p, "--optimizer", choices=OPTIMIZERS)
    setting(p, "--momentum", type=non_negative_float, help="SGD momentum")
    setting(p, "--weight-decay", type=non_negative_float)
    setting(p, "--warmup-epochs", type=int)
    setting(p, "--grad-clip", type=non_negative_float, help="0 disables clipping")
    p.add_argument("--grad-accum", type=positive_int, default=1,
                   help="batches per optimiser step (global batch = batch size × processes × this)")
    p.add_argument("--label-smoothing", type=non_negative_float, default=0.0)
    setting(p, "--npoints", type=positive_int)
    setting(p, "--oversample", type=non_negative_float, help="FPS to this × npoints, then subset")
    setting(p, "--augment", choices=AUGMENTS)
    if with_votes:
        setting(p, "--votes", type=int, help="test-time votes (0: none; SPEC ModelNet40: 10)")
    add_backbone_flags(p)
    p.add_argument("--max-steps-per-epoch", type=positive_int, help="cap steps per epoch (smoke tests)")
    add_run_flags(p)
    add_overwrite_flag(p)


def config_from_args(args: argparse.Namespace, task: str) -> FinetuneConfig:
    """Namespace → :class:`FinetuneConfig`."""
    from pointsd.train import finetune as ft

    return ft.FinetuneConfig(
        task=task, out_dir=args.out, init=args.init, scratch_init=args.scratch_init, protocol=args.protocol,
        val_fraction=args.val_fraction,
        seed=args.seed, device=args.device, speed=args.speed, mixed_precision=args.mixed_precision,
        batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size, optimizer=args.optimizer, momentum=args.momentum,
        weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs, grad_clip=args.grad_clip,
        grad_accum=args.grad_accum, label_smoothing=args.label_smoothing, oversample=args.oversample,
        num_workers=args.num_workers, max_steps_per_epoch=args.max_steps_per_epoch,
        profile=args.profile, data_profile=args.data_profile, progress=not args.no_progress,
        command=list(sys.argv), overwrite=args.overwrite, backbone=backbone_from_args(args),
        npoints=args.npoints, lr=args.lr, epochs=args.epochs, augment=args.augment,
        votes=getattr(args, "votes", 0),
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("finetune", help="fine-tune a classifier (ScanObjectNN, ModelNet40/10)",
                              description=__doc__.splitlines()[0])
    p.add_argument("--task", required=True, choices=CLASSIFICATION_TASKS)
    setting(p, "--data-root", type=existing_path, help="SPEC §5 data root (modelnet10: its h5 folder)")
    p.add_argument("--train-file", type=existing_path, help="modelnet10: train h5 (default DATA_ROOT/train.h5)")
    p.add_argument("--test-file", type=existing_path, help="modelnet10: test h5 (default DATA_ROOT/test.h5)")
    p.add_argument("--names-file", type=existing_path, help="modelnet10: class names, one per line")
    p.add_argument("--up-axis", choices=("y", "z"), default=None,
                   help="the data's up axis (modelnet10 default z; rotations act about it)")
    p.add_argument("--modelnet40-points", type=positive_int,
                   help="modelnet40 (required there): points per shape of the FPS cache (modelnet40_*_{N}pts_fps.dat)")
    add_training_flags(p)
    add_params_flags(p, "finetune", pick=_stage)
    p.set_defaults(func=_run)

    a = subparsers.add_parser("finetune-aggregate", help="mean ± std of finetune metrics over seeds")
    a.add_argument("--inputs", type=existing_path, nargs="+", required=True, help="metrics.json files")
    a.add_argument("--out", type=Path, required=True)
    a.set_defaults(func=_aggregate)


def _stage(args: argparse.Namespace) -> tuple[str, dict]:
    """The stage of the table a ``finetune`` run is (its defaults' source): the task's entry."""
    return ("finetune_modelnet10", {}) if args.task == "modelnet10" else ("finetune", {"key": args.task})


def _run(args: argparse.Namespace) -> int:
    from pointsd.train import finetune as ft

    cfg = config_from_args(args, args.task)
    up_axis = args.up_axis or ("z" if args.task == "modelnet10" else "y")
    data = ft.load_task_data(args.task, args.data_root, train_file=args.train_file, test_file=args.test_file,
                             names_file=args.names_file, up_axis=up_axis,
                             modelnet40_points=args.modelnet40_points)
    result = ft.run_finetune(cfg, data, extra={"up_axis": up_axis})
    if not result:  # not the main process: it printed and wrote nothing
        return 0
    test = result["test"]
    line = f"{args.task} [{cfg.protocol}] epoch {result['selected_epoch']}: test acc {test['overall_acc']:.2f}"
    if "voting_acc" in test:
        line += f", voting acc {test['voting_acc']:.2f}"
    print(line + f", last-epoch acc {result['last_epoch_acc']:.2f} → {cfg.out_dir / 'metrics.json'}")
    return 0


def _aggregate(args: argparse.Namespace) -> int:
    from pointsd.train.metrics import aggregate_seeds

    records = []
    for path in args.inputs:
        records.append(json_io.read_json(path, "metrics file"))
    groups = {(r.get("task"), r.get("protocol"), r.get("init")) for r in records}
    if len(groups) != 1:
        raise PointSDError(f"inputs mix tasks/protocols/inits: {sorted(map(str, groups))}")
    keys = ["test.overall_acc", "test.mean_class_acc", "last_epoch_acc"]
    if all("voting_acc" in r.get("test", {}) for r in records):
        keys.append("test.voting_acc")
    task, protocol, init = groups.pop()
    summary = {"task": task, "protocol": protocol, "init": init, "std": "population (ddof=0)",
               "seeds": [r.get("meta", {}).get("seed") for r in records],
               "inputs": [str(p) for p in args.inputs], "stats": aggregate_seeds(records, keys)}
    json_io.write_json(args.out, summary)
    print(json_io.dumps(summary["stats"]))
    return 0
