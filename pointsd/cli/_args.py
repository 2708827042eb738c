"""What command modules share: the one-line-error parser, and the overwrite and backbone flags."""

from __future__ import annotations

import argparse
from typing import NoReturn

from pointsd.models.config import BackboneConfig
from pointsd.utils.arg_types import non_negative_float, positive_int


class Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (the usage itself is in ``--help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_overwrite_flag(p: argparse.ArgumentParser) -> None:
    """``--overwrite``: discard the run already in ``--out`` (which may have another configuration)."""
    p.add_argument("--overwrite", action="store_true",
                   help="discard the run in --out and start over (needed when its configuration differs)")


def add_backbone_flags(p: argparse.ArgumentParser, num_group: int | None, group_size: int | None) -> None:
    """Backbone size flags (SPEC §1 defaults); grouping defaults are the command's (None: the task's preset)."""
    p.add_argument("--trans-dim", type=positive_int, default=384)
    p.add_argument("--depth", type=positive_int, default=12)
    p.add_argument("--num-heads", type=positive_int, default=6)
    p.add_argument("--num-group", type=positive_int, default=num_group)
    p.add_argument("--group-size", type=positive_int, default=group_size)
    p.add_argument("--encoder-dims", type=positive_int, default=256)
    p.add_argument("--drop-path-rate", type=non_negative_float, default=0.1)
    p.add_argument("--patch-width", type=positive_int, default=128,
                   help="first width of the patch embedding's mini-PointNet (SPEC: 128 → 256, 512)")
    p.add_argument("--no-reduce-dim", action="store_true",
                   help="Point-MAE layout: no reduce_dim layer (needs --encoder-dims equal to --trans-dim, "
                        "384 for Point-MAE checkpoints)")


def backbone_from_args(args: argparse.Namespace, **grouping: int) -> BackboneConfig:
    """The backbone flags as a validated :class:`BackboneConfig`; ``grouping`` fills unset grouping flags."""
    config = BackboneConfig(
        trans_dim=args.trans_dim, depth=args.depth, num_heads=args.num_heads,
        num_group=args.num_group if args.num_group is not None else grouping["num_group"],
        group_size=args.group_size if args.group_size is not None else grouping["group_size"],
        encoder_dims=args.encoder_dims, drop_path_rate=args.drop_path_rate, reduce_dim=not args.no_reduce_dim,
        patch_width=args.patch_width,
    )
    config.validate()
    return config
