"""Every synthetic format goes through its reader; same seed → same bytes."""

from __future__ import annotations

import filecmp
from pathlib import Path

import numpy as np
import torch

from pointsd.data.fewshot import ModelNetFewShot
from pointsd.data.modelnet40 import ModelNet40
from pointsd.data.scanobjectnn import ScanObjectNN
from pointsd.data.shapenet55 import ShapeNet55
from pointsd.data.shapenetpart import SEG_CLASSES, ShapeNetPart
from pointsd.data.synth import sizes_for, synthesize
from tests.conftest import MICRO


def _unit(points: torch.Tensor) -> None:
    assert points.dtype == torch.float32
    assert torch.isfinite(points).all()
    assert abs(points.norm(dim=1).max().item() - 1.0) < 1e-4
    assert points.mean(0).abs().max().item() < 1e-4


def test_modelnet40(synth_root: Path) -> None:
    ds = ModelNet40(synth_root, "train", num_points=96)
    assert len(ds) == 80 and ds.num_classes == 40
    points, label = ds[3]
    assert points.shape == (96, 3) and label == 1
    _unit(points)
    assert (synth_root / "ModelNet/modelnet40_normal_resampled/modelnet40_train_96pts_fps.dat").is_file()
    # fewer points: the prefix of the larger cache (the FPS of that size); more points than any cache:
    # the txt clouds FPS-sampled in memory. The data folder (another stage's output) is never written.
    folder = synth_root / "ModelNet/modelnet40_normal_resampled"
    before = sorted(p.name for p in folder.glob("*.dat"))
    small = ModelNet40(synth_root, "test", num_points=32)
    assert small[0][0].shape == (32, 3) and len(small) == 40 and small.path.name == "modelnet40_test_96pts_fps.dat"
    assert sorted(p.name for p in folder.glob("*.dat")) == before


def test_modelnet40_cache_command(synth_root: Path, tmp_path: Path) -> None:
    import shutil

    from pointsd.cli import main

    folder = tmp_path / "modelnet40_normal_resampled"
    shutil.copytree(synth_root / "ModelNet/modelnet40_normal_resampled", folder)
    for dat in folder.glob("*.dat"):
        dat.unlink()
    in_memory = ModelNet40(folder, "test", num_points=32)
    assert not list(folder.glob("*.dat"))
    assert main(["data", "modelnet40-cache", str(folder), "--points", "48"]) == 0
    assert (folder / "modelnet40_test_48pts_fps.dat").is_file()
    prefix = ModelNet40(folder, "test", num_points=32)  # the 48-point FPS order's first 32: the 32-point FPS
    assert np.allclose(prefix.points, in_memory.points, atol=1e-6) and np.array_equal(prefix.labels, in_memory.labels)


def test_fewshot(synth_root: Path) -> None:
    for way, shot in ((5, 10), (10, 20)):
        train = ModelNetFewShot(synth_root, way, shot, 1, "train")
        test = ModelNetFewShot(synth_root, way, shot, 1, "test")
        assert len(train) == way * shot and len(test) == way * 3
        assert sorted(set(train.labels.tolist())) == list(range(way))
        assert train[0][0].shape == (64, 3)


def test_scanobjectnn(synth_root: Path) -> None:
    for variant in ("objbg", "objonly", "hardest"):
        ds = ScanObjectNN(synth_root, variant, "train")
        assert len(ds) == 30
        points, label = ds[29]
        assert points.shape == (128, 3) and label == 14
        _unit(points)


def test_shapenetpart(synth_root: Path) -> None:
    ds = ShapeNetPart(synth_root, "test", num_points=200)
    assert len(ds) == 16
    cats = sorted(SEG_CLASSES)
    for i in range(len(ds)):
        points, category, parts = ds[i]
        assert points.shape == (200, 3) and parts.shape == (200,)
        allowed = set(SEG_CLASSES[cats[category]])
        assert set(parts.tolist()) <= allowed


def test_shapenet55(synth_root: Path) -> None:
    ds = ShapeNet55(synth_root, "train", npoints=256)
    assert len(ds) == 3
    points, shape_id = ds[0]
    assert points.shape == (256, 3) and "-" in shape_id
    assert np.load(ds.folder / f"{shape_id}.npy").shape == (512, 3)


def test_same_seed_same_bytes(synth_root: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    synthesize(again, sizes_for("tiny", **MICRO), seed=3)
    # the session fixture may have built extra caches on demand; compare what synthesis writes
    for path in sorted(p for p in again.rglob("*") if p.is_file()):
        assert filecmp.cmp(path, synth_root / path.relative_to(again), shallow=False), path
