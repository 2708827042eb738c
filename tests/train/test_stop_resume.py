"""A stop asked for by SIGTERM or SIGUSR1 ends a run after a whole step with its state saved; the same
run resumed from there ends with exactly the weights of an uninterrupted run (CPU), also when the
stop fell in the middle of an epoch and the data set draws at random when it reads a sample."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from pointsd.diffusion.stable_diffusion import write_tiny_sd
from pointsd.errors import RunStopped
from pointsd.models.config import BackboneConfig
from pointsd.train.pretrain import NoiseConfig, PretrainConfig, run_pretrain
from pointsd.train.probe import ProbeConfig
from pointsd.utils import staging

TINY = BackboneConfig(trans_dim=32, depth=1, num_heads=2, group_size=8, num_group=8, encoder_dims=32,
                      drop_path_rate=0.1)


class JitteredPairs(Dataset):
    """12 fixed (points, image) pairs; reading one jitters its points from torch's global RNG (as the
    ShapeNet-55 reader draws its point subset and flip)."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.items = [{"points": torch.rand(64, 3, generator=g) - 0.5,
                       "image": torch.rand(3, 32, 32, generator=g) * 2 - 1} for _ in range(12)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        item = self.items[i]
        return {"points": item["points"] + 0.01 * torch.randn(64, 3), "image": item["image"]}


@pytest.fixture(scope="module")
def sd(tmp_path_factory) -> Path:
    return write_tiny_sd(tmp_path_factory.mktemp("sd") / "sd")


def config(sd: Path, out: Path) -> PretrainConfig:
    """3 epochs of 3 steps (12 samples, batch 4, the last batch kept)."""
    return PretrainConfig(stage=1, sd_dir=sd, out_dir=out, epochs=3, batch_size=4, warmup_epochs=1, lr=1e-3,
                          weight_decay=0.01, grad_clip=1.0, npoints=64, image_size=32, backbone=TINY,
                          noise=NoiseConfig(mix_prob=0.5), probe=ProbeConfig(), probe_every=None, device="cpu",
                          log_every=1, progress=False)


def signal_at(step: int, signum: int):
    """An ``on_step`` callback that sends this process ``signum`` after optimiser step ``step``."""
    return lambda s: os.kill(os.getpid(), signum) if s == step else None


@pytest.fixture(scope="module")
def uninterrupted(sd, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "run"
    run_pretrain(config(sd, out), JitteredPairs())
    return out


def test_stopped_and_resumed_equals_uninterrupted(sd, uninterrupted, tmp_path):
    """Stopped in the middle of epoch 1 (SIGUSR1), then at the end of epoch 2 (SIGTERM), then run to the end."""
    out = tmp_path / "run"
    for step, signum in [(2, signal.SIGUSR1), (6, signal.SIGTERM)]:
        with pytest.raises(RunStopped) as stopped:
            run_pretrain(config(sd, out), JitteredPairs(), on_step=signal_at(step, signum))
        assert stopped.value.step == step and stopped.value.signal_name == signal.Signals(signum).name
        assert not out.exists()  # nothing is published before the run finished
        assert torch.load(stopped.value.state, weights_only=True)["loop"]["step"] == step
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the loop's handlers are gone
    summary = run_pretrain(config(sd, out), JitteredPairs())
    assert summary["steps"] == 9
    for name in ("ckpt-stage1.pt", "metrics.jsonl"):
        assert (out / name).read_bytes() == (uninterrupted / name).read_bytes(), name
    assert staging.partials(out) == []  # the resume state went with the finished run
