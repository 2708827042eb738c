"""Pre-training on CPU with tiny tensors: loss falls on a fixed batch, stage 1 → stage 2 end to end,
the stage-2 checkpoint loads into the classifier, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pointsd.diffusion.stable_diffusion import load_stable_diffusion, write_tiny_sd
from pointsd.diffusion.resampler import ResamplerConfig
from pointsd.diffusion.stage_models import Stage1Model, Stage2Student
from pointsd.diffusion.teacher import Stage2Teacher
from pointsd.errors import PointSDError
from pointsd.models.checkpoints import load_pretrained
from pointsd.models.classifier import PointTransformerClassifier
from pointsd.models.config import BackboneConfig
from pointsd.train.pretrain import (
    NoiseConfig,
    PretrainConfig,
    ProbeSets,
    run_pretrain,
    stage1_loss,
    stage2_loss,
)
from pointsd.train.probe import ProbeConfig

TINY = BackboneConfig(trans_dim=32, depth=1, num_heads=2, group_size=8, num_group=8, encoder_dims=32,
                      drop_path_rate=0.0)
RESAMPLER = ResamplerConfig(dim=32, depth=1, dim_head=16, heads=2, ff_mult=2)


@pytest.fixture(scope="module")
def sd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_sd(tmp_path_factory.mktemp("sd") / "sd-tiny")


def pairs(n: int, seed: int = 0, size: int = 32) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    return [{"points": torch.rand(64, 3, generator=g) - 0.5, "image": torch.rand(3, size, size, generator=g) * 2 - 1,
             "id": f"s{i}"} for i in range(n)]


def probe_sets() -> ProbeSets:
    g = torch.Generator().manual_seed(1)
    clouds = [(torch.rand(80, 3, generator=g) * (1 + i % 2), i % 2) for i in range(16)]
    return ProbeSets(clouds[:10], clouds[10:])


def config(sd: Path, out: Path, stage: int, **kw) -> PretrainConfig:
    base = dict(stage=stage, sd_dir=sd, out_dir=out, epochs=2, batch_size=4, lr=1e-3, warmup_epochs=1,
                weight_decay=0.01, grad_clip=1.0, noise=NoiseConfig(),
                npoints=64, image_size=32, backbone=TINY, resampler=RESAMPLER, probe=ProbeConfig(num_points=64),
                probe_every=0, device="cpu", log_every=1, progress=False, profile="test", data_profile="synthetic")
    base.update(kw)
    return PretrainConfig(**base)


def _batch(n: int = 4) -> dict:
    items = pairs(n)
    return {k: torch.stack([it[k] for it in items]) for k in ("points", "image")}


def _overfit(loss_fn, params, steps: int = 8) -> list[float]:
    opt = torch.optim.AdamW(params, lr=3e-3)
    losses = []
    for _ in range(steps):
        torch.manual_seed(0)  # same noise, timesteps and mix decision every step: a truly fixed batch
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_stage1_loss_falls_on_a_fixed_batch(sd_dir: Path) -> None:
    sd = load_stable_diffusion(sd_dir)
    torch.manual_seed(0)
    model = Stage1Model(TINY, sd.unet)
    batch = _batch()
    params = [p for p in model.parameters() if p.requires_grad]
    losses = _overfit(lambda: stage1_loss(model, sd.vae, sd.noise_scheduler, batch, NoiseConfig(mix_prob=0.5)), params)
    assert losses[-1] < 0.8 * losses[0], losses


def test_stage2_loss_falls_on_a_fixed_batch(sd_dir: Path) -> None:
    sd = load_stable_diffusion(sd_dir)
    torch.manual_seed(0)
    teacher = Stage2Teacher(Stage1Model(TINY, sd.unet), sd.noise_scheduler)
    student = Stage2Student(TINY, teacher.target_dim, RESAMPLER)
    batch = _batch()
    losses = _overfit(lambda: stage2_loss(student, teacher, sd.vae, batch, NoiseConfig(mix_prob=0.5)), list(student.parameters()))
    assert losses[-1] < 0.8 * losses[0], losses


def test_stage1_then_stage2_end_to_end(sd_dir: Path, tmp_path: Path) -> None:
    data, probe = pairs(9), probe_sets()  # 9 = 2 full batches of 4 and a last batch of 1, kept (no drop_last)
    s1 = run_pretrain(config(sd_dir, tmp_path / "s1", 1), data, probe)
    for name in ("ckpt-stage1", "global_proj_model", "adapter_modules"):
        assert (tmp_path / "s1" / f"{name}.pt").is_file() and (tmp_path / "s1" / f"{name}.safetensors").is_file()
        assert (tmp_path / "s1" / "best" / f"{name}.pt").is_file()
    assert s1["steps"] == 6 and s1["protocol"] == "paper" and 0 <= s1["best_probe_acc"] <= 100
    assert set(s1["conditioning"]) == {"with_points", "zero_tokens"}
    assert all(0 < v < float("inf") for v in s1["conditioning"].values())
    s2 = run_pretrain(config(sd_dir, tmp_path / "s2", 2, stage1_dir=tmp_path / "s1",
                             probe=ProbeConfig(policy="honest", num_points=64, val_fraction=0.2)), data, probe)
    assert s2["steps"] == 6 and s2["protocol"] == "honest" and s2["meta"]["profile"] == "test"
    assert s2["conditioning"] is None
    for name in ("ckpt-stage2.pt", "ckpt-stage2.safetensors", "resampler.pt", "summary.json", "metrics.jsonl"):
        assert (tmp_path / "s2" / name).is_file()
    records = [json.loads(line) for line in (tmp_path / "s2" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert all({"loss", "lr"} <= set(r) for r in records if "loss" in r)
    assert sum("probe_acc" in r for r in records) == 2
    clf = PointTransformerClassifier(5, TINY)
    report = load_pretrained(clf, tmp_path / "s2" / "ckpt-stage2.pt")
    assert not [k for k in report.missing if not k.startswith("cls_head_finetune")]
    state = torch.load(tmp_path / "s2" / "ckpt-stage2.pt", weights_only=True)
    assert torch.equal(clf.state_dict()["reduce_dim.weight"], state["reduce_dim.weight"])


def test_missing_stage1_checkpoint_and_sd_folder(sd_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(PointSDError, match="ckpt-stage1.pt"):
        run_pretrain(config(sd_dir, tmp_path / "s2", 2, stage1_dir=tmp_path / "none"), pairs(4))
    with pytest.raises(PointSDError, match="needs --stage1"):
        run_pretrain(config(sd_dir, tmp_path / "s2", 2), pairs(4))
    with pytest.raises(PointSDError, match=str(tmp_path / "no-sd")):
        run_pretrain(config(tmp_path / "no-sd", tmp_path / "s1", 1), pairs(4))
