"""Render every shape of a ShapeNet-55-style point folder into the ULIP layout, plus contact sheets."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pointsd.data.normalize import pc_normalize
from pointsd.data.render import RenderSettings, contact_sheet, depth_name, png_bytes, render_shape, view_name
from pointsd.data.shapenet55 import load_cloud, npy_folder, pc_folder
from pointsd.errors import PointSDError
from pointsd.utils.atomic import write_bytes


@dataclass(frozen=True)
class RenderReport:
    """What a render run did: shapes and views written, seconds spent rendering."""

    shapes: int
    views: int
    seconds: float

    @property
    def views_per_second(self) -> float:
        return self.views / self.seconds if self.seconds > 0 else float("inf")


def find_splits(points_dir: str | os.PathLike, split_list: str | os.PathLike | None) -> dict[str, list[str]]:
    """Shape ids per split: from ``split_list`` (one file), else ``ShapeNet-55/{train,test}.txt``, else all ``.npy``."""
    if split_list is not None:
        path = Path(split_list)
        if not path.is_file():
            raise PointSDError(f"{path}: split list is missing")
        return {path.stem: [l.strip().removesuffix(".npy") for l in path.read_text().splitlines() if l.strip()]}
    lists = pc_folder(points_dir) / "ShapeNet-55"
    found = {p.stem: [l.strip().removesuffix(".npy") for l in p.read_text().splitlines() if l.strip()]
             for p in sorted(lists.glob("*.txt"))} if lists.is_dir() else {}
    if found:
        return found
    ids = sorted(p.stem for p in npy_folder(points_dir).glob("*.npy"))
    if not ids:
        raise PointSDError(f"{points_dir}: no .npy point clouds found")
    return {"all": ids}


def render_dataset(points_dir: str | os.PathLike, out: str | os.PathLike, views: int = 30, size: int = 224,
                   seed: int = 0, split_list: str | os.PathLike | None = None,
                   sheet_columns: int = 8, sheet_max: int = 64) -> RenderReport:
    """Write ``out/{id}/{id}_r_{az}.png`` and ``..._depth0001.png`` for every shape, and ``contact_sheet_{split}.png``.

    ``seed`` jitters each shape's base colour (deterministically), so views are reproducible per seed.
    """
    if views <= 0 or size < 8:
        raise PointSDError(f"render: need views > 0 and size >= 8 (got views={views}, size={size})")
    out = Path(out)
    folder = npy_folder(points_dir)
    rng = np.random.default_rng(seed)
    shapes = n_views = 0
    seconds = 0.0
    for split, ids in find_splits(points_dir, split_list).items():
        firsts = []
        for shape_id in ids:
            xyz = pc_normalize(load_cloud(folder / f"{shape_id}.npy"))
            tint = tuple(float(c) for c in np.clip(np.array([0.72, 0.74, 0.80]) + rng.uniform(-0.08, 0.08, 3), 0, 1))
            start = time.perf_counter()
            rendered = render_shape(xyz, views, RenderSettings(size=size, color=tint))
            seconds += time.perf_counter() - start
            for azimuth, rgba, depth in rendered:
                write_bytes(out / shape_id / view_name(shape_id, azimuth), png_bytes(rgba))
                write_bytes(out / shape_id / depth_name(shape_id, azimuth), png_bytes(depth))
            if len(firsts) < sheet_max:
                firsts.append(rendered[0][1])
            shapes += 1
            n_views += len(rendered)
        sheet = contact_sheet(firsts, columns=sheet_columns)
        write_bytes(out / f"contact_sheet_{split}.png", png_bytes(np.dstack([sheet, np.full(sheet.shape[:2], 255, np.uint8)])))
    return RenderReport(shapes, n_views, seconds)
