"""``pointsd bench render``: renderer throughput (views/s on CPU) per image size, normals included."""

from __future__ import annotations

import argparse
import time

import numpy as np

from pointsd.data.normalize import pc_normalize
from pointsd.data.render import RenderSettings, azimuths, estimate_normals, render_view
from pointsd.data.synth.shapes import family_recipes, instance
from pointsd.utils import json_io
from pointsd.utils.arg_types import positive_int
from pointsd.utils.run_info import run_metadata


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench render``."""
    parser = bench_subparsers.add_parser("render", help="point-splatting renderer throughput")
    parser.add_argument("--points", type=positive_int, default=8192, help="points per cloud")
    parser.add_argument("--shapes", type=positive_int, default=4)
    parser.add_argument("--views", type=positive_int, default=30)
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=[64, 224, 512])
    parser.add_argument("--device", choices=["cpu"], default="cpu", help="the renderer runs on CPU")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=_bench)


def measure(n_points: int, n_shapes: int, views: int, size: int, seed: int = 0) -> dict[str, float]:
    """Render ``n_shapes`` synthetic clouds × ``views`` at ``size`` px; seconds split into normals and splatting."""
    rng = np.random.default_rng(seed)
    recipes = family_recipes(rng, n_shapes)
    clouds = [pc_normalize(instance(r, n_points, rng)[0]) for r in recipes]
    t0 = time.perf_counter()
    normals = [estimate_normals(c) for c in clouds]
    t1 = time.perf_counter()
    for cloud, nrm in zip(clouds, normals):
        for azimuth in azimuths(views):
            render_view(cloud, nrm, azimuth, RenderSettings(size=size))
    t2 = time.perf_counter()
    total = n_shapes * views
    return {"size": size, "points": n_points, "views": total, "normals_s": t1 - t0, "splat_s": t2 - t1,
            "views_per_s": total / (t2 - t0), "splat_views_per_s": total / (t2 - t1)}


def _bench(args: argparse.Namespace) -> int:
    rows = [measure(args.points, args.shapes, args.views, s) for s in args.sizes]
    if args.json:
        print(json_io.dumps({"meta": run_metadata(profile="bench", protocol="render", seed=0, device="cpu"),
                             "rows": rows}))
        return 0
    print(f"{'size':>5} {'points':>7} {'views':>6} {'views/s':>9} {'splat views/s':>14} {'normals s':>10}")
    for r in rows:
        print(f"{r['size']:>5} {r['points']:>7} {r['views']:>6} {r['views_per_s']:>9.1f} "
              f"{r['splat_views_per_s']:>14.1f} {r['normals_s']:>10.2f}")
    return 0
