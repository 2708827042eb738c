"""The ``triton`` backend through the public ops on every edge case, against the reference on the
same device (compiled on CUDA, else interpreted): ties, clusters, extreme scales, 16-bit inputs,
non-contiguous inputs, batch 1, all points sampled (N == n, k == N), the float-order inputs, and
the gradients of chamfer and three_interpolate."""

from __future__ import annotations

import pytest
import torch

from pointsd import ops
from pointsd.ops import reference as ref
from tests.ops import float_order
from tests.ops.conftest import grid_with_duplicates

pytestmark = [pytest.mark.filterwarnings("ignore:Input #.*double precision:UserWarning"),
              pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")]  # 1e19 (interpreter)
CASES = ["ties", "clusters", "scale-1e-20", "scale-1e19", "half", "bfloat16", "non-contiguous"]


def _cloud(name: str, dev: torch.device) -> torch.Tensor:
    """Edge case ``name`` as a ``(B,N,3)`` cloud on ``dev`` (B = 1 for clusters, 2 otherwise)."""
    g = torch.Generator().manual_seed(5)
    base = torch.randn(2, 48, 3, generator=g)
    if name == "ties":
        return grid_with_duplicates(2, side=3).to(dev)
    if name == "clusters":  # the FPS case: randn·1e-4 plus integer offsets in {0, 1, 2}
        return (base[:1] * 1e-4 + torch.randint(0, 3, (1, 48, 3), generator=g)).to(dev)
    if name == "non-contiguous":
        return torch.randn(2, 3, 48, generator=g).to(dev).transpose(1, 2)
    scaled = {"scale-1e-20": base * 1e-20, "scale-1e19": base * 1e19,
              "half": base.half(), "bfloat16": base.bfloat16()}
    return scaled[name].to(dev)


@pytest.mark.parametrize("name", CASES)
def test_fps_edge_cases(name, dev):
    xyz = _cloud(name, dev)
    N = xyz.shape[1]
    with ops.use_backend("triton"):
        for n, start in ((N, 0), (9, N - 1)):
            got = ops.furthest_point_sample(xyz, n, start)
            assert torch.equal(got, ref.furthest_point_sample(xyz.float(), n, start)), (n, start)


@pytest.mark.parametrize("name", CASES)
def test_knn_edge_cases(name, dev):
    xyz = _cloud(name, dev)
    q = xyz[:, ::5]
    with ops.use_backend("triton"):
        for k in (xyz.shape[1], 7):
            dist, idx = ops.knn_with_dist(q, xyz, k)
            ref_dist, ref_idx = ref.knn_with_dist(q.float(), xyz.float(), k)
            assert torch.equal(idx, ref_idx) and torch.equal(dist, ref_dist), k


@pytest.mark.parametrize("name", CASES)
def test_three_nn_and_chamfer_edge_cases(name, dev):
    xyz = _cloud(name, dev)
    known, x, y = xyz[:, ::4], xyz[:, ::2], xyz[:, 1::3]
    with ops.use_backend("triton"):
        dist, idx = ops.three_nn(xyz, known)
        d1, d2 = ops.chamfer_distance(x, y)
    ref_dist, ref_idx = ref.three_nn(xyz.float(), known.float())
    assert torch.equal(idx, ref_idx) and torch.equal(dist, ref_dist)
    r1, r2 = ref.chamfer_distance(x.float(), y.float())
    assert torch.equal(d1, r1) and torch.equal(d2, r2)


def test_public_ops_follow_the_written_float_order(dev):
    with ops.use_backend("triton"):
        float_order.assert_public_ops_follow_written_order(dev)


@pytest.mark.parametrize("name", ["ties", "clusters", "half"])
def test_chamfer_gradients_equal_reference_autograd(name, dev):
    xyz = _cloud(name, dev)
    x = xyz[:, ::2].detach().requires_grad_()
    y = xyz[:, 1::3].detach().requires_grad_()
    with ops.use_backend("triton"):
        gx, gy = torch.autograd.grad(ops.chamfer_l2(x, y), (x, y))
    r1, r2 = ref.chamfer_distance(x, y)
    rx, ry = torch.autograd.grad(r1.mean() + r2.mean(), (x, y))
    assert gx.dtype == x.dtype
    torch.testing.assert_close(gx.float(), rx.float())
    torch.testing.assert_close(gy.float(), ry.float())


def test_gradcheck_chamfer_and_three_interpolate(gen, dev):
    tol = {"eps": 1e-3, "atol": 2e-3, "rtol": 2e-2}  # the forward passes run in float32
    x = torch.randn(2, 7, 3, generator=gen, dtype=torch.float64).to(dev).requires_grad_()
    y = torch.randn(2, 5, 3, generator=gen, dtype=torch.float64).to(dev).requires_grad_()
    feats = torch.randn(2, 4, 6, generator=gen, dtype=torch.float64).to(dev).requires_grad_()
    idx = torch.randint(0, 6, (2, 5, 3), generator=gen).to(dev)
    weight = torch.rand(2, 5, 3, generator=gen, dtype=torch.float64).to(dev).requires_grad_()
    with ops.use_backend("triton"):
        assert torch.autograd.gradcheck(ops.chamfer_distance, (x, y), **tol)
        assert torch.autograd.gradcheck(lambda f, w: ops.three_interpolate(f, idx, w), (feats, weight), **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_three_interpolate_gradients_equal_reference_autograd(gen, dev, dtype):
    feats = torch.randn(2, 6, 20, generator=gen).to(dev, dtype).requires_grad_()
    idx = torch.randint(0, 20, (2, 9, 3), generator=gen).to(dev)
    weight = torch.rand(2, 9, 3, generator=gen).to(dev).requires_grad_()
    with ops.use_backend("triton"):
        out = ops.three_interpolate(feats, idx.int(), weight)
    assert out.dtype == dtype
    gf, gw = torch.autograd.grad(out.float().pow(2).sum(), (feats, weight))
    f32 = feats.detach().float().requires_grad_()
    w32 = weight.detach().requires_grad_()
    rf, rw = torch.autograd.grad(ref.three_interpolate(f32, idx, w32).pow(2).sum(), (f32, w32))
    tol = {} if dtype == torch.float32 else {"atol": 5e-2, "rtol": 5e-2}
    torch.testing.assert_close(gf.float(), rf, **tol)
    torch.testing.assert_close(gw.float(), rw, **tol)
