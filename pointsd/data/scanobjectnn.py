"""ScanObjectNN's three variants from the official h5 files (``data (n,2048,3)``, ``label``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from pointsd.data.labelled_h5 import read_labelled_h5
from pointsd.data.normalize import check_labels, pc_normalize
from pointsd.data.paths import SCANOBJECTNN, dataset_dir
from pointsd.errors import PointSDError

if TYPE_CHECKING:
    import torch

NUM_CLASSES = 15
VARIANT_FILES = {
    "objbg": ("main_split", "{split}_objectdataset.h5"),
    "objonly": ("main_split_nobg", "{split}_objectdataset.h5"),
    "hardest": ("main_split", "{split}_objectdataset_augmentedrot_scale75.h5"),
}
SPLITS = {"train": "training", "training": "training", "test": "test"}


def variant_path(root: str | os.PathLike, variant: str, split: str):
    """The h5 file of ``variant`` (objbg | objonly | hardest) and ``split`` (train | test) under ``root``."""
    if variant not in VARIANT_FILES:
        raise PointSDError(f"unknown ScanObjectNN variant {variant!r} (objbg, objonly, hardest)")
    if split not in SPLITS:
        raise PointSDError(f"unknown ScanObjectNN split {split!r} (train, test)")
    folder, pattern = VARIANT_FILES[variant]
    return dataset_dir(root, SCANOBJECTNN) / folder / pattern.format(split=SPLITS[split])


class ScanObjectNN:
    """One variant and split → ``(points (2048,3) float32 in the unit sphere, label int in 0..14)``.

    ``root`` is the data root or its ``ScanObjectNN`` folder.
    """

    def __init__(self, root: str | os.PathLike, variant: str, split: str) -> None:
        self.path = variant_path(root, variant, split)
        data, labels = read_labelled_h5(self.path)
        check_labels(labels, f"{self.path}: key 'label'", NUM_CLASSES)
        self.points = np.stack([pc_normalize(c) for c in data]) if len(data) else data
        self.labels = labels
        self.num_classes = NUM_CLASSES

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        import torch

        return torch.from_numpy(self.points[index]), int(self.labels[index])
