"""ModelNet40 (``modelnet40_normal_resampled``): comma-separated txt with normals and the cached FPS ``.dat``.

The cache ``modelnet40_{split}_{N}pts_fps.dat`` is a pickle of ``[list of (N,6) float32, list of (1,) int32]``,
as Point-BERT / Point-MAE write it; the data preparation writes it (`pointsd data modelnet40-cache`); a reader without it samples in memory.
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pointsd.data import safe_pickle
from pointsd.data.normalize import check_labels, check_points, pc_normalize
from pointsd.data.paths import MODELNET40, dataset_dir, require_file
from pointsd.errors import PointSDError
from pointsd.utils.atomic import write_bytes
from pointsd.utils.data_record import Sources

if TYPE_CHECKING:
    import torch

SPLITS = ("train", "test")


def read_txt_cloud(path: str | os.PathLike) -> np.ndarray:
    """One ``x,y,z,nx,ny,nz`` per line (commas or spaces) → ``(N,6)`` float32, validated."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise PointSDError(f"{path}: cannot read ({err.strerror})") from err
    lines = [line for line in text.replace(",", " ").splitlines() if line.strip()]
    values = " ".join(lines).split()
    if not lines or len(values) % len(lines) != 0:
        raise PointSDError(f"{path}: lines must all have the same number of values")
    try:
        arr = np.asarray(values, dtype=np.float32).reshape(len(lines), -1)
    except ValueError as err:
        raise PointSDError(f"{path}: non-numeric value ({err})") from err
    return check_points(arr, str(path), channels=6)


def shape_path(folder: Path, shape_id: str) -> Path:
    """``airplane_0001`` → ``folder/airplane/airplane_0001.txt`` (class = id without the last ``_NNNN``)."""
    return folder / shape_id.rsplit("_", 1)[0] / f"{shape_id}.txt"


def dat_path(folder: Path, split: str, num_points: int) -> Path:
    """The cache file name the public code uses."""
    return folder / f"modelnet40_{split}_{num_points}pts_fps.dat"


def fps_clouds(folder: Path, split: str, num_points: int, batch: int = 32) -> list[list[np.ndarray]]:
    """FPS every listed txt cloud to ``num_points`` → ``[clouds (num_points,6) float32, labels (1,) int32]``,
    the ``.dat`` payload."""
    names = _class_names(folder)
    ids = _split_ids(folder, split)
    clouds, labels = [], []
    for start in range(0, len(ids), batch):
        chunk = [read_txt_cloud(shape_path(folder, i)) for i in ids[start:start + batch]]
        for shape_id, cloud in zip(ids[start:start + batch], chunk):
            if len(cloud) < num_points:
                raise PointSDError(f"{shape_path(folder, shape_id)}: {len(cloud)} points, "
                                   f"fewer than num_points={num_points}")
        clouds.extend(_fps_many(chunk, num_points))
        for shape_id in ids[start:start + batch]:
            cls = shape_id.rsplit("_", 1)[0]
            if cls not in names:
                raise PointSDError(f"{folder / f'modelnet40_{split}.txt'}: unknown class {cls!r} in {shape_id}")
            labels.append(np.array([names.index(cls)], dtype=np.int32))
    return [clouds, labels]


def build_cache(folder: Path, split: str, num_points: int) -> Path:
    """Write the ``.dat`` of :func:`fps_clouds` atomically (the data preparation's job, never a run's)."""
    target = dat_path(folder, split, num_points)
    write_bytes(target, pickle.dumps(fps_clouds(folder, split, num_points), protocol=4))
    return target


def _fps_many(clouds: list[np.ndarray], n: int) -> list[np.ndarray]:
    """FPS each ``(N_i,6)`` cloud to ``n`` points on xyz; equal-size clouds go through in one batch."""
    out: list[np.ndarray | None] = [None] * len(clouds)
    import torch

    from pointsd.ops import furthest_point_sample

    by_size: dict[int, list[int]] = {}
    for i, c in enumerate(clouds):
        by_size.setdefault(len(c), []).append(i)
    for members in by_size.values():
        stack = torch.from_numpy(np.stack([clouds[i] for i in members]))
        idx = furthest_point_sample(stack[..., :3].contiguous(), n)
        picked = torch.gather(stack, 1, idx.unsqueeze(-1).expand(-1, -1, stack.shape[-1])).numpy()
        for j, i in enumerate(members):
            out[i] = np.ascontiguousarray(picked[j], dtype=np.float32)
    return out  # type: ignore[return-value]


