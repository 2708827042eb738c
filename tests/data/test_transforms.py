"""Sampling and augmentations: shapes, ranges, determinism with a generator."""

from __future__ import annotations

import numpy as np
import torch

from pointsd.data import transforms as T
from pointsd.data.normalize import pc_normalize


def _points(b: int = 3, n: int = 300) -> torch.Tensor:
    return torch.randn(b, n, 3, generator=torch.Generator().manual_seed(0))


def test_pc_normalize_unit_sphere() -> None:
    out = pc_normalize(np.random.default_rng(0).normal(size=(50, 3)) * 1e5 + 7)
    assert abs(np.linalg.norm(out, axis=1).max() - 1) < 1e-6 and np.abs(out.mean(0)).max() < 1e-6


def test_fps_subsample_shapes_and_membership() -> None:
    pts = _points()
    out = T.fps_subsample(pts, 100, generator=torch.Generator().manual_seed(1))
    assert out.shape == (3, 100, 3)
    for b in range(3):  # every sampled point is one of the input points, no duplicates
        match = (out[b][:, None, :] == pts[b][None]).all(-1)
        assert (match.sum(1) == 1).all() and len(match.float().argmax(1).unique()) == 100
    same = T.fps_subsample(pts, 300, generator=torch.Generator().manual_seed(1))
    assert torch.equal(same.sort(1).values, pts.sort(1).values)  # N == n → a permutation
    again = T.fps_subsample(pts, 100, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)


def test_fps_subsample_spreads_points() -> None:
    line = torch.linspace(0, 1, 1000).view(1, -1, 1).expand(1, 1000, 3).contiguous()
    out = T.fps_subsample(line, 10, generator=torch.Generator().manual_seed(0))
    gaps = out[0, :, 0].sort().values.diff()
    assert gaps.min() > 0.05  # FPS to 12 points then 10: no two samples close together


def test_rotate_up_keeps_height_and_radius() -> None:
    pts = _points()
    out = T.rotate_up(pts, torch.Generator().manual_seed(2))
    assert torch.allclose(out[..., 1], pts[..., 1], atol=1e-6)
    assert torch.allclose(out[..., [0, 2]].norm(dim=-1), pts[..., [0, 2]].norm(dim=-1), atol=1e-5)


def test_up_rotation_has_the_official_sign() -> None:
    """Official PointSD / Point-MAE: ``p @ [[c,0,s],[0,1,0],[-s,0,c]]``, so +x turns to +z at 90 degrees."""
    theta = torch.tensor([0.3, torch.pi / 2])
    c, s = torch.cos(theta[0]), torch.sin(theta[0])
    assert torch.allclose(T.rotation_matrix_y(theta)[0], torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]]))
    x_axis = torch.tensor([[[1.0, 0.0, 0.0]]])
    assert torch.allclose(x_axis @ T.rotation_matrix_y(theta[1:]), torch.tensor([[[0.0, 0.0, 1.0]]]), atol=1e-6)


def test_rotation_perturbation_is_p_times_rz_ry_rx() -> None:
    """Official PointSD: ``p @ (Rz·Ry·Rx)`` (not its transpose)."""
    a = torch.tensor([[0.1, -0.15, 0.05]], dtype=torch.float64)
    cx, sx, cy, sy, cz, sz = (f(v) for v in a[0] for f in (torch.cos, torch.sin))
    rx = torch.tensor([[1, 0, 0], [0, cx, -sx], [0, sx, cx]], dtype=torch.float64)
    ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], dtype=torch.float64)
    rz = torch.tensor([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]], dtype=torch.float64)
    assert torch.allclose(T.perturbation_matrix(a)[0], rz @ ry @ rx)
    pts = _points(1, 50).double()
    g = torch.Generator().manual_seed(6)
    angles = (torch.randn((1, 3), generator=torch.Generator().manual_seed(6), dtype=torch.float64) * 0.06).clamp(-0.18, 0.18)
    assert torch.allclose(T.rotate_perturbation(pts, generator=g), pts @ T.perturbation_matrix(angles))


def test_scale_translate_ranges() -> None:
    pts = torch.ones(64, 5, 3)
    out = T.scale_translate(pts, generator=torch.Generator().manual_seed(3))
    assert out.min() >= 2 / 3 - 0.2 - 1e-6 and out.max() <= 1.5 + 0.2 + 1e-6
    assert not torch.allclose(out[:, :, 0], out[:, :, 1])  # per-axis factors


def test_pretrain_augment_dropout_and_determinism() -> None:
    pts = _points(4, 500)
    a = T.pretrain_augment(pts, torch.Generator().manual_seed(4))
    b = T.pretrain_augment(pts, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and a.shape == pts.shape and torch.isfinite(a).all()
    dropped = T.random_point_dropout(pts, 0.875, torch.Generator().manual_seed(5))
    replaced = (dropped == pts[:, :1]).all(-1).sum(1)
    assert (replaced >= 1).all() and replaced.max() > 5
    small = T.rotate_perturbation(pts, generator=torch.Generator().manual_seed(6))
    assert torch.allclose(small.norm(dim=-1), pts.norm(dim=-1), atol=1e-5)
    assert (small - pts).abs().max() < 0.18 * 3 * pts.abs().max()
