"""ShapeNetPart (``shapenetcore_partanno_segmentation_benchmark_v0_normal``): 16 categories, 50 parts.

Files ``{synset}/{model}.txt`` hold ``x y z nx ny nz part`` per line; splits are
``train_test_split/shuffled_{split}_file_list.json`` with entries ``shape_data/{synset}/{model}``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pointsd.data.normalize import check_points, pc_normalize
from pointsd.data.paths import SHAPENETPART, dataset_dir, require_file
from pointsd.errors import PointSDError
from pointsd.utils import json_io
from pointsd.utils.data_record import Sources

if TYPE_CHECKING:
    import torch

# Category → its part ids, as in the public benchmark (categories in alphabetical order = category index).
SEG_CLASSES: dict[str, list[int]] = {
    "Airplane": [0, 1, 2, 3], "Bag": [4, 5], "Cap": [6, 7], "Car": [8, 9, 10, 11],
    "Chair": [12, 13, 14, 15], "Earphone": [16, 17, 18], "Guitar": [19, 20, 21], "Knife": [22, 23],
    "Lamp": [24, 25, 26, 27], "Laptop": [28, 29], "Motorbike": [30, 31, 32, 33, 34, 35], "Mug": [36, 37],
    "Pistol": [38, 39, 40], "Rocket": [41, 42, 43], "Skateboard": [44, 45, 46], "Table": [47, 48, 49],
}
SYNSETS: dict[str, str] = {
    "Airplane": "02691156", "Bag": "02773838", "Cap": "02954340", "Car": "02958343", "Chair": "03001627",
    "Earphone": "03261776", "Guitar": "03467517", "Knife": "03624134", "Lamp": "03636649",
    "Laptop": "03642806", "Motorbike": "03790512", "Mug": "03797390", "Pistol": "03948459",
    "Rocket": "04099429", "Skateboard": "04225987", "Table": "04379243",
}
NUM_PARTS = 50
SPLITS = ("train", "val", "test")


def read_category_file(folder: Path) -> dict[str, str]:
    """``synsetoffset2category.txt`` (``Name<TAB>synset`` lines) → ``{synset: name}``."""
    path = require_file(folder / "synsetoffset2category.txt")
    mapping = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in SEG_CLASSES:
            raise PointSDError(f"{path}: line {n} is not '<Category> <synset>' with a known category: {line!r}")
        mapping[parts[1]] = parts[0]
    return mapping


def split_file(folder: Path, split: str) -> Path:
    """The split's list: ``train_test_split/shuffled_{split}_file_list.json``."""
    return folder / "train_test_split" / f"shuffled_{split}_file_list.json"


def read_split(folder: Path, split: str) -> list[tuple[str, str]]:
    """The split json → list of ``(synset, model)``."""
    if split not in SPLITS:
        raise PointSDError(f"unknown ShapeNetPart split {split!r} (train, val, test)")
    path = require_file(split_file(folder, split))
    entries = json_io.read_json(path, "split list")
    if not isinstance(entries, list) or not entries:
        raise PointSDError(f"{path}: empty split list" if entries == [] else f"{path}: expected a list of shapes")
    out = []
    for entry in entries:
        parts = str(entry).split("/")
        if len(parts) < 2:
            raise PointSDError(f"{path}: entry {entry!r} is not 'shape_data/<synset>/<model>'")
        out.append((parts[-2], parts[-1]))
    return out


def read_part_file(path: Path, category: str) -> tuple[np.ndarray, np.ndarray]:
    """``x y z nx ny nz part`` lines → ``(xyz (N,3) float32, parts (N,) int64)``; parts checked against the category."""
    try:
        text = path.read_text()
    except OSError as err:
        raise PointSDError(f"{path}: cannot read ({err.strerror})") from err
    lines = [line for line in text.splitlines() if line.strip()]
    values = " ".join(lines).split()
    if not lines or len(values) != 7 * len(lines):
        raise PointSDError(f"{path}: every line must hold 7 values 'x y z nx ny nz part'")
    try:
        arr = np.asarray(values, dtype=np.float32).reshape(-1, 7)
    except ValueError as err:
        raise PointSDError(f"{path}: non-numeric value ({err})") from err
    xyz = check_points(arr[:, :6], str(path), channels=6)[:, :3]
    parts = arr[:, 6].astype(np.int64)
    allowed = SEG_CLASSES[category]
    if parts.min() < allowed[0] or parts.max() > allowed[-1]:
        raise PointSDError(f"{path}: part ids {int(parts.min())}..{int(parts.max())} outside {category}'s "
                           f"{allowed[0]}..{allowed[-1]}")
    return xyz, parts


class ShapeNetPart:
    """One split → ``(points (num_points,3) float32 in the unit sphere, category int, parts (num_points,) int64)``.

    ``num_points`` points are drawn at random per access (with replacement when the file has fewer).
    """

    def __init__(self, root: str | os.PathLike, split: str, num_points: int = 2048) -> None:
        self.folder = dataset_dir(root, SHAPENETPART)
        synset_to_name = read_category_file(self.folder)
        self.categories = sorted(SEG_CLASSES)
        self.num_points = num_points
        self.split_file = split_file(self.folder, split)
        self.items: list[tuple[Path, str]] = []
        for synset, model in read_split(self.folder, split):
            if synset not in synset_to_name:
                raise PointSDError(f"{self.folder}: split '{split}' lists synset {synset} missing from "
                                   "synsetoffset2category.txt")
            path = self.folder / synset / f"{model}.txt"
            if not path.is_file():
                raise PointSDError(f"{path}: listed in split '{split}' but missing")
            self.items.append((path, synset_to_name[synset]))

    def sources(self) -> Sources:
        """The category file, the split list and its shape files (:mod:`pointsd.utils.data_record`)."""
        return Sources((self.folder / "synsetoffset2category.txt", self.split_file),
                       tuple((self.folder, path) for path, _ in self.items))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        import torch

        path, category = self.items[index]
        xyz, parts = read_part_file(path, category)
        n = len(xyz)
        choice = torch.randperm(n)[: self.num_points] if n >= self.num_points else torch.randint(
            n, (self.num_points,))
        choice = choice.numpy()
        points = pc_normalize(xyz)[choice]
        return torch.from_numpy(points), self.categories.index(category), torch.from_numpy(parts[choice])
