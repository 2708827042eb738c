"""Inputs whose float32 squared distances depend on the order of operations (see the contract in
:mod:`pointsd.ops.reference`), and a float64 emulation of each candidate order.

With ``s = 2**-12`` and ``t = 1 + 2**-12``, products like ``s*s = 2**-24`` are half an ulp of 1, so
``(1 + s*s) + s*s`` rounds to 1 (ties to even) while ``1 + (s*s + s*s)`` is ``1 + 2**-23``; and
``t*t`` is not a float32, so a fused multiply-add (which skips its rounding) changes the sum.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from pointsd import ops

S, T = 2.0**-12, 1.0 + 2.0**-12
# Offsets from the query: the first four tell the three associations apart, the last four the FMAs.
OFFSETS = [(S, 1, S), (1, S, S), (S, S, 1), (1, 0, 0), (T, S, 0), (S, T, 0), (0, S, T), (T, 0, S)]
QUERY = (3.0, -5.0, 7.0)  # q + offset is exact in float32, so every dx, dy, dz is exact


def _r(v: float) -> float:
    """Round to float32 (values stay in float64 so that the emulated FMA's sum is exact)."""
    return float(np.float32(v))


# Each maps exact (dx, dy, dz) to the float32 squared distance that order of operations gives.
ORDERS: dict[str, Callable[[float, float, float], float]] = {
    "written: (x*x + y*y) + z*z": lambda x, y, z: _r(_r(_r(x * x) + _r(y * y)) + _r(z * z)),
    "x*x + (y*y + z*z)": lambda x, y, z: _r(_r(x * x) + _r(_r(y * y) + _r(z * z))),
    "(x*x + z*z) + y*y": lambda x, y, z: _r(_r(_r(x * x) + _r(z * z)) + _r(y * y)),
    "fma(z, z, fma(y, y, x*x))": lambda x, y, z: _r(z * z + _r(y * y + _r(x * x))),
    "fma(z, z, x*x + y*y)": lambda x, y, z: _r(z * z + _r(_r(x * x) + _r(y * y))),
    "fma(y, y, x*x) + z*z": lambda x, y, z: _r(_r(y * y + _r(x * x)) + _r(z * z)),
}
WRITTEN = next(iter(ORDERS))


def clouds() -> tuple[torch.Tensor, torch.Tensor]:
    """``query (2,1,3)`` and ``points (2,5,3)``: each cloud is the query then four of :data:`OFFSETS`
    (batch 0 the association cases, batch 1 the FMA cases) added to it."""
    q = torch.tensor(QUERY)
    off = torch.tensor(OFFSETS, dtype=torch.float64).float()
    pts = torch.stack([torch.cat([q[None], q + off[4 * b:4 * b + 4]]) for b in range(2)])
    return q.expand(2, 1, 3).contiguous(), pts


def expected_sq_dist(order: str = WRITTEN) -> torch.Tensor:
    """Squared distances ``(2,5)`` from the query to each point of :func:`clouds` under ``order``."""
    zero = [(0.0, 0.0, 0.0)]
    rows = [[ORDERS[order](*o) for o in zero + OFFSETS[4 * b:4 * b + 4]] for b in range(2)]
    return torch.tensor(rows, dtype=torch.float32)


def expected_fps(order: str = WRITTEN) -> torch.Tensor:
    """FPS of :func:`clouds` with 2 samples from index 0 under ``order``: ``(2,2)`` int64."""
    return torch.stack([torch.zeros(2, dtype=torch.long), expected_sq_dist(order).argmax(1)], 1)


def assert_public_ops_follow_written_order(device: torch.device) -> None:
    """KNN, three_nn, chamfer and FPS of the selected backend on ``device`` give the written order's
    distances bit for bit and its indices (ties to the lower index)."""
    q, pts = (t.to(device) for t in clouds())
    d = expected_sq_dist()
    order = torch.argsort(d, dim=1, stable=True)
    dist, idx = ops.knn_with_dist(q, pts, 5)
    assert torch.equal(idx[:, 0].cpu(), order)
    assert torch.equal(dist[:, 0].cpu(), torch.gather(d, 1, order))
    nn_dist, nn_idx = ops.three_nn(q, pts[:, 1:])
    assert torch.equal(nn_idx[:, 0].cpu() + 1, order[:, 1:4])
    assert torch.equal(nn_dist[:, 0].cpu(), torch.gather(d, 1, order[:, 1:4]).sqrt())
    assert torch.equal(ops.chamfer_distance(pts, q)[0].cpu(), d)
    assert torch.equal(ops.furthest_point_sample(pts, 2).cpu(), expected_fps())
