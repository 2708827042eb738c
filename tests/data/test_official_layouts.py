"""Readers on files written the way the public datasets are written (not by our writers)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import h5py
import numpy as np

from pointsd.data.fewshot import ModelNetFewShot
from pointsd.data.labelled_h5 import LabelledH5
from pointsd.data.modelnet40 import ModelNet40
from pointsd.data.scanobjectnn import ScanObjectNN
from pointsd.data.shapenetpart import ShapeNetPart


def test_scanobjectnn_official_h5(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "ScanObjectNN" / "main_split_nobg"
    folder.mkdir(parents=True)
    with h5py.File(folder / "test_objectdataset.h5", "w") as fh:  # official: float32 data, (n,1) uint8 labels
        fh["data"] = rng.normal(size=(4, 2048, 3)).astype(np.float32) * 7 + 3
        fh["label"] = np.array([[0], [14], [3], [3]], dtype=np.uint8)
        fh["mask"] = np.zeros((4, 2048), dtype=np.int32)
    ds = ScanObjectNN(tmp_path, "objonly", "test")
    points, label = ds[1]
    assert label == 14 and points.shape == (2048, 3)
    assert abs(points.norm(dim=1).max().item() - 1) < 1e-5


def test_modelnet40_comma_txt_builds_dat_and_reads_official_dat(tmp_path: Path) -> None:
    folder = tmp_path / "modelnet40_normal_resampled"
    rng = np.random.default_rng(1)
    names = ["airplane", "bed"]
    (folder).mkdir()
    (folder / "modelnet40_shape_names.txt").write_text("airplane\nbed\n")
    (folder / "modelnet40_train.txt").write_text("airplane_0001\nbed_0001\n")
    (folder / "modelnet40_test.txt").write_text("bed_0002\n")
    for shape_id in ("airplane_0001", "bed_0001", "bed_0002"):
        (folder / shape_id[:-5]).mkdir(exist_ok=True)
        rows = rng.normal(size=(300, 6))
        (folder / shape_id[:-5] / f"{shape_id}.txt").write_text(
            "\n".join(",".join(f"{v:.6f}" for v in r) for r in rows) + "\n")
    ds = ModelNet40(folder, "train", num_points=128)
    assert [ds[i][1] for i in range(2)] == [0, 1] and ds[0][0].shape == (128, 3)
    # the file the public preprocessing writes: pickle.dump([list of (N,6) float32, list of (1,) int32])
    clouds = [rng.normal(size=(64, 6)).astype(np.float32)]
    labels = [np.array([1], dtype=np.int32)]
    with open(folder / "modelnet40_test_64pts_fps.dat", "wb") as fh:
        pickle.dump([clouds, labels], fh)
    test = ModelNet40(tmp_path, "test", num_points=64)
    assert len(test) == 1 and test[0][1] == 1
    assert names == test.names


def test_fewshot_official_pickle(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    folder = tmp_path / "5way10shot"
    folder.mkdir()
    entry = lambda label: (rng.normal(size=(1024, 6)).astype(np.float32), label, "name")  # noqa: E731
    with open(folder / "0.pkl", "wb") as fh:
        pickle.dump({"train": [entry(i % 5) for i in range(50)], "test": [entry(i % 5) for i in range(100)]}, fh,
                    protocol=2)
    ds = ModelNetFewShot(tmp_path, 5, 10, 0, "test")
    assert len(ds) == 100 and ds[7][0].shape == (1024, 3) and ds[7][1] == 2


def test_shapenetpart_official_layout(tmp_path: Path) -> None:
    root = tmp_path / "shapenetcore_partanno_segmentation_benchmark_v0_normal"
    (root / "train_test_split").mkdir(parents=True)
    (root / "synsetoffset2category.txt").write_text("Airplane\t02691156\nBag\t02773838\n")
    (root / "02773838").mkdir()
    rows = np.random.default_rng(3).normal(size=(50, 6))
    text = "\n".join(" ".join(f"{v:.5f}" for v in r) + f" {4 + i % 2:.6f}" for i, r in enumerate(rows))
    (root / "02773838" / "abc123.txt").write_text(text + "\n")
    (root / "train_test_split" / "shuffled_val_file_list.json").write_text(
        json.dumps(["shape_data/02773838/abc123"]))
    points, category, parts = ShapeNetPart(tmp_path, "val", num_points=80)[0]  # fewer points → resampled
    assert points.shape == (80, 3) and category == 1 and set(parts.tolist()) <= {4, 5}


def test_labelled_h5_z_up_unnormalised(tmp_path: Path) -> None:
    path = tmp_path / "train.h5"
    cloud = np.zeros((1, 1024, 3), dtype=np.float32)
    cloud[0, :, 2] = np.linspace(0, 114000, 1024)  # a tall pole along z, huge coordinates
    with h5py.File(path, "w") as fh:
        fh["data"] = cloud
        fh["label"] = np.array([2], dtype=np.int64)
        fh["name"] = np.array([b"chair_0001"])
    (tmp_path / "names.txt").write_text("a\nb\nc\n")
    ds = LabelledH5(path, tmp_path / "names.txt", up_axis="z")
    points, label = ds[0]
    assert label == 2
    assert abs(points[:, 1].max().item() - 1) < 1e-5 and points[:, [0, 2]].abs().max().item() < 1e-6


def test_real_modelnet10_if_present() -> None:
    root = Path(__file__).resolve().parents[2].parent / "shared/data/modelnet10"
    if not (root / "test.h5").is_file():
        return
    ds = LabelledH5(root / "test.h5", root / "shape_names.txt", up_axis="z")
    assert len(ds) == 908 and ds.num_classes == 10
    assert abs(ds[0][0].norm(dim=1).max().item() - 1) < 1e-5
