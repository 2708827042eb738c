"""Bad inputs, bad flags, broken files, unexpected failures: exit ≠ 0, one stderr line naming the culprit."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from pointsd.cli import main
from pointsd.models.config import BackboneConfig
from pointsd.utils import staging
from tests.cli_flags import PRETRAIN
from tests.reliability.conftest import finetune_argv, one_line, pretrain_data, tree
from tests.train.test_finetune import write_h5


def _copy_with(src: Path, dst: Path, **files: bytes | None) -> Path:
    """``src``'s files copied to ``dst``, then each ``name=bytes`` written (``None``: left out)."""
    dst.mkdir(parents=True)
    for path in src.iterdir():
        (dst / path.name).write_bytes(path.read_bytes())
    for name, data in files.items():
        target = dst / name.replace("_h5", ".h5")
        target.unlink()
        if data is not None:
            target.write_bytes(data)
    return dst


@pytest.mark.parametrize("split", ["train", "test"])
def test_empty_split_names_its_file(cli, h5_root, tmp_path, split):
    data = tmp_path / "data"
    _copy_with(h5_root, data)
    write_h5(data / f"{split}.h5", 0, 4, 80, 0)
    code, line = cli(*finetune_argv(data, tmp_path / "run"))
    assert code == 2 and f"{data / split}.h5" in line and "0 clouds" in line
    assert tree(tmp_path / "run") is None
    shutil.copy(h5_root / f"{split}.h5", data / f"{split}.h5")  # the fix: then the same command runs
    assert cli(*finetune_argv(data, tmp_path / "run")) == (0, "")


def _nan_h5(path: Path) -> bytes:
    with h5py.File(path, "w") as fh:
        fh["data"] = np.full((16, 80, 3), np.nan, np.float32)
        fh["label"] = np.zeros(16, np.int64)
    return path.read_bytes()


def _no_label_h5(path: Path) -> bytes:
    with h5py.File(path, "w") as fh:
        fh["data"] = np.zeros((16, 80, 3), np.float32)
    return path.read_bytes()


