"""Empty inputs of every training command are refused with one line naming the file, before anything is
written into --out; the same command runs once the file is fixed (fine-tuning: test_cli_errors.py). A
failure met only mid-epoch leaves a record of a run that never finished, and the fixed command starts it over."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from pointsd.diffusion.stable_diffusion import write_tiny_sd
from pointsd.utils import run_config, staging
from tests.cli_flags import CLASSIFICATION, PARTSEG, PRETRAIN
from tests.reliability.conftest import pretrain_data, tree


@pytest.fixture(scope="module")
def sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_sd(tmp_path_factory.mktemp("sd") / "sd-tiny", seed=0)


def _refused_then_fixed(cli, argv, path: Path, bad: bytes, says: str, out: Path) -> None:
    """``argv`` with ``path`` holding ``bad``: exit 2, one line naming ``path``, ``out`` absent; restored: exit 0."""
    good = path.read_bytes()
    path.write_bytes(bad)
    code, line = cli(*argv)
    assert code == 2 and str(path) in line and says in line, line
    assert tree(out) is None
    path.write_bytes(good)
    assert cli(*argv) == (0, "")


def test_pretrain_empty_shapenet_list(cli, capsys, synth_root, sd, tmp_path):
    data = pretrain_data(synth_root, tmp_path / "data")
    out = tmp_path / "run"
    argv = ["pretrain", *PRETRAIN, "--batch-size", "2", "--stage", "1", "--data-root", data, "--sd", sd, "--out", out]
    _refused_then_fixed(cli, argv, data / "ShapeNet55-34" / "ShapeNet-55" / "train.txt", b"\n", "empty split list",
                        out)


@pytest.mark.parametrize("bad, says", [(b"", "fold"), (pickle.dumps({"train": [], "test": []}), "'train' is empty")])
def test_fewshot_empty_fold(cli, synth_root, tmp_path, bad, says):
    data = tmp_path / "data"
    shutil.copytree(synth_root / "ModelNetFewshot", data / "ModelNetFewshot")
    out = tmp_path / "run"
    argv = ["fewshot", *CLASSIFICATION, "--data-root", data, "--way", "5", "--shot", "10", "--fold", "0", "--out", out]
    _refused_then_fixed(cli, argv, data / "ModelNetFewshot" / "5way_10shot" / "0.pkl", bad, says, out)


def _partseg(synth_root: Path, tmp_path: Path) -> tuple[Path, list, Path]:
    data = tmp_path / "data"
    shutil.copytree(synth_root / "shapenetcore_partanno_segmentation_benchmark_v0_normal",
                    data / "shapenetcore_partanno_segmentation_benchmark_v0_normal")
    out = tmp_path / "run"
    return data / "shapenetcore_partanno_segmentation_benchmark_v0_normal" / "train_test_split", \
        ["partseg", *PARTSEG, "--data-root", data, "--out", out], out


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_partseg_empty_split(cli, synth_root, tmp_path, split):
    lists, argv, out = _partseg(synth_root, tmp_path)
    _refused_then_fixed(cli, argv, lists / f"shuffled_{split}_file_list.json", b"[]", "empty split list", out)


def test_partseg_category_with_no_training_shapes(cli, synth_root, tmp_path):
    lists, argv, out = _partseg(synth_root, tmp_path)
    entries = {s: json.loads((lists / f"shuffled_{s}_file_list.json").read_text()) for s in ("train", "val", "test")}
    synset = entries["test"][0].split("/")[-2]
    (lists / "shuffled_val_file_list.json").write_text(json.dumps(
        [e for e in entries["val"] if f"/{synset}/" not in e] or entries["val"]))
    kept = [e for e in entries["train"] if f"/{synset}/" not in e]
    _refused_then_fixed(cli, argv, lists / "shuffled_train_file_list.json", json.dumps(kept).encode(),
                        "no training shapes of category", out)


def test_a_corrupt_cloud_met_mid_epoch_leaves_an_unfinished_record_and_the_fix_starts_over(cli, capsys, synth_root,
                                                                                             sd, tmp_path):
    data = pretrain_data(synth_root, tmp_path / "data")
    out = tmp_path / "run"
    argv = ["pretrain", *PRETRAIN, "--batch-size", "2", "--stage", "1", "--data-root", data, "--sd", sd, "--out", out]
    clouds = sorted((data / "ShapeNet55-34" / "shapenet_pc").glob("*.npy"))
    good = {path: path.read_bytes() for path in clouds}
    for path in clouds:  # read lazily: met in the first batch, whichever it is
        path.write_bytes(good[path][: len(good[path]) // 2])
    code, line = cli(*argv)
    assert code == 2 and ".npy" in line
    [work] = staging.partials(out)  # the run's work folder (pointsd.utils.staging): nothing is published
    assert (work / run_config.RECORD).is_file() and not out.exists()
    assert not (work / "state").exists()  # the record of a run that never finished a step
    for path, content in good.items():
        path.write_bytes(content)
    assert cli(*argv) == (0, "")
    assert (out / "summary.json").is_file()
