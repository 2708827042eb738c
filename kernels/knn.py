"""Exact k-nearest neighbours as a Triton kernel.

Each program takes ``BLOCK_M`` queries of one cloud and runs ``k`` selection passes over the
points; pass ``t`` finds the smallest ``(distance, index)`` pair strictly after the one found by
pass ``t-1`` in lexicographic order. The result is sorted by distance with ties broken by the
lower index, exactly as :func:`pointsd.ops.reference.knn` (distances rounded identically).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from pointsd_kernels._launch import EXACT, block

_NO_INDEX = 2**31 - 1


@triton.jit
def _knn_kernel(q_ptr, p_ptr, dist_ptr, idx_ptr, M, N, k,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, NO_INDEX: tl.constexpr):
    """``q (B,M,3)``, ``p (B,N,3)`` float32 → ``dist (B,M,k)`` squared, ``idx (B,M,k)`` int64."""
    b = tl.program_id(0).to(tl.int64)
    m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    m_ok = m < M
    q = q_ptr + b * M * 3
    p = p_ptr + b * N * 3
    qx = tl.load(q + m * 3 + 0, mask=m_ok, other=0.0)[:, None]
    qy = tl.load(q + m * 3 + 1, mask=m_ok, other=0.0)[:, None]
    qz = tl.load(q + m * 3 + 2, mask=m_ok, other=0.0)[:, None]
    prev_d = tl.full((BLOCK_M,), -1.0, tl.float32)
    prev_j = tl.full((BLOCK_M,), -1, tl.int32)
    for t in range(k):
        best_d = tl.full((BLOCK_M,), float("inf"), tl.float32)
        best_j = tl.full((BLOCK_M,), NO_INDEX, tl.int32)
        for lo in range(0, N, BLOCK_N):
            j = lo + tl.arange(0, BLOCK_N)
            j_ok = j < N
            dx = qx - tl.load(p + j * 3 + 0, mask=j_ok, other=0.0)[None, :]
            dy = qy - tl.load(p + j * 3 + 1, mask=j_ok, other=0.0)[None, :]
            dz = qz - tl.load(p + j * 3 + 2, mask=j_ok, other=0.0)[None, :]
            d = dx * dx + dy * dy + dz * dz
            jj = j[None, :]
            after = (d > prev_d[:, None]) | ((d == prev_d[:, None]) & (jj > prev_j[:, None]))
            cand = after & j_ok[None, :]
            d = tl.where(cand, d, float("inf"))
            blk_d = tl.min(d, axis=1)
            blk_j = tl.min(tl.where(cand & (d == blk_d[:, None]), jj, NO_INDEX), axis=1)
            take = (blk_d < best_d) | ((blk_d == best_d) & (blk_j < best_j))
            best_d = tl.where(take, blk_d, best_d)
            best_j = tl.where(take, blk_j, best_j)
        out = (b * M + m) * k + t
        tl.store(dist_ptr + out, best_d, mask=m_ok)
        tl.store(idx_ptr + out, best_j.to(tl.int64), mask=m_ok)
        prev_d = best_d
        prev_j = best_j


def knn_with_dist(query: torch.Tensor, points: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``query (B,M,3)``, ``points (B,N,3)`` float32 contiguous → ``(dist (B,M,k), idx (B,M,k) int64)``."""
    B, M, _ = query.shape
    N = points.shape[1]
    dist = torch.empty(B, M, k, dtype=torch.float32, device=query.device)
    idx = torch.empty(B, M, k, dtype=torch.long, device=query.device)
    BLOCK_M = block(M, high=32)
    grid = (B, triton.cdiv(M, BLOCK_M))
    _knn_kernel[grid](query, points, dist, idx, M, N, k,
                      BLOCK_M=BLOCK_M, BLOCK_N=block(N, high=128), NO_INDEX=_NO_INDEX, **EXACT)
    return dist, idx
