"""Bad inputs give one PointSDError that names the file."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from pointsd.data import safe_pickle
from pointsd.data.fewshot import ModelNetFewShot
from pointsd.data.labelled_h5 import LabelledH5
from pointsd.data.modelnet40 import ModelNet40
from pointsd.data.shapenet55 import TAXONOMY, category_names, load_cloud
from pointsd.data.ulip_renders import ShapeNet55Pretrain
from pointsd.errors import PointSDError


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickle_with_code_payload_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "0.pkl"
    path.write_bytes(pickle.dumps({"train": [_Payload()], "test": []}))
    with pytest.raises(PointSDError, match=r"0\.pkl.*refusing to unpickle"):
        safe_pickle.load(path)
    (tmp_path / "5way10shot").mkdir()
    shutil.copy(path, tmp_path / "5way10shot" / "0.pkl")
    with pytest.raises(PointSDError, match="refusing"):
        ModelNetFewShot(tmp_path, 5, 10, 0, "train")


def test_truncated_npy(tmp_path: Path) -> None:
    path = tmp_path / "a-b.npy"
    np.save(path, np.zeros((8192, 3), np.float32))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(PointSDError, match="a-b.npy"):
        load_cloud(path)


def test_nan_points_and_wrong_count(tmp_path: Path) -> None:
    path = tmp_path / "n.npy"
    arr = np.zeros((16, 3), np.float32)
    arr[3, 1] = np.nan
    np.save(path, arr)
    with pytest.raises(PointSDError, match=r"n\.npy.*NaN"):
        load_cloud(path)
    np.save(path, np.zeros((16, 3), np.float32))
    with pytest.raises(PointSDError, match=r"n\.npy.*expected 8192 points"):
        load_cloud(path, 8192)


def test_corrupt_h5(tmp_path: Path) -> None:
    path = tmp_path / "train.h5"
    with h5py.File(path, "w") as fh:
        fh["data"] = np.zeros((2, 64, 3), np.float32)
        fh["label"] = np.zeros(2, np.int64)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(PointSDError, match="train.h5"):
        LabelledH5(path)


def test_h5_missing_key_and_nan(tmp_path: Path) -> None:
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as fh:
        fh["data"] = np.zeros((2, 64, 3), np.float32)
    with pytest.raises(PointSDError, match=r"x\.h5.*missing key 'label'"):
        LabelledH5(path)
    data = np.zeros((2, 64, 3), np.float32)
    data[1, 5, 0] = np.inf
    with h5py.File(path, "w") as fh:
        fh["data"], fh["label"] = data, np.zeros(2, np.int64)
    with pytest.raises(PointSDError, match=r"x\.h5.*cloud 1"):
        LabelledH5(path)


def test_dat_with_wrong_point_count(tmp_path: Path) -> None:
    folder = tmp_path / "modelnet40_normal_resampled"
    folder.mkdir()
    (folder / "modelnet40_shape_names.txt").write_text("airplane\n")
    with open(folder / "modelnet40_train_8192pts_fps.dat", "wb") as fh:
        pickle.dump([[np.zeros((100, 6), np.float32)], [np.array([0], np.int32)]], fh)
    with pytest.raises(PointSDError, match=r"8192pts_fps\.dat: cloud 0: expected 8192 points"):
        ModelNet40(tmp_path, "train")


def test_missing_image_for_listed_shape(synth_root: Path, tmp_path: Path) -> None:
    with pytest.raises(PointSDError, match=r"_r_000\.png: missing for shape"):
        ShapeNet55Pretrain(synth_root, tmp_path, "train")


def test_shapenet_taxonomy_names_and_a_bad_one(synth_root: Path, tmp_path: Path) -> None:
    """The captions' category names come from the taxonomy (first name of each synset); a taxonomy of the
    wrong shape, or none, is an error naming the file."""
    names = category_names(synth_root)
    assert names["02691156"] == "airplane" and all(names.values())
    folder = tmp_path / "ShapeNet55-34"
    folder.mkdir()
    with pytest.raises(PointSDError, match=TAXONOMY):
        category_names(tmp_path)
    (folder / TAXONOMY).write_text('{"02691156": "airplane"}')
    with pytest.raises(PointSDError, match=f"{TAXONOMY}: expected a list"):
        category_names(tmp_path)
