"""What command modules share: the one-line-error parser, and the overwrite and backbone flags."""

from __future__ import annotations

import argparse
from typing import NoReturn

from pointsd.cli._defaults import params_keys, setting
from pointsd.models.config import BackboneConfig
from pointsd.train.presets import PRECISIONS, SPEEDS
from pointsd.utils.arg_types import non_negative_float, non_negative_int, positive_int


class Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (the usage itself is in ``--help``), and a ``--help`` that
    names the params.yaml key of every setting a hand run may leave out."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def format_help(self) -> str:
        stage = self._defaults.get("help_stage")
        if stage:
            keys = params_keys(stage)
            for action in self._actions:
                key = next((keys[o] for o in action.option_strings if o in keys), None)
                if key and action.help and not action.help.endswith("]"):
                    action.help += f" [{key}]"
        return super().format_help()


def add_overwrite_flag(p: argparse.ArgumentParser) -> None:
    """``--overwrite``: discard the run already in ``--out`` (which may have another configuration). The
    command's ``--out`` is a run folder, locked while it runs (``run_folder``: :mod:`pointsd.utils.run_lock`)."""
    p.add_argument("--overwrite", action="store_true",
                   help="discard the run in --out and start over (needed when its configuration or data differs)")
    p.set_defaults(run_folder=True)


def add_backbone_flags(p: argparse.ArgumentParser) -> None:
    """Backbone size flags: their values are the pipeline's (params.yaml `backbone` and the task's
    grouping); a hand run takes those it is not given from params.yaml."""
    setting(p, "--trans-dim", type=positive_int, help="SPEC: 384")
    setting(p, "--depth", type=positive_int, help="SPEC: 12")
    setting(p, "--num-heads", type=positive_int, help="SPEC: 6")
    setting(p, "--num-group", type=positive_int, help="patches per cloud")
    setting(p, "--group-size", type=positive_int, help="points per patch")
    setting(p, "--encoder-dims", type=positive_int, help="SPEC: 256")
    setting(p, "--drop-path-rate", type=non_negative_float, help="SPEC: 0.1")
    setting(p, "--patch-width", type=positive_int,
            help="first width of the patch embedding's mini-PointNet (SPEC: 128 → 256, 512)")
    p.add_argument("--no-reduce-dim", action="store_true",
                   help="Point-MAE layout: no reduce_dim layer (needs --encoder-dims equal to --trans-dim, "
                        "384 for Point-MAE checkpoints)")


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """How a training run executes, and the provenance every metrics file records (the pipeline's
    `device`, `speed`, `seed`, `profile`, `data_profile`)."""
    setting(p, "--device", choices=("auto", "cpu", "cuda"))
    setting(p, "--speed", choices=SPEEDS,
                   help="fast: bf16, compiled, fused on CUDA (the CPU keeps fp32); exact: the paper's fp32 "
                        "arithmetic (see pointsd/train/speed.py)")
    p.add_argument("--mixed-precision", choices=PRECISIONS, default="auto",
                   help="override the speed mode's autocast (auto: bf16 for fast on CUDA, else no)")
    p.add_argument("--num-workers", type=non_negative_int, default=None,
                   help="data-loader processes (default: the speed mode's; 0 on the CPU)")
    setting(p, "--seed", type=int)
    setting(p, "--profile", help="params profile: recorded in the metrics, and where a hand run's values come from")
    setting(p, "--data-profile", choices=("synthetic", "real"), help="recorded in the metrics and the table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def backbone_from_args(args: argparse.Namespace) -> BackboneConfig:
    """The backbone flags as a validated :class:`BackboneConfig`."""
    config = BackboneConfig(
        trans_dim=args.trans_dim, depth=args.depth, num_heads=args.num_heads, num_group=args.num_group,
        group_size=args.group_size, encoder_dims=args.encoder_dims, drop_path_rate=args.drop_path_rate,
        reduce_dim=not args.no_reduce_dim, patch_width=args.patch_width,
    )
    config.validate()
    return config
