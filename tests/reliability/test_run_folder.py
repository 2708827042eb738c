"""A run folder tells the truth: it records its configuration and refuses to be continued with another."""

from __future__ import annotations

import json

import pytest

from pointsd.errors import PointSDError
from pointsd.utils import run_config
from tests.reliability.conftest import finetune_argv


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
