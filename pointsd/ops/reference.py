"""Naive pure-torch point operations: the ground truth every fast path is tested against.

Conventions shared by all backends (see :mod:`pointsd.ops`):
- FPS starts at index ``start`` (0, as ``pointnet2_ops``) and, on ties, takes the lowest index.
- KNN returns neighbours sorted by increasing distance, ties broken by the lower index.

Order of floating-point operations (the one written contract; every backend follows it)
---------------------------------------------------------------------------------------
The squared distance between points ``a`` and ``b`` is computed in float32 as::

    dx = a.x - b.x;  dy = a.y - b.y;  dz = a.z - b.z      # one rounding each
    d  = (dx*dx + dy*dy) + dz*dz                           # left to right, every * and + rounded

with no fused multiply-add (an FMA skips the rounding of the product) and no other association
(``dx*dx + (dy*dy + dz*dz)`` can differ in the last bit). ``b - a`` instead of ``a - b`` is allowed:
negation is exact. Who follows it, and how:

- here, :func:`sq_dist_xyz`: one eager torch op per step on coordinate columns. Not
  ``(diff*diff).sum(-1)``: a reduction's order is the library's choice (CUDA sums in another order
  than the CPU), and eager element-wise ops are never fused into FMA;
- :mod:`pointsd.ops.cpu` (numba): the same expression, scalar by scalar; numba contracts to FMA only
  under ``fastmath``, which these kernels never set;
- the Triton kernels (``pointsd_kernels``): the same expression, compiled with
  ``enable_fp_fusion=False`` (``pointsd_kernels._launch.EXACT``; checked in the PTX by
  ``tests/kernels/cuda_compile_check.py``); the interpreter rounds each numpy op alike.

Distances being bit-identical, every selection (min, arg-max, top-k with the lower index on ties)
gives identical indices. ``tests/ops/test_float_order.py`` holds inputs whose float32 result
depends on the association, so another order fails there on any device.
"""

from __future__ import annotations

import torch


def furthest_point_sample(xyz: torch.Tensor, n: int, start: int = 0) -> torch.Tensor:
    """Farthest point sampling. ``xyz (B,N,3)`` → indices ``(B,n)`` int64."""
    B, N, _ = xyz.shape
    pts = xyz.float()
    idx = torch.empty(B, n, dtype=torch.long, device=xyz.device)
    dist = torch.full((B, N), float("inf"), device=xyz.device)
    cur = torch.full((B,), start, dtype=torch.long, device=xyz.device)
    batch = torch.arange(B, device=xyz.device)
    for i in range(n):
        idx[:, i] = cur
        d = sq_dist_xyz(pts, pts[batch, cur].unsqueeze(1))
        dist = torch.minimum(dist, d)
        cur = dist.argmax(dim=1)
    return idx


def gather(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Batched gather. ``points (B,N,C)``, ``idx (B,*S)`` → ``(B,*S,C)``."""
    B = points.shape[0]
    flat = idx.reshape(B, -1)
    out = torch.gather(points, 1, flat.unsqueeze(-1).expand(-1, -1, points.shape[-1]))
    return out.reshape(*idx.shape, points.shape[-1])


def sq_dist_xyz(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distances in the written order (module docstring), broadcasting ``a (...,3)`` against
    ``b (...,3)`` → ``(...)`` float32."""
    a, b = a.float(), b.float()
    dx = a[..., 0] - b[..., 0]
    dy = a[..., 1] - b[..., 1]
    dz = a[..., 2] - b[..., 2]
    return (dx * dx + dy * dy) + dz * dz


def square_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact pairwise squared distances. ``a (B,M,3)``, ``b (B,N,3)`` → ``(B,M,N)`` float32."""
    return sq_dist_xyz(a.unsqueeze(2), b.unsqueeze(1))


def knn(query: torch.Tensor, points: torch.Tensor, k: int) -> torch.Tensor:
    """k nearest neighbours. ``query (B,M,3)``, ``points (B,N,3)`` → indices ``(B,M,k)`` int64."""
    d = square_distance(query, points)
    order = torch.argsort(d, dim=-1, stable=True)
    return order[..., :k]


def knn_with_dist(query: torch.Tensor, points: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`knn` with its squared distances: ``(dist (B,M,k) float32, idx (B,M,k) int64)``."""
    d = square_distance(query, points)
    order = torch.argsort(d, dim=-1, stable=True)[..., :k]
    return torch.gather(d, -1, order), order


def three_nn(unknown: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """3 nearest known points of each unknown point.

    ``unknown (B,n,3)``, ``known (B,m,3)`` → ``(dist (B,n,3) euclidean, idx (B,n,3) int64)``.
    """
    d = square_distance(unknown, known)
    order = torch.argsort(d, dim=-1, stable=True)[..., :3]
    dist2 = torch.gather(d, -1, order)
    return dist2.clamp_min(0).sqrt(), order


def three_interpolate(features: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted sum of 3 neighbours' features. ``features (B,C,m)``, ``idx, weight (B,n,3)`` → ``(B,C,n)``."""
    B, C, _ = features.shape
    n = idx.shape[1]
    picked = torch.gather(features, 2, idx.reshape(B, 1, n * 3).expand(-1, C, -1)).reshape(B, C, n, 3)
    return (picked * weight.unsqueeze(1).to(features.dtype)).sum(-1)


def chamfer_distance(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest squared distances both ways. ``x (B,N,3)``, ``y (B,M,3)`` → ``(d_xy (B,N), d_yx (B,M))``."""
    d = square_distance(x, y)
    return d.min(dim=2).values, d.min(dim=1).values


def chamfer_nearest(
    x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`chamfer_distance` with the nearest indices (first minimum):
    ``d1 (B,N), i1 (B,N) int64, d2 (B,M), i2 (B,M) int64``."""
    d = square_distance(x, y)
    d1, i1 = d.min(dim=2)
    d2, i2 = d.min(dim=1)
    return d1, i1, d2, i2
