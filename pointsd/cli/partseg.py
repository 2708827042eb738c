"""``pointsd partseg``: ShapeNetPart part segmentation (class and instance mIoU).

Settings the pipeline owns are required flags (params.yaml `partseg`, `finetune_common`, `backbone`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pointsd.cli._args import add_backbone_flags, add_overwrite_flag, add_run_flags, backbone_from_args
from pointsd.cli._defaults import add_params_flags, setting
from pointsd.train.presets import PROTOCOLS
from pointsd.utils.arg_types import existing_path, non_negative_float, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("partseg", help="ShapeNetPart part segmentation", description=__doc__.splitlines()[0])
    setting(p, "--data-root", type=existing_path, help="SPEC §5 data root")
    setting(p, "--init", help="checkpoint path (any public layout) or 'scratch'")
    p.add_argument("--out", type=Path, required=True)
    setting(p, "--protocol", choices=PROTOCOLS,
                   help="paper: train+val, best test epoch; honest: train, best val epoch")
    setting(p, "--epochs", type=positive_int)
    setting(p, "--batch-size", type=positive_int)
    p.add_argument("--eval-batch-size", type=positive_int, default=16)
    setting(p, "--lr", type=non_negative_float, help="AdamW (SPEC: 2e-4)")
    setting(p, "--weight-decay", type=non_negative_float)
    setting(p, "--warmup-epochs", type=int)
    setting(p, "--grad-clip", type=non_negative_float, help="0 disables clipping")
    setting(p, "--npoints", type=positive_int)
    setting(p, "--augment", choices=("scale_translate", "none"),
                   help="train-time augmentation (SPEC: scale_translate)")
    add_backbone_flags(p)
    p.add_argument("--max-steps-per-epoch", type=positive_int)
    add_run_flags(p)
    add_overwrite_flag(p)
    add_params_flags(p, "partseg")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pointsd.train.partseg import PartSegConfig, run_partseg

    cfg = PartSegConfig(
        out_dir=args.out, init=args.init, protocol=args.protocol, seed=args.seed, device=args.device,
        speed=args.speed, mixed_precision=args.mixed_precision, epochs=args.epochs, batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size, lr=args.lr, weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs, grad_clip=args.grad_clip, npoints=args.npoints,
        augment=args.augment,
        num_workers=args.num_workers, max_steps_per_epoch=args.max_steps_per_epoch, profile=args.profile,
        data_profile=args.data_profile, progress=not args.no_progress, command=list(sys.argv),
        backbone=backbone_from_args(args), overwrite=args.overwrite,
    )
    result = run_partseg(cfg, args.data_root)
    if not result:  # not the main process: it printed and wrote nothing
        return 0
    t = result["test"]
    print(f"partseg [{cfg.protocol}] epoch {result['selected_epoch']}: class mIoU {t['class_miou']:.2f}, "
          f"instance mIoU {t['instance_miou']:.2f} → {cfg.out_dir / 'metrics.json'}")
    return 0
