"""`pointsd probe`: a checkpoint's frozen features vs the same backbone at random init (the table's probe row)."""

from __future__ import annotations

import json

import pytest
import torch

from pointsd.cli import main
from pointsd.models.config import BackboneConfig

SIZE = ["--trans-dim", "24", "--depth", "1", "--num-heads", "2", "--encoder-dims", "24", "--patch-width", "8",
        "--drop-path-rate", "0", "--num-group", "8", "--group-size", "8"]


def _probe(tmp_path, synth_root, init, *extra):
    return main(["probe", "--init", str(init), "--data-root", str(synth_root), "--out", str(tmp_path / "probe"),
                 "--npoints", "64", "--random-inits", "2", "--policy", "paper", "--device", "cpu", "--speed", "exact",
                 "--seed", "0", "--profile", "default", "--data-profile", "synthetic", "--no-progress", *SIZE, *extra])


def _backbone(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return BackboneConfig(trans_dim=24, depth=1, num_heads=2, encoder_dims=24, patch_width=8, drop_path_rate=0.0,
                          num_group=8, group_size=8).build()


def test_probe_writes_the_checkpoint_and_each_random_init(tmp_path, synth_root):
    ckpt = tmp_path / "ckpt.pt"
    torch.save(_backbone(7).state_dict(), ckpt)
    assert _probe(tmp_path, synth_root, ckpt) == 0
    out = tmp_path / "probe"
    assert sorted(p.name for p in out.glob("*.json")) == ["pretrained.json", "random_seed0.json", "random_seed1.json"]
    pre = json.loads((out / "pretrained.json").read_text())
    rnd = [json.loads((out / f"random_seed{s}.json").read_text()) for s in (0, 1)]
    assert pre["task"] == "probe" and pre["init"] == str(ckpt) and [r["init"] for r in rnd] == ["random"] * 2
    assert [r["meta"]["seed"] for r in rnd] == [0, 1]
    for record in (pre, *rnd):
        assert 0.0 <= record["test"]["overall_acc"] <= 100.0 and 0.0 < record["chance"]["overall_acc"] < 100.0


def test_random_init_of_the_seed_is_the_checkpoint_of_that_init(tmp_path, synth_root):
    """A checkpoint holding random init seed 1 probes exactly as the command's random seed 1: same
    architecture, same initialisation, same probe."""
    ckpt = tmp_path / "seed1.pt"
    torch.save(_backbone(1).state_dict(), ckpt)
    assert _probe(tmp_path, synth_root, ckpt) == 0
    out = tmp_path / "probe"
    pre = json.loads((out / "pretrained.json").read_text())
    assert pre["test"] == json.loads((out / "random_seed1.json").read_text())["test"]


def test_a_checkpoint_of_another_size_is_refused_and_nothing_is_written(tmp_path, synth_root, capsys):
    ckpt = tmp_path / "wide.pt"
    torch.manual_seed(0)
    torch.save(BackboneConfig(trans_dim=48, depth=1, num_heads=2, encoder_dims=24, patch_width=8).build().state_dict(),
               ckpt)
    assert _probe(tmp_path, synth_root, ckpt) != 0
    assert "wide.pt" in capsys.readouterr().err
    assert not list(tmp_path.glob("probe/*.json"))


def test_zero_random_inits_is_refused(tmp_path, synth_root):
    with pytest.raises(SystemExit):
        _probe(tmp_path, synth_root, tmp_path, "--random-inits", "0")
