"""``pointsd render``: ULIP-layout RGBA views and depth maps of every pre-training shape, plus contact sheets."""

from __future__ import annotations

import argparse
from pathlib import Path

from pointsd.cli._defaults import add_params_flags, setting
from pointsd.errors import PointSDError
from pointsd.utils.arg_types import existing_path, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``render``."""
    parser = subparsers.add_parser("render", help="render point clouds into ULIP-style views")
    parser.add_argument("--points", type=existing_path, required=True,
                        help="data root, ShapeNet55-34 folder, or a folder of .npy clouds")
    parser.add_argument("--split-list", type=existing_path, default=None,
                        help="render only the shapes listed here (default: ShapeNet-55/{train,test}.txt)")
    parser.add_argument("--out", type=Path, required=True, help="render folder (e.g. DATA/rgb_depth_rendered_images)")
    setting(parser, "--views", type=positive_int, help="views per object (ULIP: 30)")
    setting(parser, "--size", type=positive_int, help="image side in pixels (64..512)")
    setting(parser, "--seed", type=int)
    add_params_flags(parser, "render", with_profile=True)
    parser.set_defaults(func=_render)


def _render(args: argparse.Namespace) -> int:
    from pointsd.data.render_dataset import render_dataset

    if not 8 <= args.size <= 1024:
        raise PointSDError(f"--size must be in 8..1024, got {args.size}")
    report = render_dataset(args.points, args.out, views=args.views, size=args.size, seed=args.seed,
                            split_list=args.split_list)
    print(f"rendered {report.shapes} shapes, {report.views} views in {report.seconds:.1f} s "
          f"({report.views_per_second:.1f} views/s) under {args.out}")
    return 0
