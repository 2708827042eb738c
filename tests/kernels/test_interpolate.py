"""Triton three_nn and three_interpolate (interpreter) against the reference."""

from __future__ import annotations

import torch
from pointsd_kernels.interpolate import three_interpolate, three_nn

from pointsd import ops
from pointsd.ops import reference as ref


def test_three_nn_kernel_matches_reference(gen):
    known = torch.randn(2, 300, 3, generator=gen)  # several tiles of known points
    unknown = torch.cat([torch.randn(2, 70, 3, generator=gen), known[:, 200:203]], 1)
    dist, idx = three_nn(unknown, known)
    ref_dist, ref_idx = ref.three_nn(unknown, known)
    assert torch.equal(idx, ref_idx) and torch.equal(dist, ref_dist)


def test_three_nn_kernel_ties_and_minimal_known(tie_grid):
    known = tie_grid(1)
    query = known[:, ::4] + 0.5
    assert torch.equal(three_nn(query, known)[1], ref.three_nn(query, known)[1])
    three = known[:, :3]
    assert torch.equal(three_nn(query, three)[1], ref.three_nn(query, three)[1])


def test_three_interpolate_kernel_and_gradients(gen):
    feats = torch.randn(2, 40, 50, generator=gen)
    idx = torch.randint(0, 50, (2, 70, 3), generator=gen)
    weight = torch.rand(2, 70, 3, generator=gen)
    torch.testing.assert_close(three_interpolate(feats, idx, weight), ref.three_interpolate(feats, idx, weight))
    f = feats.half().requires_grad_()
    with ops.use_backend("triton"):
        out = ops.three_interpolate(f, idx.int(), weight)
    assert out.dtype == torch.float16
    out.float().pow(2).sum().backward()
    expect = f.detach().float().requires_grad_()
    ref.three_interpolate(expect, idx, weight).pow(2).sum().backward()
    torch.testing.assert_close(f.grad.float(), expect.grad, atol=2e-2, rtol=2e-2)
