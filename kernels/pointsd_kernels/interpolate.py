"""three_nn and three_interpolate as Triton kernels (PointNet++ feature propagation).

``three_nn`` sweeps the known points in tiles and keeps, per query, a sorted top-3 of
``(distance, index)``: each tile gives up its three smallest pairs in order, each inserted where it
is lexicographically smaller, so ties keep the lower index, as :func:`pointsd.ops.reference.three_nn`
(infinite distances, from overflow, included).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from pointsd_kernels._launch import EXACT, block

_NO_INDEX = 2**31 - 1


@triton.jit
def _three_nn_kernel(u_ptr, k_ptr, dist_ptr, idx_ptr, n, m,
                     BLOCK_U: tl.constexpr, BLOCK_K: tl.constexpr, NO_INDEX: tl.constexpr):
    """``unknown (B,n,3)``, ``known (B,m,3)`` float32 → ``dist (B,n,3)`` squared, ``idx (B,n,3)`` int64."""
    b = tl.program_id(0).to(tl.int64)
    i = tl.program_id(1) * BLOCK_U + tl.arange(0, BLOCK_U)
    i_ok = i < n
    u = u_ptr + b * n * 3
    kp = k_ptr + b * m * 3
    ux = tl.load(u + i * 3 + 0, mask=i_ok, other=0.0)[:, None]
    uy = tl.load(u + i * 3 + 1, mask=i_ok, other=0.0)[:, None]
    uz = tl.load(u + i * 3 + 2, mask=i_ok, other=0.0)[:, None]
    inf = float("inf")
    d0 = tl.full((BLOCK_U,), inf, tl.float32)
    d1 = tl.full((BLOCK_U,), inf, tl.float32)
    d2 = tl.full((BLOCK_U,), inf, tl.float32)
    j0 = tl.full((BLOCK_U,), NO_INDEX, tl.int32)
    j1 = tl.full((BLOCK_U,), NO_INDEX, tl.int32)
    j2 = tl.full((BLOCK_U,), NO_INDEX, tl.int32)
    for lo in range(0, m, BLOCK_K):
        j = lo + tl.arange(0, BLOCK_K)
        j_ok = j < m
        dx = ux - tl.load(kp + j * 3 + 0, mask=j_ok, other=0.0)[None, :]
        dy = uy - tl.load(kp + j * 3 + 1, mask=j_ok, other=0.0)[None, :]
        dz = uz - tl.load(kp + j * 3 + 2, mask=j_ok, other=0.0)[None, :]
        d = dx * dx + dy * dy + dz * dz
        jj = j[None, :]
        live = tl.broadcast_to(j_ok[None, :], (BLOCK_U, BLOCK_K))  # in range, not yet taken
        for _ in tl.static_range(3):
            cd = tl.min(tl.where(live, d, inf), axis=1)
            cj = tl.min(tl.where(live & (d == cd[:, None]), jj, NO_INDEX), axis=1)
            live = live & (jj != cj[:, None])
            in0 = (cd < d0) | ((cd == d0) & (cj < j0))
            in1 = (cd < d1) | ((cd == d1) & (cj < j1))
            in2 = (cd < d2) | ((cd == d2) & (cj < j2))
            d2 = tl.where(in1, d1, tl.where(in2, cd, d2))
            j2 = tl.where(in1, j1, tl.where(in2, cj, j2))
            d1 = tl.where(in0, d0, tl.where(in1, cd, d1))
            j1 = tl.where(in0, j0, tl.where(in1, cj, j1))
            d0 = tl.where(in0, cd, d0)
            j0 = tl.where(in0, cj, j0)
    out = (b * n + i) * 3
    tl.store(dist_ptr + out + 0, d0, mask=i_ok)
    tl.store(dist_ptr + out + 1, d1, mask=i_ok)
    tl.store(dist_ptr + out + 2, d2, mask=i_ok)
    tl.store(idx_ptr + out + 0, j0.to(tl.int64), mask=i_ok)
    tl.store(idx_ptr + out + 1, j1.to(tl.int64), mask=i_ok)
    tl.store(idx_ptr + out + 2, j2.to(tl.int64), mask=i_ok)


@triton.jit
def _three_interpolate_kernel(f_ptr, idx_ptr, w_ptr, out_ptr, C, m, n,
                              BLOCK_C: tl.constexpr, BLOCK_N: tl.constexpr):
    """``features (B,C,m)``, ``idx (B,n,3)`` int64, ``weight (B,n,3)`` float32 → ``out (B,C,n)``."""
    b = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    p = tl.program_id(2) * BLOCK_N + tl.arange(0, BLOCK_N)
    c_ok = c < C
    p_ok = p < n
    ok = c_ok[:, None] & p_ok[None, :]
    feats = f_ptr + b * C * m + c[:, None] * m
    acc = tl.zeros((BLOCK_C, BLOCK_N), tl.float32)
    for t in tl.static_range(3):
        nbr = tl.load(idx_ptr + (b * n + p) * 3 + t, mask=p_ok, other=0)
        w = tl.load(w_ptr + (b * n + p) * 3 + t, mask=p_ok, other=0.0)
        acc += tl.load(feats + nbr[None, :], mask=ok, other=0.0) * w[None, :]
    tl.store(out_ptr + b * C * n + c[:, None] * n + p[None, :], acc, mask=ok)


def three_nn(unknown: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``unknown (B,n,3)``, ``known (B,m≥3,3)`` float32 contiguous → ``(dist (B,n,3) euclidean, idx int64)``."""
    B, n, _ = unknown.shape
    m = known.shape[1]
    dist = torch.empty(B, n, 3, dtype=torch.float32, device=unknown.device)
    idx = torch.empty(B, n, 3, dtype=torch.long, device=unknown.device)
    BLOCK_U = block(n, high=64)
    _three_nn_kernel[(B, triton.cdiv(n, BLOCK_U))](
        unknown, known, dist, idx, n, m, BLOCK_U=BLOCK_U, BLOCK_K=block(m, high=128), NO_INDEX=_NO_INDEX, **EXACT
    )
    return dist.clamp_min_(0).sqrt_(), idx


def three_interpolate(features: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``features (B,C,m)`` float32, ``idx (B,n,3)`` int64, ``weight (B,n,3)`` float32 → ``(B,C,n)``."""
    B, C, m = features.shape
    n = idx.shape[1]
    out = torch.empty(B, C, n, dtype=torch.float32, device=features.device)
    BLOCK_C, BLOCK_N = block(C, high=32), block(n, high=64)
    grid = (B, triton.cdiv(C, BLOCK_C), triton.cdiv(n, BLOCK_N))
    _three_interpolate_kernel[grid](features, idx, weight, out, C, m, n, BLOCK_C=BLOCK_C, BLOCK_N=BLOCK_N)
    return out
