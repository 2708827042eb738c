"""Farthest point sampling as Triton kernels, one program per cloud.

Same contract as :func:`pointsd.ops.reference.furthest_point_sample`: the sequence starts at
``start``, each step takes the point farthest from those chosen (first maximum on ties).

- ``N <= ONCHIP_MAX_N``: :func:`_fps_onchip_kernel` holds the cloud and its running distances in
  registers for all steps; each step is one max-reduction of packed int64 keys
  ``(float bits of d) << 32 | (N-1-j)`` (non-negative floats order like their bits; the larger
  ``N-1-j`` is the lower index, so the maximum is the reference's first arg-max).
- larger clouds: :func:`_fps_kernel` sweeps the cloud in blocks, distances in a global scratch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from pointsd_kernels._launch import EXACT, block

ONCHIP_MAX_N = 8192  # 4 float32 per point in registers: 64 per thread at 16 warps


@triton.jit
def _fps_onchip_kernel(xyz_ptr, out_ptr, N, n, start, BLOCK: tl.constexpr):
    """``xyz (B,N,3)`` float32 → ``out (B,n)`` int64, ``N <= BLOCK``."""
    b = tl.program_id(0).to(tl.int64)
    pts = xyz_ptr + b * N * 3
    j = tl.arange(0, BLOCK)
    valid = j < N
    px = tl.load(pts + j * 3 + 0, mask=valid, other=0.0)
    py = tl.load(pts + j * 3 + 1, mask=valid, other=0.0)
    pz = tl.load(pts + j * 3 + 2, mask=valid, other=0.0)
    dist = tl.full((BLOCK,), float("inf"), tl.float32)
    rank = (N - 1 - j).to(tl.int64)
    cur = start
    for i in range(n):
        tl.store(out_ptr + b * n + i, cur.to(tl.int64))
        dx = px - tl.load(pts + cur * 3 + 0)
        dy = py - tl.load(pts + cur * 3 + 1)
        dz = pz - tl.load(pts + cur * 3 + 2)
        dist = tl.minimum(dist, dx * dx + dy * dy + dz * dz)
        key = tl.where(valid, (dist.to(tl.int32, bitcast=True).to(tl.int64) << 32) | rank, -1)
        best = tl.max(key, axis=0)
        cur = (N - 1 - (best - ((best >> 32) << 32))).to(tl.int32)


@triton.jit
def _fps_kernel(xyz_ptr, dist_ptr, out_ptr, N, n, start, BLOCK: tl.constexpr):
    """``xyz (B,N,3)`` float32, scratch ``dist (B,N)`` = +inf → ``out (B,n)`` int64."""
    b = tl.program_id(0).to(tl.int64)
    pts = xyz_ptr + b * N * 3
    dist = dist_ptr + b * N
    cur = start
    for i in range(n):
        tl.store(out_ptr + b * n + i, cur.to(tl.int64))
        cx = tl.load(pts + cur * 3 + 0)
        cy = tl.load(pts + cur * 3 + 1)
        cz = tl.load(pts + cur * 3 + 2)
        best = -1.0
        best_j = 0
        for lo in range(0, N, BLOCK):
            j = lo + tl.arange(0, BLOCK)
            valid = j < N
            dx = tl.load(pts + j * 3 + 0, mask=valid, other=0.0) - cx
            dy = tl.load(pts + j * 3 + 1, mask=valid, other=0.0) - cy
            dz = tl.load(pts + j * 3 + 2, mask=valid, other=0.0) - cz
            d = tl.minimum(tl.load(dist + j, mask=valid, other=0.0), dx * dx + dy * dy + dz * dz)
            tl.store(dist + j, d, mask=valid)
            d = tl.where(valid, d, -1.0)
            blk_best, blk_j = tl.max(d, axis=0, return_indices=True, return_indices_tie_break_left=True)
            take = blk_best > best
            best_j = tl.where(take, lo + blk_j, best_j)
            best = tl.where(take, blk_best, best)
        cur = best_j


def furthest_point_sample(xyz: torch.Tensor, n: int, start: int) -> torch.Tensor:
    """``xyz (B,N,3)`` float32 contiguous → indices ``(B,n)`` int64."""
    B, N, _ = xyz.shape
    out = torch.empty(B, n, dtype=torch.long, device=xyz.device)
    if N <= ONCHIP_MAX_N:
        BLOCK = block(N, high=ONCHIP_MAX_N)
        _fps_onchip_kernel[(B,)](xyz, out, N, n, start, BLOCK=BLOCK, num_warps=min(16, max(4, BLOCK // 256)),
                                 **EXACT)
        return out
    dist = torch.full((B, N), float("inf"), device=xyz.device, dtype=torch.float32)
    _fps_kernel[(B,)](xyz, dist, out, N, n, start, BLOCK=block(N, high=2048), **EXACT)
    return out
