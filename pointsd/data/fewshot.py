"""ModelNet40 few-shot folds: ``{way}way_{shot}shot/{fold}.pkl`` = ``{"train": [(points, label, ...)], "test": [...]}``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pointsd.data import safe_pickle
from pointsd.data.normalize import check_labels, check_points, pc_normalize
from pointsd.data.paths import MODELNET_FEWSHOT, dataset_dir
from pointsd.errors import PointSDError

if TYPE_CHECKING:
    import torch

SETTINGS = ((5, 10), (5, 20), (10, 10), (10, 20))
NUM_FOLDS = 10


def fold_path(root: str | os.PathLike, way: int, shot: int, fold: int) -> Path:
    """``ModelNetFewshot/{way}way_{shot}shot/{fold}.pkl`` under the data root or the few-shot folder itself.

    The public code reads ``5way_10shot`` while its DATASET.md tree shows ``5way10shot``; both are accepted
    (the underscore form when neither exists, so the error names the expected file).
    """
    base = dataset_dir(root, MODELNET_FEWSHOT)
    plain = base / f"{way}way{shot}shot" / f"{fold}.pkl"
    underscored = base / f"{way}way_{shot}shot" / f"{fold}.pkl"
    return plain if plain.is_file() and not underscored.is_file() else underscored


def read_fold(path: Path, way: int, split: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Validated ``(clouds: list of (N,3) float32 normalised, labels (n,) int64 in 0..way-1)``."""
    obj = safe_pickle.load(path)
    if not isinstance(obj, dict) or split not in obj:
        raise PointSDError(f"{path}: expected a dict with key '{split}'")
    entries = obj[split]
    if not isinstance(entries, (list, tuple)):
        raise PointSDError(f"{path}: key '{split}' must be a list of (points, label, ...) tuples")
    if not entries:
        raise PointSDError(f"{path}: '{split}' is empty (no clouds)")
    clouds, labels = [], []
    for i, entry in enumerate(entries):
        if not isinstance(entry, (list, tuple)) or len(entry) < 2:
            raise PointSDError(f"{path}: '{split}'[{i}] must be a (points, label, ...) tuple")
        clouds.append(pc_normalize(check_points(entry[0], f"{path}: '{split}'[{i}]")[:, :3]))
        labels.append(np.asarray(entry[1]).reshape(-1)[0])
    return clouds, check_labels(np.asarray(labels), f"{path}: '{split}' labels", way)


class ModelNetFewShot:
    """One few-shot fold split → ``(points (N,3) float32 in the unit sphere, label int in 0..way-1)``."""

    def __init__(self, root: str | os.PathLike, way: int, shot: int, fold: int, split: str) -> None:
        if split not in ("train", "test"):
            raise PointSDError(f"unknown few-shot split {split!r} (train, test)")
        self.path = fold_path(root, way, shot, fold)
        if not self.path.is_file():
            raise PointSDError(f"{self.path}: few-shot fold file is missing")
        self.clouds, self.labels = read_fold(self.path, way, split)
        self.num_classes = way

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        import torch

        return torch.from_numpy(self.clouds[index]), int(self.labels[index])
