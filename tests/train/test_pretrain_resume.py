"""A pre-training run killed mid-epoch and restarted with the same config resumes and ends at the same step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from pointsd.diffusion.stable_diffusion import write_tiny_sd
from pointsd.models.config import BackboneConfig
from pointsd.train.pretrain import NoiseConfig, PretrainConfig, run_pretrain
from pointsd.train.probe import ProbeConfig
from pointsd.utils import staging

TINY = BackboneConfig(trans_dim=32, depth=1, num_heads=2, group_size=8, num_group=8, encoder_dims=32,
                      drop_path_rate=0.0)


class Killed(Exception):
    """Stands for the process being killed."""


class Pairs(Dataset):
    """8 fixed (points, image) pairs; ``die_at`` makes the n-th access raise :class:`Killed`."""

    def __init__(self, die_at: int | None = None) -> None:
        g = torch.Generator().manual_seed(0)
        self.items = [{"points": torch.rand(64, 3, generator=g) - 0.5,
                       "image": torch.rand(3, 32, 32, generator=g) * 2 - 1} for _ in range(8)]
        self.die_at, self.calls = die_at, 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        self.calls += 1
        if self.die_at is not None and self.calls >= self.die_at:
            raise Killed
        return self.items[i]


def test_resume_after_interruption_ends_at_the_same_step(tmp_path: Path) -> None:
    sd = write_tiny_sd(tmp_path / "sd")
    cfg = PretrainConfig(stage=1, sd_dir=sd, out_dir=tmp_path / "run", epochs=3, batch_size=4, warmup_epochs=1,
                         lr=1.25e-4, weight_decay=0.01, grad_clip=1.0, npoints=64, image_size=32, backbone=TINY,
                         noise=NoiseConfig(), probe=ProbeConfig(), probe_every=None, device="cpu",
                         log_every=1, progress=False)
    with pytest.raises(Killed):
        run_pretrain(cfg, Pairs(die_at=20))  # dies in the third epoch; state was saved after the second
    [work] = staging.partials(tmp_path / "run")  # where the unfinished run lives (pointsd.utils.staging)
    saved = torch.load(work / "state" / "last.pt", weights_only=True)
    assert saved["loop"]["step"] == 4 and not (tmp_path / "run").exists()
    summary = run_pretrain(cfg, Pairs())
    assert summary["steps"] == 6 and summary["epochs"] == 3
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "run" / "ckpt-stage1.pt").is_file()
