"""The ``triton`` backend: the kernels of ``pointsd_kernels`` (CUDA tensors, or CPU tensors under
``TRITON_INTERPRET=1``). Imported only when selected, so triton stays optional.

Kernels only where they win: :data:`TORCH_FASTER` maps an op to the largest work (pairs of points
``B·M·N``; ``B·N·n`` for FPS) at which its naive torch formulation (:mod:`pointsd.ops.reference`,
exact by definition, so results are the same) was measured faster than the kernel on a GPU by
``pointsd bench ops --device cuda``; up to that work the op runs in torch. Empty until measured:
every op runs its kernel.
"""

from __future__ import annotations

import torch
from pointsd_kernels import chamfer, fps, interpolate, knn
from pointsd_kernels.interpolate import three_interpolate

from pointsd.ops import reference

__all__ = ["chamfer_nearest", "furthest_point_sample", "knn_with_dist", "three_interpolate", "three_nn"]

TORCH_FASTER: dict[str, int] = {}


def _torch_wins(op: str, work: int) -> bool:
    """Whether ``op`` at ``work`` pairs runs faster in torch (per :data:`TORCH_FASTER`)."""
    return work <= TORCH_FASTER.get(op, 0)


def furthest_point_sample(xyz: torch.Tensor, n: int, start: int) -> torch.Tensor:
    """``xyz (B,N,3)`` float32 contiguous → ``(B,n)`` int64."""
    impl = reference if _torch_wins("fps", xyz.shape[0] * xyz.shape[1] * n) else fps
    return impl.furthest_point_sample(xyz, n, start)


def knn_with_dist(query: torch.Tensor, points: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``query (B,M,3)``, ``points (B,N,3)`` → ``(sq. dist (B,M,k) float32, idx (B,M,k) int64)``."""
    impl = reference if _torch_wins("knn", query.shape[0] * query.shape[1] * points.shape[1]) else knn
    return impl.knn_with_dist(query, points, k)


def three_nn(unknown: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``unknown (B,n,3)``, ``known (B,m,3)`` → ``(dist (B,n,3) euclidean, idx (B,n,3) int64)``."""
    impl = reference if _torch_wins("three_nn", unknown.shape[0] * unknown.shape[1] * known.shape[1]) else interpolate
    return impl.three_nn(unknown, known)


def chamfer_nearest(
    x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x (B,N,3)``, ``y (B,M,3)`` → ``d1 (B,N), i1 (B,N) int64, d2 (B,M), i2 (B,M) int64``."""
    impl = reference if _torch_wins("chamfer", x.shape[0] * x.shape[1] * y.shape[1]) else chamfer
    return impl.chamfer_nearest(x, y)
