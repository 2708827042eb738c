"""Fast CPU backend: numba kernels over numpy views of contiguous float32 tensors.

Every kernel computes squared distances with the same float32 formula as
:mod:`pointsd.ops.reference` (``dx*dx + dy*dy + dz*dz``, left to right, no fused multiply-add),
so indices are identical to the reference, ties included:
FPS keeps the first maximum (lowest index); KNN / three_nn keep a list sorted by
``(distance, index)``, a later point replacing the k-th only when strictly closer.
Inputs reach these functions already validated, cast to float32 and made contiguous.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

_F32_INF = np.float32(np.inf)


@numba.njit(cache=True, inline="always")
def _sqdist(a: np.ndarray, i: int, b: np.ndarray, j: int) -> np.float32:
    """Squared distance between ``a[i]`` and ``b[j]`` (both ``(·,3)`` float32), in float32."""
    dx = a[i, 0] - b[j, 0]
    dy = a[i, 1] - b[j, 1]
    dz = a[i, 2] - b[j, 2]
    return dx * dx + dy * dy + dz * dz


@numba.njit(cache=True, parallel=True)
def _fps_kernel(xyz: np.ndarray, n: int, start: int, out: np.ndarray) -> None:
    """``xyz (B,N,3)`` float32 → ``out (B,n)`` int64, one batch element per thread."""
    B, N, _ = xyz.shape
    for b in numba.prange(B):
        pts = xyz[b]
        dist = np.full(N, _F32_INF, dtype=np.float32)
        cur = start
        for i in range(n):
            out[b, i] = cur
            best = np.float32(-1.0)
            best_j = 0
            for j in range(N):
                d = _sqdist(pts, j, pts, cur)
                if d < dist[j]:
                    dist[j] = d
                if dist[j] > best:
                    best = dist[j]
                    best_j = j
            cur = best_j


@numba.njit(cache=True, inline="always")
def _k_smallest(q: np.ndarray, i: int, pts: np.ndarray, k: int, out_d: np.ndarray, out_i: np.ndarray) -> None:
    """The ``k`` points of ``pts (N,3)`` nearest to ``q[i]``, sorted by (distance, index).

    Insertion into a sorted list of length ``k``; a candidate enters only when strictly closer
    than the current k-th, and is placed after equal distances, so ties keep the lower index.
    """
    N = pts.shape[0]
    for t in range(k):
        out_d[t] = _F32_INF
        out_i[t] = -1
    for j in range(N):
        d = _sqdist(q, i, pts, j)
        if d < out_d[k - 1] or out_i[k - 1] < 0:
            t = k - 1
            while t > 0 and (out_d[t - 1] > d or out_i[t - 1] < 0):
                out_d[t] = out_d[t - 1]
                out_i[t] = out_i[t - 1]
                t -= 1
            out_d[t] = d
            out_i[t] = j


@numba.njit(cache=True, parallel=True)
def _knn_kernel(query: np.ndarray, points: np.ndarray, k: int, out_d: np.ndarray, out_i: np.ndarray) -> None:
    """``query (B,M,3)``, ``points (B,N,3)`` → ``out_d (B,M,k)`` squared, ``out_i (B,M,k)`` int64."""
    B, M, _ = query.shape
    for r in numba.prange(B * M):
        b = r // M
        m = r - b * M
        _k_smallest(query[b], m, points[b], k, out_d[b, m], out_i[b, m])


@numba.njit(cache=True, parallel=True)
def _chamfer_kernel(
    x: np.ndarray, y: np.ndarray, d1: np.ndarray, i1: np.ndarray, d2: np.ndarray, i2: np.ndarray
) -> None:
    """Both nearest-neighbour directions in one pass over the ``N×M`` pairs of each batch element.

    ``x (B,N,3)``, ``y (B,M,3)`` → ``d1, i1 (B,N)``, ``d2, i2 (B,M)``; first minimum wins.
    """
    B, N, _ = x.shape
    M = y.shape[1]
    for b in numba.prange(B):
        xb = x[b]
        yb = y[b]
        for j in range(M):
            d2[b, j] = _F32_INF
            i2[b, j] = 0
        for i in range(N):
            best = _F32_INF
            best_j = 0
            for j in range(M):
                d = _sqdist(xb, i, yb, j)
                if d < best:
                    best = d
                    best_j = j
                if d < d2[b, j]:
                    d2[b, j] = d
                    i2[b, j] = i
            d1[b, i] = best
            i1[b, i] = best_j


@numba.njit(cache=True, parallel=True)
def _interpolate_kernel(features: np.ndarray, idx: np.ndarray, weight: np.ndarray, out: np.ndarray) -> None:
    """``features (B,C,m)``, ``idx (B,n,3)`` int64, ``weight (B,n,3)`` → ``out (B,C,n)``."""
    B, C, _ = features.shape
    n = idx.shape[1]
    for r in numba.prange(B * C):
        b = r // C
        c = r - b * C
        f = features[b, c]
        for p in range(n):
            out[b, c, p] = (
                f[idx[b, p, 0]] * weight[b, p, 0]
                + f[idx[b, p, 1]] * weight[b, p, 1]
                + f[idx[b, p, 2]] * weight[b, p, 2]
            )


def furthest_point_sample(xyz: torch.Tensor, n: int, start: int) -> torch.Tensor:
    """``xyz (B,N,3)`` float32 contiguous → ``(B,n)`` int64."""
    out = torch.empty(xyz.shape[0], n, dtype=torch.long)
    _fps_kernel(xyz.numpy(), n, start, out.numpy())
    return out


def knn_with_dist(query: torch.Tensor, points: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``query (B,M,3)``, ``points (B,N,3)`` → ``(sq. dist (B,M,k) float32, idx (B,M,k) int64)``."""
    B, M, _ = query.shape
    dist = torch.empty(B, M, k, dtype=torch.float32)
    idx = torch.empty(B, M, k, dtype=torch.long)
    _knn_kernel(query.numpy(), points.numpy(), k, dist.numpy(), idx.numpy())
    return dist, idx


def three_nn(unknown: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``unknown (B,n,3)``, ``known (B,m,3)`` → ``(dist (B,n,3) euclidean, idx (B,n,3) int64)``."""
    dist2, idx = knn_with_dist(unknown, known, 3)
    return dist2.clamp_min_(0).sqrt_(), idx


def chamfer_nearest(
    x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x (B,N,3)``, ``y (B,M,3)`` → ``d1 (B,N), i1 (B,N) int64, d2 (B,M), i2 (B,M) int64``."""
    B, N, _ = x.shape
    M = y.shape[1]
    d1, d2 = torch.empty(B, N), torch.empty(B, M)
    i1 = torch.empty(B, N, dtype=torch.long)
    i2 = torch.empty(B, M, dtype=torch.long)
    _chamfer_kernel(x.numpy(), y.numpy(), d1.numpy(), i1.numpy(), d2.numpy(), i2.numpy())
    return d1, i1, d2, i2


def three_interpolate(features: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``features (B,C,m)`` float32, ``idx (B,n,3)`` int64, ``weight (B,n,3)`` float32 → ``(B,C,n)``."""
    B, C, _ = features.shape
    out = torch.empty(B, C, idx.shape[1], dtype=torch.float32)
    _interpolate_kernel(features.numpy(), idx.numpy(), weight.numpy(), out.numpy())
    return out
