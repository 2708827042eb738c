"""ShapeNet-55 point clouds: ``ShapeNet55-34/shapenet_pc/{synset}-{model}.npy`` ((8192,3) float32) and split lists."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pointsd.data.normalize import check_points, pc_normalize
from pointsd.data.paths import SHAPENET55, dataset_dir, require_file
from pointsd.errors import PointSDError
from pointsd.train.presets import POINT_SUBSETS

if TYPE_CHECKING:
    import torch


def pc_folder(pc_root: str | os.PathLike) -> Path:
    """The ``ShapeNet55-34`` folder given it, its parent data root, or (for bare clouds) ``shapenet_pc`` itself."""
    folder = dataset_dir(pc_root, SHAPENET55)
    return folder.parent if folder.name == "shapenet_pc" else folder


def npy_folder(pc_root: str | os.PathLike) -> Path:
    """Where the ``.npy`` clouds are."""
    folder = pc_folder(pc_root)
    return folder / "shapenet_pc" if (folder / "shapenet_pc").is_dir() else folder


def split_file(pc_root: str | os.PathLike, split: str) -> Path:
    """The split's list of shape ids: ``ShapeNet-55/{split}.txt``."""
    return pc_folder(pc_root) / "ShapeNet-55" / f"{split}.txt"


def read_split(pc_root: str | os.PathLike, split: str) -> list[str]:
    """Shape ids (``{synset}-{model}``) listed in ``ShapeNet-55/{split}.txt``."""
    path = require_file(split_file(pc_root, split))
    ids = [line.strip().removesuffix(".npy") for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise PointSDError(f"{path}: empty split list")
    return ids


TAXONOMY = "shapenet-55_taxonomy.json"


def category_names(pc_root: str | os.PathLike) -> dict[str, str]:
    """``{synset: name}`` from ``shapenet-55_taxonomy.json`` (a list of ``{synsetId, name, ...}``), each name's
    first comma-separated word (``"airplane,aeroplane,plane"`` → ``"airplane"``)."""
    from pointsd.utils import json_io

    path = require_file(pc_folder(pc_root) / TAXONOMY)
    entries = json_io.read_json(path, "ShapeNet-55 taxonomy")
    if not isinstance(entries, list) or not all(isinstance(e, dict) and {"synsetId", "name"} <= e.keys()
                                                 for e in entries):
        raise PointSDError(f"{path}: expected a list of {{synsetId, name, ...}} entries")
    return {str(e["synsetId"]): str(e["name"]).split(",")[0].strip() for e in entries}


def subset_indices(n_stored: int, npoints: int, mode: str) -> np.ndarray:
    """Indices ``(npoints,)`` into a cloud of ``n_stored`` points, drawn with torch's RNG as ``mode`` says
    (:data:`pointsd.train.presets.POINT_SUBSETS`): ``first`` = the first ``npoints`` stored points in a random
    order (official ``PretrainDataset``; the stored order when ``npoints == n_stored``), ``whole`` = a random
    ``npoints`` of all stored points."""
    import torch

    if npoints > n_stored:
        raise PointSDError(f"{n_stored} points stored, fewer than npoints={npoints}")
    if mode == "first":
        return torch.randperm(npoints).numpy() if npoints < n_stored else np.arange(n_stored)
    if mode == "whole":
        return torch.randperm(n_stored)[:npoints].numpy()
    raise PointSDError(f"point subset must be one of {POINT_SUBSETS}, got {mode!r}")


def load_cloud(path: str | os.PathLike, n_points: int | None = None) -> np.ndarray:
    """One ``.npy`` cloud → ``(N,3)`` float32 (not normalised), validated; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise PointSDError(f"{path}: point cloud file is missing")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise PointSDError(f"{path}: not a readable .npy file ({err})") from err
    return check_points(arr, str(path), n_points)[:, :3]


class ShapeNet55:
    """Point clouds of one split → ``(points (npoints,3) float32 in the unit sphere, id str)``; random subset per access."""

    def __init__(self, pc_root: str | os.PathLike, split: str, npoints: int = 1024) -> None:
        self.folder = npy_folder(pc_root)
        self.ids = read_split(pc_root, split)
        self.npoints = npoints
        for shape_id in self.ids:
            if not (self.folder / f"{shape_id}.npy").is_file():
                raise PointSDError(f"{self.folder / f'{shape_id}.npy'}: listed in split '{split}' but missing")

    def __len__(self) -> int:
        return len(self.ids)

    def cloud(self, index: int) -> np.ndarray:
        """All points of shape ``index``, normalised → ``(N,3)``."""
        return pc_normalize(load_cloud(self.folder / f"{self.ids[index]}.npy"))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        import torch

        cloud = self.cloud(index)
        if len(cloud) < self.npoints:
            raise PointSDError(f"{self.folder / f'{self.ids[index]}.npy'}: {len(cloud)} points, "
                               f"fewer than npoints={self.npoints}")
        choice = torch.randperm(len(cloud))[: self.npoints].numpy()
        return torch.from_numpy(pc_normalize(cloud[choice])), self.ids[index]
