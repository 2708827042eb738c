"""Point operations: the single public entry. Dispatches to a backend per call.

Backends: ``reference`` (naive torch, ground truth), ``cpu`` (fast CPU path), ``triton``
(CUDA tensors), ``pointnet2_ops`` (upstream package, optional, for comparison).
``auto`` picks triton for CUDA tensors and the fast CPU path otherwise.
"""

from __future__ import annotations

import torch

from pointsd.ops import reference

__all__ = ["furthest_point_sample", "gather", "knn", "three_nn", "three_interpolate", "chamfer_distance"]


def furthest_point_sample(xyz: torch.Tensor, n: int, start: int = 0) -> torch.Tensor:
    """Farthest point sampling. ``xyz (B,N,3)`` → indices ``(B,n)`` int64, first index ``start``."""
    return reference.furthest_point_sample(xyz, n, start)


def gather(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Batched gather. ``points (B,N,C)``, ``idx (B,*S)`` → ``(B,*S,C)``."""
    return reference.gather(points, idx)


def knn(query: torch.Tensor, points: torch.Tensor, k: int) -> torch.Tensor:
    """k nearest neighbours, sorted by distance. ``query (B,M,3)``, ``points (B,N,3)`` → ``(B,M,k)`` int64."""
    return reference.knn(query, points, k)


def three_nn(unknown: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``unknown (B,n,3)``, ``known (B,m,3)`` → ``(dist (B,n,3), idx (B,n,3) int64)``."""
    return reference.three_nn(unknown, known)


def three_interpolate(features: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``features (B,C,m)``, ``idx, weight (B,n,3)`` → ``(B,C,n)``."""
    return reference.three_interpolate(features, idx, weight)


def chamfer_distance(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x (B,N,3)``, ``y (B,M,3)`` → nearest squared distances ``(B,N)``, ``(B,M)``."""
    return reference.chamfer_distance(x, y)
