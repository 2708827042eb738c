"""Per-cloud normalisation (Point-MAE's ``pc_normalize``) and input validation shared by every reader."""

from __future__ import annotations

import numpy as np

from pointsd.errors import PointSDError


def pc_normalize(xyz: np.ndarray) -> np.ndarray:
    """Centre on the mean and scale into the unit sphere. ``xyz (N,3)`` → ``(N,3)`` float32, max norm 1."""
    xyz = np.asarray(xyz, dtype=np.float64)
    xyz = xyz - xyz.mean(axis=0, keepdims=True)
    radius = np.sqrt((xyz * xyz).sum(axis=1)).max()
    if radius > 0:
        xyz = xyz / radius
    return xyz.astype(np.float32)


def check_points(points: np.ndarray, where: str, n_points: int | None = None, channels: int = 3) -> np.ndarray:
    """Validate one cloud ``(N,C>=channels)``: right rank and width, finite, optional point count.

    Returns it as float32. ``where`` names the file (and key/index) in the error message.
    """
    arr = np.asarray(points)
    if arr.ndim != 2 or arr.shape[1] < channels:
        raise PointSDError(f"{where}: expected points of shape (N,{channels}+), got {arr.shape}")
    if n_points is not None and arr.shape[0] != n_points:
        raise PointSDError(f"{where}: expected {n_points} points, got {arr.shape[0]}")
    if arr.shape[0] == 0:
        raise PointSDError(f"{where}: empty point cloud")
    if not np.issubdtype(arr.dtype, np.number):
        raise PointSDError(f"{where}: points have non-numeric dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise PointSDError(f"{where}: points contain NaN or infinite values")
    return arr.astype(np.float32, copy=False)


def check_labels(labels: np.ndarray, where: str, num_classes: int | None = None) -> np.ndarray:
    """Validate class labels of shape ``(n,)`` or ``(n,1)`` with any integer dtype → ``(n,)`` int64."""
    arr = np.asarray(labels)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise PointSDError(f"{where}: expected labels of shape (n,) or (n,1), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise PointSDError(f"{where}: labels must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise PointSDError(f"{where}: negative label {int(arr.min())}")
    if num_classes is not None and arr.size and arr.max() >= num_classes:
        raise PointSDError(f"{where}: label {int(arr.max())} out of range for {num_classes} classes")
    return arr
