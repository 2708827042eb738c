"""Triton FPS (compiled on CUDA, else interpreted) gives the reference's exact index sequence."""

from __future__ import annotations

import pytest
import torch
from pointsd_kernels.fps import ONCHIP_MAX_N, furthest_point_sample

from pointsd.ops import reference as ref


# N <= ONCHIP_MAX_N: the on-chip kernel (the farthest points of the last case lie past index 1024);
# above: the blocked kernel.
@pytest.mark.parametrize("B,N,n,start", [(2, 70, 12, 0), (1, 24, 24, 7), (3, 1100, 4, 1099),
                                         (1, ONCHIP_MAX_N + 8, 3, ONCHIP_MAX_N + 7)])
def test_fps_kernel_matches_reference(gen, dev, B, N, n, start):
    xyz = torch.randn(B, N, 3, generator=gen)
    xyz[:, 1030:1040] *= 10  # far points beyond a 1024-point block
    xyz = xyz.to(dev)
    assert torch.equal(furthest_point_sample(xyz, n, start), ref.furthest_point_sample(xyz, n, start))


def test_fps_kernel_ties(tie_grid):
    xyz = tie_grid(1)
    assert torch.equal(furthest_point_sample(xyz, 54, 0), ref.furthest_point_sample(xyz, 54, 0))
