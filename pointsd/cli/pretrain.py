"""``pointsd pretrain --stage 1|2``: PointSD pre-training (SPEC §2–§3), every hyper-parameter a flag.

Settings the pipeline owns (params.yaml `pretrain`, `backbone`, `sd.image_size`; the SPEC's in
`profiles.paper`) have no default of their own: a hand run takes those it is not given from params.yaml. A killed or stopped (SIGTERM, SIGUSR1: exit 75) run restarted
with the same command resumes from ``.OUT.partial-KEY/state/last.pt`` beside ``OUT`` (:mod:`pointsd.utils.staging`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pointsd.cli._args import add_backbone_flags, add_overwrite_flag, add_run_flags, backbone_from_args
from pointsd.cli._defaults import add_params_flags, setting
from pointsd.errors import PointSDError
from pointsd.train.presets import MIX_RESIZES, POINT_SUBSETS, PROTOCOLS, STAGE2_GROUPINGS
from pointsd.utils.arg_types import non_negative_float, non_negative_int, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("pretrain", help="PointSD pre-training, stage 1 or 2")
    p.add_argument("--stage", type=int, choices=(1, 2), required=True)
    setting(p, "--data-root", type=Path, help="SPEC §5 data root")
    p.add_argument("--renders", type=Path, default=None,
                   help="ULIP renders folder (default DATA_ROOT/rgb_depth_rendered_images)")
    setting(p, "--sd", type=Path, help="Stable Diffusion diffusers folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stage1", type=Path, default=None, help="stage-1 output folder (stage 2 teacher)")
    setting(p, "--epochs", type=positive_int)
    setting(p, "--batch-size", type=positive_int, help="per process")
    setting(p, "--lr", type=non_negative_float)
    setting(p, "--weight-decay", type=non_negative_float)
    setting(p, "--warmup-epochs", type=non_negative_int)
    setting(p, "--grad-clip", type=non_negative_float)
    p.add_argument("--grad-accum", type=positive_int, default=1,
                   help="batches per optimiser step (global batch = batch size × processes × this)")
    setting(p, "--npoints", type=positive_int)
    setting(p, "--image-size", type=positive_int, help="SPEC: 64")
    p.add_argument("--view", type=non_negative_int, default=0)
    setting(p, "--t-min", type=non_negative_int)
    setting(p, "--t-max", type=positive_int)
    setting(p, "--mix-prob", type=non_negative_float)
    setting(p, "--mix-resize", choices=MIX_RESIZES, help="patch mix: resize of the joined image (official: nearest)")
    setting(p, "--point-subset", choices=POINT_SUBSETS,
            help="first: the first NPOINTS stored points, shuffled (official); whole: a random NPOINTS of all")
    p.add_argument("--stage2-grouping", choices=STAGE2_GROUPINGS, default=None,
                   help="stage 2 (required there): per_encoder = teacher and student group and mix the cloud "
                        "each (official); shared = one grouping and mix for both")
    add_backbone_flags(p)
    setting(p, "--resampler-dim", type=positive_int)
    setting(p, "--resampler-depth", type=positive_int)
    setting(p, "--resampler-dim-head", type=positive_int)
    setting(p, "--resampler-heads", type=positive_int)
    setting(p, "--resampler-ff-mult", type=positive_int)
    p.add_argument("--teacher", choices=("down", "full"), default="down",
                   help="stage-2 target: down path only (fast) or hooked full UNet forward (reference)")
    setting(p, "--probe-every", type=non_negative_int,
                   help="linear probe every N steps (0: at the end of every epoch)")
    p.add_argument("--no-probe", action="store_true", help="skip the linear probe")
    p.add_argument("--probe-policy", choices=PROTOCOLS, default="paper")
    setting(p, "--probe-points", type=positive_int)
    setting(p, "--max-steps-per-epoch", type=non_negative_int, help="0: no cap")
    p.add_argument("--log-every", type=positive_int, default=10)
    add_run_flags(p)
    add_overwrite_flag(p)
    add_params_flags(p, "pretrain_stage1", pick=lambda a: (f"pretrain_stage{a.stage}", {}))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pointsd.diffusion.resampler import ResamplerConfig
    from pointsd.train.pretrain import NoiseConfig, PretrainConfig, run_pretrain
    from pointsd.train.probe import ProbeConfig

    if args.stage == 2 and args.stage2_grouping is None:
        raise PointSDError("stage 2 needs --stage2-grouping (params.yaml pretrain.stage2_grouping)")
    cfg = PretrainConfig(
        stage=args.stage, sd_dir=args.sd, out_dir=args.out, data_root=args.data_root, render_root=args.renders,
        stage1_dir=args.stage1, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs, grad_clip=args.grad_clip,
        grad_accum=args.grad_accum, npoints=args.npoints, image_size=args.image_size, view=args.view,
        noise=NoiseConfig(t_min=args.t_min, t_max=args.t_max, mix_prob=args.mix_prob, mix_resize=args.mix_resize),
        point_subset=args.point_subset, stage2_grouping=args.stage2_grouping or "per_encoder",
        backbone=backbone_from_args(args),
        resampler=ResamplerConfig(dim=args.resampler_dim, depth=args.resampler_depth,
                                  dim_head=args.resampler_dim_head, heads=args.resampler_heads,
                                  ff_mult=args.resampler_ff_mult),
        probe=ProbeConfig(policy=args.probe_policy, num_points=args.probe_points, seed=args.seed),
        probe_every=None if args.no_probe else args.probe_every, teacher_mode=args.teacher,
        device=args.device, speed=args.speed, mixed_precision=args.mixed_precision, seed=args.seed,
        num_workers=args.num_workers,
        profile=args.profile, data_profile=args.data_profile,
        max_steps_per_epoch=args.max_steps_per_epoch or None, log_every=args.log_every,
        progress=not args.no_progress, overwrite=args.overwrite,
    )
    summary = run_pretrain(cfg)
    if summary:
        print(f"stage {args.stage}: {summary['steps']} steps, final loss {summary['final_loss']}, "
              f"best probe acc {summary['best_probe_acc']} ({summary['protocol']}) -> {args.out}")
    return 0
