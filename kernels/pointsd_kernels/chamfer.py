"""Chamfer nearest neighbours as a Triton kernel: for each point of ``a``, its nearest in ``b``.

One program per ``BLOCK_A`` points of one cloud sweeps ``b`` in tiles; the minimum keeps the first
index on ties. Run once each way. Squared distances round exactly as the torch reference.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from pointsd_kernels._launch import EXACT, block


@triton.jit
def _nearest_kernel(a_ptr, b_ptr, dist_ptr, idx_ptr, NA, NB, BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr):
    """``a (B,NA,3)``, ``b (B,NB,3)`` float32 → ``dist (B,NA)`` squared, ``idx (B,NA)`` int64."""
    bid = tl.program_id(0).to(tl.int64)
    i = tl.program_id(1) * BLOCK_A + tl.arange(0, BLOCK_A)
    i_ok = i < NA
    a = a_ptr + bid * NA * 3
    p = b_ptr + bid * NB * 3
    ax = tl.load(a + i * 3 + 0, mask=i_ok, other=0.0)[:, None]
    ay = tl.load(a + i * 3 + 1, mask=i_ok, other=0.0)[:, None]
    az = tl.load(a + i * 3 + 2, mask=i_ok, other=0.0)[:, None]
    best_d = tl.full((BLOCK_A,), float("inf"), tl.float32)
    best_j = tl.zeros((BLOCK_A,), tl.int32)
    for lo in range(0, NB, BLOCK_B):
        j = lo + tl.arange(0, BLOCK_B)
        j_ok = j < NB
        dx = ax - tl.load(p + j * 3 + 0, mask=j_ok, other=0.0)[None, :]
        dy = ay - tl.load(p + j * 3 + 1, mask=j_ok, other=0.0)[None, :]
        dz = az - tl.load(p + j * 3 + 2, mask=j_ok, other=0.0)[None, :]
        d = tl.where(j_ok[None, :], dx * dx + dy * dy + dz * dz, float("inf"))
        blk_d, blk_j = tl.min(d, axis=1, return_indices=True, return_indices_tie_break_left=True)
        take = blk_d < best_d
        best_j = tl.where(take, lo + blk_j, best_j)
        best_d = tl.where(take, blk_d, best_d)
    out = bid * NA + i
    tl.store(dist_ptr + out, best_d, mask=i_ok)
    tl.store(idx_ptr + out, best_j.to(tl.int64), mask=i_ok)


def _nearest(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    B, NA, _ = a.shape
    dist = torch.empty(B, NA, dtype=torch.float32, device=a.device)
    idx = torch.empty(B, NA, dtype=torch.long, device=a.device)
    BLOCK_A = block(NA, high=64)
    _nearest_kernel[(B, triton.cdiv(NA, BLOCK_A))](
        a, b, dist, idx, NA, b.shape[1], BLOCK_A=BLOCK_A, BLOCK_B=block(b.shape[1], high=128), **EXACT
    )
    return dist, idx


def chamfer_nearest(
    x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x (B,N,3)``, ``y (B,M,3)`` float32 contiguous → ``d1, i1 (B,N)``, ``d2, i2 (B,M)`` (int64 indices)."""
    d1, i1 = _nearest(x, y)
    d2, i2 = _nearest(y, x)
    return d1, i1, d2, i2
