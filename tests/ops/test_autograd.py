"""Gradients of chamfer (both clouds) and three_interpolate (features, weights) by gradcheck."""

from __future__ import annotations

import pytest
import torch

from pointsd import ops
from pointsd.ops import reference as ref

pytestmark = pytest.mark.filterwarnings("ignore:Input #.*double precision:UserWarning")

BACKENDS = ["reference", "cpu"]
# Forward passes run in float32, so finite differences use float32 tolerances.
TOL = {"eps": 1e-3, "atol": 2e-3, "rtol": 2e-2}


@pytest.mark.parametrize("backend", BACKENDS)
def test_chamfer_gradcheck(cloud, backend):
    x = cloud(2, 7).requires_grad_()
    y = cloud(2, 5).requires_grad_()
    with ops.use_backend(backend):
        assert torch.autograd.gradcheck(lambda a, b: ops.chamfer_distance(a, b), (x, y), **TOL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_chamfer_grad_equals_autograd_of_reference(cloud, backend):
    x = cloud(2, 30).requires_grad_()
    y = cloud(2, 20).requires_grad_()
    with ops.use_backend(backend):
        d1, d2 = ops.chamfer_distance(x, y)
    (d1.sum() * 0.3 + d2.pow(2).sum()).backward()
    gx, gy = x.grad.clone(), y.grad.clone()
    x.grad = y.grad = None
    r1, r2 = ref.chamfer_distance(x, y)
    (r1.sum() * 0.3 + r2.pow(2).sum()).backward()
    torch.testing.assert_close(gx, x.grad)
    torch.testing.assert_close(gy, y.grad)


@pytest.mark.parametrize("backend", BACKENDS)
def test_three_interpolate_gradcheck(gen, backend):
    feats = torch.randn(2, 3, 6, generator=gen).requires_grad_()
    weight = torch.rand(2, 5, 3, generator=gen).requires_grad_()
    idx = torch.randint(0, 6, (2, 5, 3), generator=gen)
    with ops.use_backend(backend):
        assert torch.autograd.gradcheck(lambda f, w: ops.three_interpolate(f, idx, w), (feats, weight), **TOL)


def test_half_gradients_keep_dtype(cloud, gen):
    x = cloud(1, 9, torch.float16).requires_grad_()
    y = cloud(1, 4, torch.bfloat16).requires_grad_()
    ops.chamfer_l2(x, y).backward()
    assert x.grad.dtype == torch.float16 and y.grad.dtype == torch.bfloat16
    feats = torch.randn(1, 2, 4, generator=gen).half().requires_grad_()
    out = ops.three_interpolate(feats, torch.zeros(1, 3, 3, dtype=torch.long), torch.rand(1, 3, 3))
    assert out.dtype == torch.float16
    out.sum().backward()
    assert feats.grad.dtype == torch.float16


def test_chamfer_losses_match_point_mae_definitions(cloud):
    x, y = cloud(2, 40), cloud(2, 25)
    d = ((x.unsqueeze(2) - y.unsqueeze(1)) ** 2).sum(-1)
    d1, d2 = d.min(2).values, d.min(1).values
    torch.testing.assert_close(ops.chamfer_l2(x, y), d1.mean() + d2.mean())
    torch.testing.assert_close(ops.chamfer_l1(x, y), (d1.sqrt().mean() + d2.sqrt().mean()) / 2)


def test_chamfer_l1_zero_for_identical_clouds_with_finite_gradient(cloud):
    x = cloud(2, 16).requires_grad_()
    loss = ops.chamfer_l1(x, x.detach().clone())
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(x.grad).all()