@pytest.mark.parametrize("fault", ["truncated", "nan", "not_h5", "no_label"])
@pytest.mark.parametrize("out_was", ["absent", "empty", "finished"])
def test_broken_data_file_names_it(cli, h5_root, tmp_path, fault, out_was):
    """Reader-level cases: tests/data/test_bad_inputs.py; here through ``pointsd finetune``, into an absent,
    an empty and a finished run folder, each left as found; the fixed file then runs without --overwrite."""
    good = (h5_root / "train.h5").read_bytes()
    content = {"truncated": good[: len(good) // 3], "nan": _nan_h5(tmp_path / "nan.h5"),
               "not_h5": b"plain text", "no_label": _no_label_h5(tmp_path / "x.h5")}[fault]
    data = _copy_with(h5_root, tmp_path / "data", train_h5=content)
    out = tmp_path / "run"
    if out_was == "empty":
        out.mkdir()
    elif out_was == "finished":
        assert cli(*finetune_argv(h5_root, out)) == (0, "")
    before = tree(out)
    code, line = cli(*finetune_argv(data, out))
    assert code == 2 and str(data / "train.h5") in line
    assert tree(out) == before
    (data / "train.h5").write_bytes(good)
    assert cli(*finetune_argv(data, out)) == (0, "")


def _checkpoint(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.pt"
    wide = BackboneConfig(trans_dim=48, depth=1, num_heads=2, num_group=8, group_size=8, encoder_dims=32).build()
    if kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "malicious_pickle":
        with open(path, "wb") as fh:
            pickle.dump({"x": _Payload()}, fh)
    elif kind == "truncated":
        torch.save(wide.state_dict(), path)
        path.write_bytes(path.read_bytes()[:2000])
    elif kind == "missing":
        return tmp_path / "no" / "such.pt"
    else:  # wrong shapes: a 48-wide backbone for a 32-wide model
        torch.save(wide.state_dict(), path)
    return path


class _Payload:
    """Unpickling this runs a shell command."""

    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_PICKLE",))


@pytest.mark.parametrize("kind, says", [
    ("random_bytes", "corrupt"), ("malicious_pickle", "refused"), ("truncated", "unreadable or truncated"),
    ("wrong_shapes", "do not match"), ("missing", "does not exist"),
])
def test_bad_init_checkpoint(cli, h5_root, tmp_path, monkeypatch, kind, says):
    """Loader-level cases: tests/models/test_checkpoints.py; here the CLI's one line."""
    monkeypatch.chdir(tmp_path)
    ckpt = _checkpoint(tmp_path, kind)
    code, line = cli(*finetune_argv(h5_root, tmp_path / "run", "--init", str(ckpt)))
    assert code == 2 and str(ckpt) in line and says in line
    assert "Weights only" not in line and "holds objects" not in line or kind == "malicious_pickle"
    assert not (tmp_path / "PWNED_BY_PICKLE").exists() and tree(tmp_path / "run") is None
    assert cli(*finetune_argv(h5_root, tmp_path / "run")) == (0, "")  # the typo fixed: no --overwrite


def test_broken_stable_diffusion_folder(cli, capsys, synth_root, tmp_path):
    """Folder-level cases: tests/diffusion/test_stable_diffusion.py; here ``pointsd pretrain``; the
    complete folder then runs without --overwrite."""
    from pointsd.diffusion.stable_diffusion import write_tiny_sd

    sd = tmp_path / "sd"
    (sd / "unet").mkdir(parents=True)
    (sd / "model_index.json").write_text("{}")
    good = write_tiny_sd(tmp_path / "sd-good")
    data = pretrain_data(synth_root, tmp_path / "data")
    argv = ["pretrain", *PRETRAIN, "--batch-size", "2", "--stage", "1", "--data-root", data, "--out", tmp_path / "run"]
    capsys.readouterr()
    code, line = cli(*argv, "--sd", sd)
    assert code == 2 and str(sd) in line
    assert tree(tmp_path / "run") is None
    assert cli(*argv, "--sd", good) == (0, "")


def test_truncated_stage1_checkpoint(cli, capsys, synth_root, tmp_path):
    """Stage 2 from a stage-1 folder whose backbone file was cut off: one line naming the file, ``--out``
    left absent; the same command from the intact folder then runs without --overwrite."""
    from pointsd.diffusion.stable_diffusion import write_tiny_sd

    sd = write_tiny_sd(tmp_path / "sd")
    data = pretrain_data(synth_root, tmp_path / "data")
    common = ["pretrain", *PRETRAIN, "--batch-size", "2", "--data-root", data, "--sd", sd]
    capsys.readouterr()
    assert cli(*common, "--stage", "1", "--out", tmp_path / "stage1") == (0, "")
    cut = tmp_path / "stage1-cut"
    shutil.copytree(tmp_path / "stage1", cut)
    ckpt = cut / "ckpt-stage1.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    stage2 = [*common, "--stage", "2", "--stage2-grouping", "per_encoder", "--out", tmp_path / "stage2"]
    capsys.readouterr()
    code, line = cli(*stage2, "--stage1", cut)
    assert code == 2 and "ckpt-stage1.pt" in line, line
    assert tree(tmp_path / "stage2") is None
    assert cli(*stage2, "--stage1", tmp_path / "stage1") == (0, "")


def test_bad_flag_is_one_line(capsys, h5_root, tmp_path):
    """Bad params.yaml keys are named by the schema: tests/pipeline/test_params.py."""
    with pytest.raises(SystemExit) as exit_info:
        main(finetune_argv(h5_root, tmp_path / "run", "--lr", "-1"))
    line = one_line(capsys.readouterr().err)
    assert exit_info.value.code == 2 and "--lr" in line and "pointsd finetune --help" in line


def test_unexpected_error_is_one_line_and_debug_shows_it(cli, tmp_path, monkeypatch):
    import pointsd.cli.report

    def broken(args):
        raise RuntimeError("something inside torch\n  with a second line")

    monkeypatch.setattr(pointsd.cli.report, "run_table", broken)
    metrics = tmp_path / "m.json"
    metrics.write_text("{}")
    argv = ["report", "table", "--metrics", metrics, "--out", tmp_path / "t.md"]
    code, line = cli(*argv)
    assert code == 1 and "RuntimeError: something inside torch" in line and "--debug" in line
    assert "second line" not in line
    with pytest.raises(RuntimeError):
        cli("--debug", *argv)


def test_out_of_memory_says_what_to_lower(cli, tmp_path, monkeypatch):
    import pointsd.cli.report

    class OutOfMemoryError(RuntimeError):
        """Stands for torch.cuda.OutOfMemoryError (same name, no GPU needed)."""

    def oom(args):
        raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore text")

    monkeypatch.setattr(pointsd.cli.report, "run_table", oom)
    (tmp_path / "m.json").write_text("{}")
    code, line = cli("report", "table", "--metrics", tmp_path / "m.json", "--out", tmp_path / "t.md")
    assert code == 2 and "out of memory (CUDA out of memory. Tried to allocate 2.00 GiB)" in line
    assert "--batch-size" in line and "more text" not in line


def test_corrupt_resume_state_is_one_line(cli, h5_root, tmp_path, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(staging, "publish", lambda work, out: None)  # as if killed before publishing
    assert cli(*finetune_argv(h5_root, out))[0] == 0
    monkeypatch.undo()
    [work] = staging.partials(out)
    (work / "metrics.json").unlink()  # as if killed after the checkpoint
    (work / "state" / "last.pt").write_bytes(b"\x00" * 100)
    code, line = cli(*finetune_argv(h5_root, out))
    assert code == 2 and str(work / "state" / "last.pt") in line and "--overwrite" in line
    assert "Weights only" not in line
    assert cli(*finetune_argv(h5_root, out, "--overwrite"))[0] == 0
    assert json.loads((out / "metrics.json").read_text())["last_epoch"] == 1
