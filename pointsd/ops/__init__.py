"""Point operations: the single public entry. Validates inputs, then dispatches to a backend.

Backends (:mod:`pointsd.ops.backends`): ``reference`` (naive torch, ground truth), ``cpu`` (numba),
``triton`` (CUDA tensors; kernels in ``pointsd_kernels``), ``pointnet2_ops`` (upstream, optional).
``auto`` (default) picks triton for CUDA tensors and the CPU path otherwise. Select with
:func:`use_backend`, :func:`set_backend` or env ``POINTSD_OPS_BACKEND``.

Contract, identical for every backend: coordinates are computed in float32 (16-bit inputs are
cast first); FPS starts at ``start`` and ties go to the lowest index; KNN / three_nn are exact,
sorted by increasing distance, ties broken by the lower index; squared distances are rounded in the
one written order of :mod:`pointsd.ops.reference`, so every backend gives the same bits on every
device. Bad input → :class:`PointSDError`.

The backend-dispatched ops run as ``torch.library`` custom operators (:mod:`pointsd.ops.custom_ops`),
so ``torch.compile(fullgraph=True)`` traces code that calls them; the backend is picked when the op
runs. :func:`gather` is plain torch.
"""

from __future__ import annotations

import torch

from pointsd.errors import PointSDError
from pointsd.ops import custom_ops, reference, validate
from pointsd.ops.backends import BACKENDS, selected, set_backend, use_backend

__all__ = [
    "BACKENDS",
    "chamfer_distance",
    "chamfer_l1",
    "chamfer_l2",
    "furthest_point_sample",
    "gather",
    "knn",
    "knn_with_dist",
    "selected",
    "set_backend",
    "three_interpolate",
    "three_nn",
    "use_backend",
]


def furthest_point_sample(xyz: torch.Tensor, n: int, start: int = 0) -> torch.Tensor:
    """Farthest point sampling. ``xyz (B,N,3)`` → indices ``(B,n)`` int64, first index ``start``."""
    pts = validate.points("xyz", xyz)
    N = pts.shape[1]
    validate.count("n", n, 1, N, "number of points N")
    validate.count("start", start, 0, N - 1, "a point index")
    return custom_ops.furthest_point_sample(pts, n, start)


def gather(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Batched gather. ``points (B,N,C)``, ``idx (B,*S)`` integer in ``[0,N)`` → ``(B,*S,C)``."""
    if not isinstance(points, torch.Tensor) or points.dim() != 3:
        raise PointSDError(f"points: expected a (B,N,C) tensor, got {getattr(points, 'shape', type(points))}")
    if not isinstance(idx, torch.Tensor) or idx.dim() < 1:
        raise PointSDError(f"idx: expected a (B,*S) integer tensor, got {getattr(idx, 'shape', type(idx))}")
    flat = validate.indices("idx", idx, tuple(idx.shape), points.device)
    validate.in_range("idx", flat, points.shape[1])
    validate.same_batch("points", points, "idx", flat)
    return reference.gather(points, flat)


def knn_with_dist(query: torch.Tensor, points: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """k nearest neighbours with squared distances.

    ``query (B,M,3)``, ``points (B,N,3)`` → ``(dist (B,M,k) float32, idx (B,M,k) int64)``, sorted.
    """
    q = validate.points("query", query)
    p = validate.points("points", points)
    validate.same_batch("query", q, "points", p)
    validate.count("k", k, 1, p.shape[1], "number of points N")
    return custom_ops.knn_with_dist(q, p, k)


def knn(query: torch.Tensor, points: torch.Tensor, k: int) -> torch.Tensor:
    """k nearest neighbours, sorted by distance. ``query (B,M,3)``, ``points (B,N,3)`` → ``(B,M,k)`` int64."""
    return knn_with_dist(query, points, k)[1]


def three_nn(unknown: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``unknown (B,n,3)``, ``known (B,m≥3,3)`` → ``(dist (B,n,3) euclidean, idx (B,n,3) int64)``."""
    u = validate.points("unknown", unknown)
    k = validate.points("known", known)
    validate.same_batch("unknown", u, "known", k)
    if k.shape[1] < 3:
        raise PointSDError(f"known: needs at least 3 points, got shape {tuple(known.shape)}")
    return custom_ops.three_nn(u, k)


def three_interpolate(features: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted sum of 3 neighbours' features, differentiable w.r.t. ``features`` and ``weight``.

    ``features (B,C,m)``, ``idx (B,n,3)`` integer in ``[0,m)``, ``weight (B,n,3)`` → ``(B,C,n)``.
    """
    validate.points("features", features, width=None)
    validate.points("weight", weight)
    idx64 = validate.indices("idx", idx, (features.shape[0], weight.shape[1], 3), features.device)
    validate.same_batch("features", features, "weight", weight)
    out = custom_ops.three_interpolate(features.float().contiguous(), idx64, weight.float().contiguous())
    return out.to(features.dtype)


def chamfer_distance(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest squared distances both ways, differentiable w.r.t. both clouds.

    ``x (B,N,3)``, ``y (B,M,3)`` → ``(d_xy (B,N), d_yx (B,M))`` float32.
    """
    validate.same_batch("x", validate.points("x", x), "y", validate.points("y", y))
    d1, _, d2, _ = custom_ops.chamfer_nearest(x.float().contiguous(), y.float().contiguous())
    return d1, d2


def _safe_sqrt(d: torch.Tensor) -> torch.Tensor:
    """``√d`` with a zero (not NaN) gradient where ``d == 0`` (coincident points)."""
    positive = d > 0
    return torch.where(positive, torch.where(positive, d, torch.ones_like(d)).sqrt(), torch.zeros_like(d))


def chamfer_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Point-MAE's ChamferDistanceL1: ``(mean √d_xy + mean √d_yx) / 2`` over all points → scalar."""
    d1, d2 = chamfer_distance(x, y)
    return (_safe_sqrt(d1).mean() + _safe_sqrt(d2).mean()) / 2


def chamfer_l2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Point-MAE's ChamferDistanceL2: ``mean d_xy + mean d_yx`` over all points → scalar."""
    d1, d2 = chamfer_distance(x, y)
    return d1.mean() + d2.mean()
