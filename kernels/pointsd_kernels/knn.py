"""Exact k-nearest neighbours as Triton kernels, sorted by distance with ties broken by the lower
index, exactly as :func:`pointsd.ops.reference.knn` (distances in the reference's written order).

- ``k <= SORTED_MAX_K``: :func:`_knn_sorted_kernel` computes each distance once. Per query it keeps
  the ``T`` smallest packed keys ``(float bits of d) << 32 | index`` in registers, sorted: the bits
  of a non-negative float order like its value, so one int64 order is the (distance, index) order
  and ties stay exact. Each tile of ``T`` points is sorted descending; the element-wise minimum with
  the ascending top-``T`` is the ``T`` smallest of both (a bitonic sequence), sorted again.
- larger ``k``: :func:`_knn_select_kernel` runs ``k`` selection passes over the points; pass ``t``
  finds the smallest ``(distance, index)`` pair strictly after the one found by pass ``t-1``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from pointsd_kernels._launch import EXACT, block

_NO_INDEX = 2**31 - 1
_NO_KEY = 2**63 - 1
SORTED_MAX_K = 64  # above this the register top-k would spill: selection passes instead


@triton.jit
def _load_queries(q, m, m_ok):
    """The query tile of one cloud ``q (M,3)``: x, y, z as ``(BLOCK_M, 1)`` columns."""
    qx = tl.load(q + m * 3 + 0, mask=m_ok, other=0.0)[:, None]
    qy = tl.load(q + m * 3 + 1, mask=m_ok, other=0.0)[:, None]
    qz = tl.load(q + m * 3 + 2, mask=m_ok, other=0.0)[:, None]
    return qx, qy, qz


@triton.jit
def _squared_distances(qx, qy, qz, p, j, j_ok):
    """``(BLOCK_M, len(j))`` squared distances to points ``j`` of ``p (N,3)``, summed in the reference's order."""
    dx = qx - tl.load(p + j * 3 + 0, mask=j_ok, other=0.0)[None, :]
    dy = qy - tl.load(p + j * 3 + 1, mask=j_ok, other=0.0)[None, :]
    dz = qz - tl.load(p + j * 3 + 2, mask=j_ok, other=0.0)[None, :]
    return dx * dx + dy * dy + dz * dz


@triton.jit
def _knn_sorted_kernel(q_ptr, p_ptr, dist_ptr, idx_ptr, M, N, k,
                       BLOCK_M: tl.constexpr, T: tl.constexpr, NO_KEY: tl.constexpr):
    """``q (B,M,3)``, ``p (B,N,3)`` float32 → ``dist (B,M,k)`` squared, ``idx (B,M,k)`` int64; ``k <= T``."""
    b = tl.program_id(0).to(tl.int64)
    m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    m_ok = m < M
    p = p_ptr + b * N * 3
    qx, qy, qz = _load_queries(q_ptr + b * M * 3, m, m_ok)
    top = tl.full((BLOCK_M, T), NO_KEY, tl.int64)
    for lo in range(0, N, T):
        j = lo + tl.arange(0, T)
        j_ok = j < N
        d = _squared_distances(qx, qy, qz, p, j, j_ok)
        key = (d.to(tl.int32, bitcast=True).to(tl.int64) << 32) | j[None, :].to(tl.int64)
        key = tl.where(j_ok[None, :], key, NO_KEY)
        top = tl.sort(tl.minimum(top, tl.sort(key, descending=True)))
    col = tl.arange(0, T)[None, :]
    out = (b * M + m)[:, None] * k + col
    ok = m_ok[:, None] & (col < k)
    bits = top >> 32
    tl.store(dist_ptr + out, bits.to(tl.int32).to(tl.float32, bitcast=True), mask=ok)
    tl.store(idx_ptr + out, top - (bits << 32), mask=ok)


@triton.jit
def _knn_select_kernel(q_ptr, p_ptr, dist_ptr, idx_ptr, M, N, k,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, NO_INDEX: tl.constexpr):
    """``q (B,M,3)``, ``p (B,N,3)`` float32 → ``dist (B,M,k)`` squared, ``idx (B,M,k)`` int64."""
    b = tl.program_id(0).to(tl.int64)
    m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    m_ok = m < M
    p = p_ptr + b * N * 3
    qx, qy, qz = _load_queries(q_ptr + b * M * 3, m, m_ok)
    prev_d = tl.full((BLOCK_M,), -1.0, tl.float32)
    prev_j = tl.full((BLOCK_M,), -1, tl.int32)
    for t in range(k):
        best_d = tl.full((BLOCK_M,), float("inf"), tl.float32)
        best_j = tl.full((BLOCK_M,), NO_INDEX, tl.int32)
        for lo in range(0, N, BLOCK_N):
            j = lo + tl.arange(0, BLOCK_N)
            j_ok = j < N
            d = _squared_distances(qx, qy, qz, p, j, j_ok)
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
    if k <= SORTED_MAX_K:
        T = block(k)
        BLOCK_M = block(M, low=1, high=512 // T)
        _knn_sorted_kernel[(B, triton.cdiv(M, BLOCK_M))](query, points, dist, idx, M, N, k,
                                                         BLOCK_M=BLOCK_M, T=T, NO_KEY=_NO_KEY, **EXACT)
        return dist, idx
    BLOCK_M = block(M, high=32)
    _knn_select_kernel[(B, triton.cdiv(M, BLOCK_M))](query, points, dist, idx, M, N, k, BLOCK_M=BLOCK_M,
                                                     BLOCK_N=block(N, high=128), NO_INDEX=_NO_INDEX, **EXACT)
    return dist, idx
