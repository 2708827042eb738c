"""The point ops as custom operators: opcheck, and ``torch.compile(fullgraph=True)`` through them."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch._dynamo.utils import counters

from pointsd import ops
from pointsd.ops import custom_ops
from pointsd.errors import PointSDError
from pointsd.models.backbone import PointTransformer
from pointsd.models.classifier import PointTransformerClassifier
from pointsd.models.config import BackboneConfig

TINY = BackboneConfig(trans_dim=16, depth=1, num_heads=2, group_size=4, num_group=8, encoder_dims=16, patch_width=8)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Each test compiles from scratch and counts its own graph breaks."""
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def group(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FPS 8 centres of ``points (B,N,3)`` and their 4 nearest neighbours: ``(B,8,3)``, ``(B,8,4)``."""
    center = ops.gather(points, ops.furthest_point_sample(points, 8))
    return center, ops.knn(center, points, 4)


def test_opcheck(cloud, gen):
    x, y = cloud(2, 12), cloud(2, 9)
    idx = torch.randint(0, 9, (2, 12, 3), generator=gen)
    for op, args in [
        (torch.ops.pointsd.furthest_point_sample, (x, 5, 1)),
        (torch.ops.pointsd.knn_with_dist, (y, x, 4)),
        (torch.ops.pointsd.three_nn, (x, y)),
        (torch.ops.pointsd.chamfer_nearest, (x.clone().requires_grad_(), y.clone().requires_grad_())),
        (torch.ops.pointsd.three_interpolate, (torch.randn(2, 4, 9, generator=gen, requires_grad=True), idx,
                                               torch.rand(2, 12, 3, generator=gen, requires_grad=True))),
    ]:
        torch.library.opcheck(op, args)


def _dispatcher_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every point op that goes through its custom operator (the dispatcher) from now on."""
    calls: list[str] = []
    for name in custom_ops.__all__:
        point_op = getattr(custom_ops, name)
        if not isinstance(point_op, custom_ops.PointOp):
            continue
        monkeypatch.setattr(point_op, "op", lambda *a, _op=point_op.op, _n=name: calls.append(_n) or _op(*a))
    return calls


def test_plain_eager_calls_skip_the_dispatcher(cloud, gen, monkeypatch):
    calls = _dispatcher_calls(monkeypatch)
    x, y = cloud(2, 12), cloud(2, 9)
    want = ops.furthest_point_sample(x, 5), ops.knn_with_dist(y, x, 4), ops.three_nn(x, y), ops.chamfer_distance(x, y)
    assert calls == []
    with ops.use_backend("reference"):
        got = ops.furthest_point_sample(x, 5), ops.knn_with_dist(y, x, 4), ops.three_nn(x, y), ops.chamfer_distance(x, y)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    features, weight = torch.randn(2, 4, 9, generator=gen), torch.rand(2, 12, 3, generator=gen)
    ops.three_interpolate(features, ops.three_nn(x, y)[1], weight)
    assert calls == []


def test_calls_that_need_gradients_go_through_the_operator(cloud, gen, monkeypatch):
    calls = _dispatcher_calls(monkeypatch)
    x, y = cloud(2, 12).requires_grad_(), cloud(2, 9)
    ops.chamfer_l2(x, y).backward()
    assert calls == ["chamfer_nearest"] and x.grad is not None and x.grad.abs().sum() > 0
    features = torch.randn(2, 4, 9, generator=gen, requires_grad=True)
    ops.three_interpolate(features, ops.three_nn(x.detach(), y)[1], torch.rand(2, 12, 3, generator=gen)).sum().backward()
    assert calls == ["chamfer_nearest", "three_interpolate"] and features.grad is not None
    with torch.no_grad():
        ops.chamfer_distance(x, y)
    assert calls == ["chamfer_nearest", "three_interpolate"]


def test_fps_knn_compile_fullgraph_matches_eager(cloud):
    points = cloud(2, 40)
    compiled = torch.compile(group, fullgraph=True, backend="aot_eager")
    for got, want in zip(compiled(points), group(points)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert counters["graph_break"] == {}


def test_backbone_group_has_no_graph_break(cloud):
    model = PointTransformer(TINY)
    points = cloud(2, 32)
    explained = torch._dynamo.explain(model.group)(points)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    compiled = torch.compile(model.group, fullgraph=True, backend="aot_eager")
    for got, want in zip(compiled(points), model.group(points)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_classifier_forward_and_backward_compile_fullgraph(cloud):
    torch.manual_seed(0)
    model = PointTransformerClassifier(3, TINY).eval()
    points = cloud(2, 32)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(points), model(points))
    compiled(points).sum().backward()
    assert model.cls_token.grad is not None and counters["graph_break"] == {}


def test_chamfer_and_three_interpolate_compile_with_gradients(cloud, gen):
    x, y = cloud(1, 10).requires_grad_(), cloud(1, 6).requires_grad_()
    feats = torch.randn(1, 4, 6, generator=gen, requires_grad=True)

    def loss(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        dist, idx = ops.three_nn(a, b)
        return ops.chamfer_l2(a, b) + ops.three_interpolate(f, idx, 1.0 / (dist + 1e-8)).sum()

    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    got = torch.autograd.grad(compiled(x, y, feats), (x, y, feats))
    want = torch.autograd.grad(loss(x, y, feats), (x, y, feats))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_backend_is_picked_when_the_compiled_op_runs(cloud, monkeypatch):
    points = cloud(2, 40)
    compiled = torch.compile(group, fullgraph=True, backend="aot_eager")
    with ops.use_backend("reference"):
        reference = compiled(points)
    with ops.use_backend("cpu"):
        fast = compiled(points)
    for a, b in zip(reference, fast):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with ops.use_backend("pointnet2_ops"), pytest.raises(PointSDError, match="'pointnet2_ops' is unavailable"):
        compiled(points)
    monkeypatch.setenv("POINTSD_OPS_BACKEND", "pointnet2_ops")
    with pytest.raises(PointSDError, match="'pointnet2_ops' is unavailable"):
        compiled(points)


def test_compiled_ops_still_check_values(cloud):
    compiled = torch.compile(group, fullgraph=True, backend="aot_eager")
    points = cloud(1, 20)
    compiled(points)
    with pytest.raises(PointSDError, match="xyz: contains NaN"):
        compiled(points.index_fill(1, torch.tensor([3]), float("nan")))
    interpolate = torch.compile(ops.three_interpolate, fullgraph=True, backend="aot_eager")
    with pytest.raises(PointSDError, match=r"idx: values must lie in \[0, 5\)"):
        interpolate(torch.rand(1, 2, 5), torch.full((1, 4, 3), 5), torch.rand(1, 4, 3))


@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("clang++")), reason="inductor on CPU needs a C++ compiler")
def test_inductor_compiles_grouping(cloud):
    points = cloud(2, 40)
    compiled = torch.compile(group, fullgraph=True, backend="inductor")
    for got, want in zip(compiled(points), group(points)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_compiling_the_model_in_place_keeps_state_dict_keys():
    """What the fast path does (pointsd/train/supervised.py): ``Module.compile`` keeps the checkpoint layout."""
    model = PointTransformerClassifier(3, TINY)
    keys = list(model.state_dict())
    model.compile()
    assert list(model.state_dict()) == keys
