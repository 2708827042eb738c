"""Renderer geometry: disc size of a sphere, occlusion, rotation about the up axis, determinism."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from pointsd.data.render import FRAME, RenderSettings, azimuths, estimate_normals, render_view
from pointsd.data.render_dataset import render_dataset
from pointsd.data.ulip_renders import ShapeNet55Pretrain


def _sphere(n: int, seed: int = 0) -> np.ndarray:
    d = np.random.default_rng(seed).normal(size=(n, 3))
    return (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)


def test_sphere_renders_as_disc_of_expected_radius() -> None:
    xyz = _sphere(6000)
    rgba, depth = render_view(xyz, xyz, 0, RenderSettings(size=96, radius_px=1.0))
    covered = rgba[..., 3] > 0
    expected = math.pi * (FRAME * 96 / 2) ** 2
    assert abs(covered.sum() / expected - 1) < 0.08
    ys, xs = np.nonzero(covered)
    assert abs(xs.mean() - 47.5) < 1 and abs(ys.mean() - 47.5) < 1
    assert (depth[covered] < 65535).all() and (depth[~covered] == 65535).all()


def test_estimated_normals_point_outward() -> None:
    xyz = _sphere(3000, 1)
    normals = estimate_normals(xyz)
    assert np.median((normals * xyz).sum(1)) > 0.98


def test_nearer_points_hide_farther_ones() -> None:
    grid = np.stack(np.meshgrid(np.linspace(-0.5, 0.5, 40), np.linspace(-0.5, 0.5, 40)), -1).reshape(-1, 2)
    near = np.c_[grid, np.full(len(grid), 0.5)]  # z = +0.5 faces the camera at azimuth 0
    far = np.c_[grid, np.full(len(grid), -0.5)]
    normals = np.tile([0.0, 0.0, 1.0], (len(grid), 1))
    settings = RenderSettings(size=64, radius_px=1.5, color=(1.0, 0.0, 0.0))
    red, _ = render_view(np.r_[far, near], normals.repeat(2, 0), 0, settings)
    blue_far = RenderSettings(size=64, radius_px=1.5, color=(0.0, 0.0, 1.0))
    rgba_far, depth_far = render_view(far, normals, 0, blue_far)
    both_rgba, both_depth = render_view(np.r_[near, far], normals.repeat(2, 0), 0, settings)
    covered = rgba_far[..., 3] > 0
    # the near plane's depth wins everywhere both cover, whichever order the points come in
    near_depth = render_view(near, normals, 0, settings)[1]
    assert (both_depth[covered] == near_depth[covered]).all()
    assert (red[..., 3] > 0).sum() == covered.sum()
    # from behind (azimuth 180) the other plane is the nearer one
    back = render_view(np.r_[near, far], normals.repeat(2, 0), 180, settings)[1]
    assert (back[covered] == render_view(far, normals, 180, settings)[1][covered]).all()


def test_views_rotate_about_up_axis() -> None:
    xyz = np.array([[0.8, 0.3, 0.0]], dtype=np.float32)  # on +x, above the centre
    normals = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    settings = RenderSettings(size=65, radius_px=0.5)
    for azimuth, expected_col in ((0, 32 + 0.8 * FRAME * 32.5), (180, 32 - 0.8 * FRAME * 32.5)):
        rgba, _ = render_view(xyz, normals, azimuth, settings)
        ys, xs = np.nonzero(rgba[..., 3])
        assert abs(xs[0] - expected_col) <= 1, azimuth
        assert abs(ys[0] - (32 - 0.3 * FRAME * 32.5)) <= 1  # height unchanged: rotation is about y
    rgba90, depth90 = render_view(xyz, normals, 90, settings)
    ys, xs = np.nonzero(rgba90[..., 3])
    assert abs(xs[0] - 32) <= 1  # the point now lies on the view axis
    assert azimuths(30)[:3] == [0, 12, 24] and azimuths(30)[-1] == 348


def test_render_dataset_layout_determinism_and_pretrain_pairs(synth_root: Path, tmp_path: Path) -> None:
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    report = render_dataset(synth_root, out_a, views=2, size=32, seed=1)
    render_dataset(synth_root, out_b, views=2, size=32, seed=1)
    assert report.shapes == 5 and report.views == 10
    files = sorted(p.relative_to(out_a) for p in out_a.rglob("*.png"))
    assert len(files) == 5 * 4 + 2  # rgba + depth per view, one contact sheet per split
    assert all((out_a / f).read_bytes() == (out_b / f).read_bytes() for f in files)
    sid = next(p.name for p in out_a.iterdir() if p.is_dir())
    assert (out_a / sid / f"{sid}_r_180.png").is_file() and (out_a / sid / f"{sid}_r_180_depth0001.png").is_file()
    ds = ShapeNet55Pretrain(synth_root, out_a, "train", npoints=128, image_size=16, view=0, augment=True)
    item = ds[0]
    assert item["points"].shape == (128, 3) and item["image"].shape == (3, 16, 16)
    assert item["image"].min() >= -1 and item["image"].max() <= 1 and item["image"].max() == 1  # white background


def test_pretrain_pairs_decode_each_view_once(synth_root: Path, tmp_path: Path, monkeypatch) -> None:
    """The decoded image is kept: the same pixels as reading the file (mirrored or not), one decode per shape."""
    from pointsd.data import ulip_renders

    render_dataset(synth_root, tmp_path / "r", views=1, size=32, seed=0)
    ds = ShapeNet55Pretrain(synth_root, tmp_path / "r", "train", npoints=64, image_size=16, augment=True)
    decoded = []
    original = ulip_renders.decode_view
    monkeypatch.setattr(ulip_renders, "decode_view", lambda path, size: decoded.append(path) or original(path, size))
    path = ds.image_path(ds.ids[0])
    file = original(path, 16)
    for flip in (False, True, False):
        assert torch.equal(ds.view_image(0, flip), ulip_renders.view_tensor(file, flip))
    assert torch.equal(ulip_renders.view_tensor(file, True), ulip_renders.view_tensor(file).flip(-1))
    items = [ds[0] for _ in range(6)]
    assert decoded == [path]  # once
    assert {item["index"] for item in items} == {0}
    assert all(torch.equal(item["image"], ulip_renders.view_tensor(file, item["flip"])) for item in items)
    ds.preload_views(threads=2)  # the others, at once
    assert len(decoded) == len(ds) and sorted(ds.decoded) == list(range(len(ds)))
    ds.preload_views(threads=2)
    assert len(decoded) == len(ds)
