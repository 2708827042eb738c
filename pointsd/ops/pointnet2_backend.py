"""The ``pointnet2_ops`` backend: the upstream CUDA extension, for comparison only (never required).

Upstream has FPS (from index 0 only), three_nn and three_interpolate; KNN and chamfer are not
part of it, and asking for them here is a :class:`PointSDError`. Upstream FPS breaks ties by its
own parallel reduction, so the reference's lowest-index rule is not guaranteed on exact ties.
"""

from __future__ import annotations

import torch
from pointnet2_ops import pointnet2_utils as upstream

from pointsd.errors import PointSDError


def _missing(op: str) -> PointSDError:
    return PointSDError(f"ops backend 'pointnet2_ops' has no {op}; use backend 'triton', 'cpu' or 'reference'")


def furthest_point_sample(xyz: torch.Tensor, n: int, start: int) -> torch.Tensor:
    """``xyz (B,N,3)`` float32 CUDA → ``(B,n)`` int64; ``start`` must be 0."""
    if start != 0:
        raise PointSDError(f"start={start}: ops backend 'pointnet2_ops' always starts FPS at index 0")
    return upstream.furthest_point_sample(xyz, n).long()


def knn_with_dist(query: torch.Tensor, points: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Not provided upstream."""
    raise _missing("knn")


def chamfer_nearest(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Not provided upstream."""
    raise _missing("chamfer distance")


def three_nn(unknown: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``unknown (B,n,3)``, ``known (B,m,3)`` → ``(dist (B,n,3) euclidean, idx (B,n,3) int64)``."""
    dist, idx = upstream.three_nn(unknown, known)
    return dist, idx.long()


def three_interpolate(features: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``features (B,C,m)``, ``idx (B,n,3)``, ``weight (B,n,3)`` float32 CUDA → ``(B,C,n)``."""
    return upstream.three_interpolate(features, idx.int().contiguous(), weight)
