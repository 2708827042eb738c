"""Triton three_nn and three_interpolate (compiled on CUDA, else interpreted) against the reference."""

from __future__ import annotations

import torch
from pointsd_kernels.interpolate import three_interpolate, three_nn

from pointsd.ops import reference as ref


def test_three_nn_kernel_matches_reference(gen, dev):
    known = torch.randn(2, 300, 3, generator=gen)  # several tiles of known points
    unknown = torch.cat([torch.randn(2, 70, 3, generator=gen), known[:, 200:203]], 1)
    unknown, known = unknown.to(dev), known.to(dev)
    dist, idx = three_nn(unknown, known)
    ref_dist, ref_idx = ref.three_nn(unknown, known)
    assert torch.equal(idx, ref_idx) and torch.equal(dist, ref_dist)


def test_three_nn_kernel_ties_and_minimal_known(tie_grid):
    known = tie_grid(1)
    query = (known[:, ::4] + 0.5).contiguous()
    assert torch.equal(three_nn(query, known)[1], ref.three_nn(query, known)[1])
    three = known[:, :3].contiguous()
    assert torch.equal(three_nn(query, three)[1], ref.three_nn(query, three)[1])


def test_three_interpolate_kernel_matches_reference(gen, dev):
    feats = torch.randn(2, 40, 50, generator=gen).to(dev)
    idx = torch.randint(0, 50, (2, 70, 3), generator=gen).to(dev)
    weight = torch.rand(2, 70, 3, generator=gen).to(dev)
    torch.testing.assert_close(three_interpolate(feats, idx, weight), ref.three_interpolate(feats, idx, weight))
