"""Generic labelled h5 files (``data (n,N,3)``, ``label (n,)`` or ``(n,1)``), e.g. the real ModelNet10.

Also the low-level h5 reader that :mod:`pointsd.data.scanobjectnn` uses.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from pointsd.data.normalize import check_labels, pc_normalize
from pointsd.errors import PointSDError
from pointsd.utils.data_record import Sources

if TYPE_CHECKING:
    import torch

# Rotation taking a z-up cloud to the y-up convention used everywhere else: (x, y, z) → (x, z, -y).
_Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]], dtype=np.float64)


def read_labelled_h5(path: str | os.PathLike, n_points: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate ``data`` and ``label`` → ``(data (n,N,3) float32, labels (n,) int64)``.

    Extra channels beyond xyz are dropped. Errors name the file and key.
    """
    path = Path(path)
    if not path.is_file():
        raise PointSDError(f"{path}: h5 file is missing")
    try:
        with h5py.File(path, "r") as fh:
            for key in ("data", "label"):
                if key not in fh:
                    raise PointSDError(f"{path}: missing key '{key}' (has {sorted(fh.keys())})")
            data = np.asarray(fh["data"][...])
            labels = np.asarray(fh["label"][...])
    except PointSDError:
        raise
    except (OSError, KeyError, ValueError) as err:
        raise PointSDError(f"{path}: not a readable h5 file ({err})") from err
    if data.ndim != 3 or data.shape[2] < 3:
        raise PointSDError(f"{path}: key 'data' must be (n,N,3+), got {data.shape}")
    if n_points is not None and data.shape[1] != n_points:
        raise PointSDError(f"{path}: key 'data' has {data.shape[1]} points per cloud, expected {n_points}")
    if not np.isfinite(data).all():
        bad = int(np.nonzero(~np.isfinite(data).reshape(len(data), -1).all(1))[0][0])
        raise PointSDError(f"{path}: key 'data' cloud {bad} contains NaN or infinite values")
    labels = check_labels(labels, f"{path}: key 'label'")
    if len(labels) != len(data):
        raise PointSDError(f"{path}: {len(data)} clouds in 'data' but {len(labels)} labels in 'label'")
    return data[..., :3].astype(np.float32, copy=False), labels


def read_names(path: str | os.PathLike) -> list[str]:
    """Class names, one per line (blank lines ignored)."""
    path = Path(path)
    if not path.is_file():
        raise PointSDError(f"{path}: class-names file is missing")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise PointSDError(f"{path}: no class names")
    return names


class LabelledH5:
    """A labelled h5 file as a dataset → ``(points (N,3) float32 in the unit sphere, label int)``.

    ``up_axis="z"`` rotates z-up data (the real ModelNet10) to the y-up convention; ``"y"`` keeps it.
    ``names_file`` (e.g. ``shape_names.txt``) gives class names and bounds the labels.
    """

    def __init__(self, path: str | os.PathLike, names_file: str | os.PathLike | None = None,
                 up_axis: str = "y") -> None:
        if up_axis not in ("y", "z"):
            raise PointSDError(f"up_axis must be 'y' or 'z', got {up_axis!r}")
        self.path = Path(path)
        self.names_file = Path(names_file) if names_file is not None else None
        data, labels = read_labelled_h5(self.path)
        self.names = read_names(names_file) if names_file is not None else None
        if self.names is not None:
            check_labels(labels, f"{self.path}: key 'label'", len(self.names))
        if up_axis == "z":
            data = (data.astype(np.float64) @ _Z_UP_TO_Y_UP.T).astype(np.float32)
        self.points = np.stack([pc_normalize(cloud) for cloud in data]) if len(data) else data
        self.labels = labels
        self.num_classes = len(self.names) if self.names is not None else int(labels.max(initial=-1)) + 1

    def sources(self) -> Sources:
        """The h5 file and the class-names file (:mod:`pointsd.utils.data_record`)."""
        return Sources((self.path,) + ((self.names_file,) if self.names_file is not None else ()))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        import torch

        return torch.from_numpy(self.points[index]), int(self.labels[index])
