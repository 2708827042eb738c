"""``pointsd generate``: sample images from point clouds with the stage-1 model; writes ``OUT/grid.png``.

The grid's first row holds the paired renders (when ``--renders`` has them), the second the samples.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pointsd.cli._defaults import add_params_flags, setting
from pointsd.utils.arg_types import non_negative_float, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("generate", help="point cloud → image with the stage-1 model")
    setting(p, "--stage1", type=Path, help="stage-1 output folder")
    setting(p, "--sd", type=Path, help="Stable Diffusion diffusers folder")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--points", type=Path, nargs="+", help=".npy clouds (N,3) or (B,N,3)")
    src.add_argument("--dataset", choices=("shapenet55",), help="take clouds from a dataset under --data-root")
    p.add_argument("--data-root", type=Path, default=None)
    p.add_argument("--split", default="test")
    p.add_argument("--num", type=positive_int, default=4, help="clouds taken from --dataset")
    p.add_argument("--renders", type=Path, default=None, help="ULIP renders folder (paired images for the grid)")
    p.add_argument("--view", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--backbone-config", type=Path, default=None,
                   help="backbone_config.json for a stage-1 folder without one (an official folder of other sizes; "
                        "default: the folder's own, else the SPEC §1 sizes)")
    setting(p, "--npoints", type=positive_int)
    setting(p, "--image-size", type=positive_int)
    setting(p, "--steps", type=positive_int, help="sampling steps")
    setting(p, "--guidance-scale", type=non_negative_float)
    setting(p, "--scheduler", choices=("ddim", "dpm"))
    setting(p, "--device", choices=("auto", "cpu", "cuda"))
    setting(p, "--seed", type=int)
    add_params_flags(p, "generate", with_profile=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from pointsd import ops
    from pointsd.data.normalize import pc_normalize
    from pointsd.diffusion.generate import (
        generate_images,
        image_grid,
        load_point_pipeline,
        load_render,
        read_points_file,
    )
    from pointsd.diffusion.stage_models import read_backbone_config, read_backbone_config_file
    from pointsd.errors import PointSDError
    from pointsd.models.config import BackboneConfig
    from pointsd.utils import atomic

    clouds, ids = _clouds(args, read_points_file)
    if any(len(c) < args.npoints for c in clouds):
        raise PointSDError(f"a cloud has fewer than --npoints {args.npoints} points")
    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    sizes = read_backbone_config_file(args.backbone_config) if args.backbone_config else BackboneConfig()
    pipe, stage1 = load_point_pipeline(args.sd, args.stage1, read_backbone_config(args.stage1, sizes), args.scheduler)
    pipe.to(device)
    points = torch.from_numpy(np.stack([pc_normalize(c) for c in clouds])).to(device)
    points = ops.gather(points, ops.furthest_point_sample(points.contiguous(), args.npoints))
    images = generate_images(pipe, stage1, points, image_size=args.image_size, steps=args.steps,
                             guidance_scale=args.guidance_scale, seed=args.seed)
    renders = [load_render(args.renders, i, args.view) for i in ids]
    rows = ([renders] if any(r is not None for r in renders) else []) + [images]
    with atomic.atomic_path(args.out / "grid.png") as tmp:
        image_grid(rows, args.image_size).save(tmp)
    print(f"{len(images)} images from {len(ids)} clouds -> {args.out / 'grid.png'}")
    return 0


def _clouds(args: argparse.Namespace, read_points_file) -> tuple[list, list[str]]:
    from pointsd.errors import PointSDError

    if args.points:
        clouds, ids = [], []
        for path in args.points:
            batch = read_points_file(path)
            clouds += list(batch)
            ids += [path.stem if len(batch) == 1 else f"{path.stem}_{i}" for i in range(len(batch))]
        return clouds, ids
    if args.data_root is None:
        raise PointSDError("--dataset needs --data-root")
    from pointsd.data.shapenet55 import ShapeNet55, load_cloud

    data = ShapeNet55(args.data_root, args.split, args.npoints)
    ids = data.ids[: args.num]
    return [load_cloud(data.folder / f"{i}.npy") for i in ids], ids
