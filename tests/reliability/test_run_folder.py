"""A run folder tells the truth: it records its configuration and data, and refuses to be continued with others."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from pointsd.errors import PointSDError
from pointsd.utils import data_record, run_config
from tests.reliability.conftest import finetune_argv
from tests.train.test_finetune import write_h5


@pytest.fixture
def finished(cli, h5_root, tmp_path):
    """A finished one-epoch run folder and the bytes of its metrics.json."""
    out = tmp_path / "run"
    assert cli(*finetune_argv(h5_root, out, "--lr", "0.01"))[0] == 0
    return out, (out / "metrics.json").read_bytes()


@pytest.mark.parametrize("flags, key", [(["--lr", "0.02"], "lr: 0.01 → 0.02"),
                                        (["--lr", "0.01", "--depth", "2"], "backbone.depth: 1 → 2")])
def test_other_configuration_is_refused(cli, h5_root, finished, flags, key):
    out, metrics = finished
    code, line = cli(*finetune_argv(h5_root, out, *flags))
    assert code == 2 and str(out) in line and key in line and "--overwrite" in line and "--out" in line
    assert (out / "metrics.json").read_bytes() == metrics


def test_same_configuration_is_a_no_op(cli, h5_root, finished):
    """Keys that are not configuration (device, progress bar, workers) may differ."""
    out, metrics = finished
    assert cli(*finetune_argv(h5_root, out, "--lr", "0.01", "--device", "cpu", "--num-workers", "0")) == (0, "")
    assert (out / "metrics.json").read_bytes() == metrics


def test_overwrite_starts_over(cli, h5_root, finished):
    out, _ = finished
    assert cli(*finetune_argv(h5_root, out, "--lr", "0.02", "--overwrite")) == (0, "")
    assert json.loads((out / "metrics.json").read_text())["config"]["lr"] == 0.02
    assert json.loads((out / run_config.RECORD).read_text())["config"]["lr"] == 0.02


def test_overwrite_refuses_a_folder_pointsd_did_not_make(cli, h5_root, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    code, line = cli(*finetune_argv(h5_root, tmp_path / "mine", "--overwrite"))
    assert code == 2 and "not a pointsd run folder" in line
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep me"


def test_run_without_record_is_refused(tmp_path):
    (tmp_path / "state").mkdir()
    with pytest.raises(PointSDError, match="configuration is unknown"):
        run_config.check_run_folder(tmp_path, {"lr": 1}, {}, result="metrics.json")


def test_configuration_keys():
    config = {"lr": 0.1, "device": "cuda", "out_dir": "x", "progress": False, "backbone": {"depth": 2}}
    assert run_config.training_config(config) == {"lr": 0.1, "backbone": {"depth": 2}}
    assert run_config.differences({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}, "d": None}) == ["b.c: 2 → 3"]


def test_pretraining_folder_is_checked_too(tmp_path):
    """Pre-training records its configuration as well; its finished result is ``summary.json``."""
    from dataclasses import replace

    from pointsd.diffusion.stable_diffusion import write_tiny_sd
    from pointsd.train.pretrain import NoiseConfig, PretrainConfig, run_pretrain
    from pointsd.train.probe import ProbeConfig
    from tests.train.test_pretrain_resume import TINY, Pairs

    cfg = PretrainConfig(stage=1, sd_dir=write_tiny_sd(tmp_path / "sd"), out_dir=tmp_path / "run", epochs=1,
                         batch_size=4, lr=1.25e-4, weight_decay=0.01, grad_clip=1.0, warmup_epochs=0, npoints=64,
                         image_size=32, backbone=TINY, noise=NoiseConfig(), probe=ProbeConfig(num_points=64),
                         probe_every=None, device="cpu", progress=False)
    summary = run_pretrain(cfg, Pairs())
    written = (tmp_path / "run" / "summary.json").read_bytes()
    assert run_pretrain(replace(cfg, progress=True), Pairs()) == summary
    assert (tmp_path / "run" / "summary.json").read_bytes() == written
    with pytest.raises(PointSDError, match=r"noise\.t_min: 500 → 400"):
        run_pretrain(replace(cfg, noise=replace(cfg.noise, t_min=400)), Pairs())


def test_other_data_is_refused_naming_it(cli, h5_root, finished, tmp_path):
    """A finished run rerun with another --data-root whose training file differs: one line naming the role."""
    out, metrics = finished
    other = tmp_path / "other"
    shutil.copytree(h5_root, other)
    write_h5(other / "train.h5", 16, 4, 80, 99)
    code, line = cli(*finetune_argv(other, out, "--lr", "0.01"))
    assert code == 2 and f"{out} holds a finished run on other data (train: {h5_root / 'train.h5'}" in line
    assert f"→ {other / 'train.h5'}" in line and "test:" not in line and "--overwrite" in line
    assert (out / "metrics.json").read_bytes() == metrics


def test_same_data_copied_elsewhere_and_touched_is_the_same(cli, h5_root, finished, tmp_path):
    """Identity is the content: a copy at another path, its files touched, is the same data (a no-op)."""
    out, metrics = finished
    copy = tmp_path / "copy"
    shutil.copytree(h5_root, copy)
    for path in copy.iterdir():
        os.utime(path, (1, 1))
    assert cli(*finetune_argv(copy, out, "--lr", "0.01")) == (0, "")
    assert (out / "metrics.json").read_bytes() == metrics
    record = json.loads((out / run_config.RECORD).read_text())["data"]
    assert record["train"]["paths"] == [str(h5_root / "train.h5"), str(h5_root / "shape_names.txt")]
    assert record["train"]["sha256"] != record["test"]["sha256"]


def test_a_folder_that_never_trained_starts_over(cli, h5_root, tmp_path):
    """A run that failed in its first epoch (record, no checkpoint) is started over, even with other settings."""
    out = tmp_path / "run"
    out.mkdir()
    (out / run_config.RECORD).write_text(json.dumps({"config": {"lr": 5.0}, "data": {}}))
    (out / "metrics.jsonl").write_text('{"step": 1, "loss": 9.0}\n')
    assert cli(*finetune_argv(h5_root, out)) == (0, "")
    assert json.loads((out / run_config.RECORD).read_text())["config"]["lr"] != 5.0
    assert '"loss": 9.0' not in (out / "metrics.jsonl").read_text()


def test_member_files_are_named_and_sized(tmp_path):
    """Per-shape files count by relative name and size, index files by content (pointsd/utils/data_record.py)."""
    for folder in ("a", "b"):
        (tmp_path / folder / "s").mkdir(parents=True)
        (tmp_path / folder / "list.txt").write_text("x\n")
        (tmp_path / folder / "s" / "x.npy").write_bytes(b"1234")

    class Shapes:
        def __init__(self, root):
            self.root = root

        def sources(self):
            return data_record.Sources((self.root / "list.txt",), ((self.root, self.root / "s" / "x.npy"),))

    def fp(folder):
        return data_record.fingerprint({"train": Shapes(tmp_path / folder)})

    assert data_record.differences(fp("a"), fp("b")) == []
    (tmp_path / "b" / "s" / "x.npy").write_bytes(b"12345")
    assert data_record.differences(fp("a"), fp("b"))[0].startswith(f"train: {tmp_path / 'a' / 'list.txt'} and 1 more")
    (tmp_path / "b" / "s" / "x.npy").write_bytes(b"1234")
    (tmp_path / "b" / "list.txt").write_text("y\n")
    assert data_record.differences(fp("a"), fp("b"))
