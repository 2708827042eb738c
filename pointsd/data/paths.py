"""Where each dataset lives under a data root (SPEC §5) and a tolerant resolver for user paths."""

from __future__ import annotations

import os
from pathlib import Path

from pointsd.errors import PointSDError

MODELNET40 = "ModelNet/modelnet40_normal_resampled"
MODELNET_FEWSHOT = "ModelNetFewshot"
SCANOBJECTNN = "ScanObjectNN"
SHAPENET55 = "ShapeNet55-34"
SHAPENETPART = "shapenetcore_partanno_segmentation_benchmark_v0_normal"
ULIP_RENDERS = "rgb_depth_rendered_images"


def dataset_dir(root: str | os.PathLike, subpath: str) -> Path:
    """The dataset folder: ``root/subpath``, else ``root/<last part of subpath>``, else ``root`` itself.

    Raises :class:`PointSDError` when ``root`` does not exist.
    """
    root = Path(root)
    if not root.is_dir():
        raise PointSDError(f"{root}: dataset folder does not exist")
    for candidate in (root / subpath, root / Path(subpath).name):
        if candidate.is_dir():
            return candidate
    return root


def require_file(path: Path) -> Path:
    """``path`` if it is a file, else a :class:`PointSDError` naming it."""
    if not path.is_file():
        raise PointSDError(f"{path}: required file is missing")
    return path
