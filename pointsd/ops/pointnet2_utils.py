"""A ``pointnet2_ops.pointnet2_utils``-compatible facade over :mod:`pointsd.ops`.

Point-MAE-style code can switch ``from pointnet2_ops import pointnet2_utils`` to
``from pointsd.ops import pointnet2_utils``: same names, argument order, layouts and int32 indices,
any device, backend chosen by :mod:`pointsd.ops`'s dispatch.
"""

from __future__ import annotations

import torch

from pointsd import ops
from pointsd.errors import PointSDError
from pointsd.ops import reference, validate


def furthest_point_sample(xyz: torch.Tensor, npoint: int) -> torch.Tensor:
    """``xyz (B,N,3)`` → ``(B,npoint)`` int32, starting at index 0."""
    return ops.furthest_point_sample(xyz, npoint, 0).int()


def gather_operation(features: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``features (B,C,N)``, ``idx (B,npoint)`` → ``(B,C,npoint)``; differentiable w.r.t. features."""
    return ops.gather(features.transpose(1, 2), idx).transpose(1, 2).contiguous()


def grouping_operation(features: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``features (B,C,N)``, ``idx (B,npoint,nsample)`` → ``(B,C,npoint,nsample)``; differentiable."""
    if not isinstance(idx, torch.Tensor) or idx.dim() != 3:
        raise PointSDError(f"idx: expected a (B,npoint,nsample) tensor, got {getattr(idx, 'shape', type(idx))}")
    return ops.gather(features.transpose(1, 2), idx).permute(0, 3, 1, 2).contiguous()


def ball_query(radius: float, nsample: int, xyz: torch.Tensor, new_xyz: torch.Tensor) -> torch.Tensor:
    """Neighbours within ``radius`` (strict ``d² < radius²``) of each centre, upstream semantics.

    ``xyz (B,N,3)``, ``new_xyz (B,npoint,3)`` → ``(B,npoint,nsample)`` int32: the first ``nsample``
    points inside the ball in index order, the remaining slots filled with the first one found;
    all zeros where the ball is empty.
    """
    pts = validate.points("xyz", xyz)
    validate.finite("xyz", pts)
    centres = validate.points("new_xyz", new_xyz)
    validate.finite("new_xyz", centres)
    validate.same_batch("xyz", pts, "new_xyz", centres)
    validate.count("nsample", nsample, 1, pts.shape[1], "number of points N")
    if not float(radius) > 0:
        raise PointSDError(f"radius: must be > 0, got {radius}")
    inside = reference.square_distance(centres, pts) < float(radius) ** 2
    first = torch.argsort((~inside).to(torch.uint8), dim=-1, stable=True)[..., :nsample]
    found = inside.sum(-1, keepdim=True).clamp(max=nsample)
    slot = torch.arange(nsample, device=pts.device)
    filled = torch.where(slot < found, first, first[..., :1])
    return torch.where(found > 0, filled, torch.zeros_like(filled)).int()


def three_nn(unknown: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``unknown (B,n,3)``, ``known (B,m,3)`` → ``(dist (B,n,3) euclidean, idx (B,n,3) int32)``."""
    dist, idx = ops.three_nn(unknown, known)
    return dist, idx.int()


def three_interpolate(features: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``features (B,C,m)``, ``idx (B,n,3)``, ``weight (B,n,3)`` → ``(B,C,n)``; differentiable."""
    return ops.three_interpolate(features, idx, weight)