def _class_names(folder: Path) -> list[str]:
    path = require_file(folder / "modelnet40_shape_names.txt")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _split_ids(folder: Path, split: str) -> list[str]:
    if split not in SPLITS:
        raise PointSDError(f"unknown ModelNet40 split {split!r} (train, test)")
    path = require_file(folder / f"modelnet40_{split}.txt")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_cache(path: Path, num_points: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Load and validate a ``.dat`` → ``(points (n,num_points,3) float32 normalised, labels (n,) int64)``.

    A cache of more points gives its first ``num_points`` (an FPS order's prefix is the FPS of that
    size, as Point-MAE reads its 8192-point file)."""
    return checked_payload(safe_pickle.load(path), str(path), num_points, num_classes)


def _prefix(cloud: object, num_points: int) -> object:
    """The first ``num_points`` rows of a ``(N,C)`` array; anything else unchanged (check_points names it)."""
    arr = np.asarray(cloud)
    return arr[:num_points] if arr.ndim == 2 else cloud


def _nearest_cache(folder: Path, split: str, num_points: int) -> Path | None:
    """The ``.dat`` of exactly ``num_points``, else the smallest one holding more, else None."""
    sizes = []
    for path in folder.glob(f"modelnet40_{split}_*pts_fps.dat"):
        count = path.name.removeprefix(f"modelnet40_{split}_").removesuffix("pts_fps.dat")
        if count.isdigit() and int(count) >= num_points:
            sizes.append((int(count), path))
    return min(sizes)[1] if sizes else None


def checked_payload(obj: object, source: str, num_points: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``[clouds, labels]`` (a ``.dat`` payload) validated → ``(points (n,num_points,3), labels (n,))``."""
    if not (isinstance(obj, (list, tuple)) and len(obj) == 2 and len(obj[0]) == len(obj[1])):
        raise PointSDError(f"{source}: expected [list of clouds, list of labels] of equal length")
    clouds = [check_points(_prefix(c, num_points), f"{source}: cloud {i}", num_points) for i, c in enumerate(obj[0])]
    labels = check_labels(np.asarray([np.asarray(l).reshape(-1)[0] for l in obj[1]]), f"{source}: labels",
                          num_classes)
    points = np.stack([pc_normalize(c[:, :3]) for c in clouds]) if clouds else np.zeros((0, num_points, 3),
                                                                                        np.float32)
    return points, labels


class ModelNet40:
    """ModelNet40 → ``(points (num_points,3) float32 in the unit sphere, label int in 0..39)``.

    ``root`` is the data root or ``modelnet40_normal_resampled`` itself. The ``.dat`` for
    ``num_points`` is read (or the prefix of a larger one); without either, the txt files are
    FPS-sampled in memory (nothing is written).
    """

    def __init__(self, root: str | os.PathLike, split: str, num_points: int = 8192) -> None:
        self.folder = dataset_dir(root, MODELNET40)
        self.names = _class_names(self.folder)
        if split not in SPLITS:
            raise PointSDError(f"unknown ModelNet40 split {split!r} (train, test)")
        cache = _nearest_cache(self.folder, split, num_points)
        self.path = cache or dat_path(self.folder, split, num_points)
        if cache is not None:
            self.points, self.labels = read_cache(cache, num_points, len(self.names))
        else:  # FPS in memory: a run never writes into its data folder (another stage's output)
            print(f"note: no modelnet40_{split}_*pts_fps.dat of >= {num_points} points in {self.folder}; "
                  "FPS of the txt clouds in memory (write one with `pointsd data modelnet40-cache`)", file=sys.stderr)
            payload = fps_clouds(self.folder, split, num_points)
            self.points, self.labels = checked_payload(payload, str(self.folder), num_points, len(self.names))
        self.num_classes = len(self.names)
        self.split = split

    def sources(self) -> Sources:
        """The class names and the FPS cache read, else the split list and its txt clouds
        (:mod:`pointsd.utils.data_record`)."""
        names = self.folder / "modelnet40_shape_names.txt"
        if self.path.is_file():
            return Sources((names, self.path))
        ids = _split_ids(self.folder, self.split)
        return Sources((names, self.folder / f"modelnet40_{self.split}.txt"),
                       tuple((self.folder, shape_path(self.folder, i)) for i in ids))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        import torch

        return torch.from_numpy(self.points[index]), int(self.labels[index])
