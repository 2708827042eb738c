"""Pre-training as the official code computes it (docs/FIDELITY.md), and its named variants:

- FPS of pre-training starts at a random point of each cloud;
- stage 2 ``per_encoder``: teacher and student each group the cloud and draw their own patch mix, only
  the (mixed) image is shared; ``shared``: one grouping and one mix for both;
- the dataset takes the first ``npoints`` stored points, shuffled (``first``) or a random subset (``whole``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pointsd.data.normalize import pc_normalize
from pointsd.data.render import view_name
from pointsd.data.shapenet55 import subset_indices
from pointsd.data.ulip_renders import ShapeNet55Pretrain
from pointsd.diffusion.resampler import ResamplerConfig
from pointsd.diffusion.stable_diffusion import load_stable_diffusion, write_tiny_sd
from pointsd.diffusion.stage_models import Stage1Model, Stage2Student
from pointsd.diffusion.teacher import Stage2Teacher
from pointsd.models.backbone import PointTransformer
from pointsd.models.config import BackboneConfig
from pointsd.train import pretrain
from pointsd.train.pretrain import NoiseConfig, group_random_start, stage2_loss

TINY = BackboneConfig(trans_dim=32, depth=1, num_heads=2, group_size=8, num_group=8, encoder_dims=32,
                      drop_path_rate=0.0)
RESAMPLER = ResamplerConfig(dim=32, depth=1, dim_head=16, heads=2, ff_mult=2)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory):
    sd = load_stable_diffusion(write_tiny_sd(tmp_path_factory.mktemp("sd") / "sd-tiny"))
    torch.manual_seed(0)
    teacher = Stage2Teacher(Stage1Model(TINY, sd.unet), sd.noise_scheduler)
    return sd, teacher, Stage2Student(TINY, teacher.target_dim, RESAMPLER)


def _record_stage2(models, monkeypatch: pytest.MonkeyPatch, grouping: str, mix_prob: float) -> dict:
    """Run one ``stage2_loss``; return the centers each encoder got and the images encoded."""
    sd, teacher, student = models
    seen: dict = {"images": []}
    real_latents = pretrain.batch_latents

    def latents(vae, images, *args):
        seen["images"].append(images.clone())
        return real_latents(vae, images, *args)

    monkeypatch.setattr(pretrain, "batch_latents", latents)
    hooks = [m.register_forward_hook(lambda _m, args, _out, key=key: seen.setdefault(key, args[1].clone()))
             for m, key in ((teacher, "teacher"), (student, "student"))]
    g = torch.Generator().manual_seed(0)
    batch = {"points": torch.rand(4, 64, 3, generator=g) - 0.5, "image": torch.rand(4, 3, 32, 32, generator=g) * 2 - 1}
    try:
        torch.manual_seed(3)
        stage2_loss(student, teacher, sd.vae, batch, NoiseConfig(mix_prob=mix_prob), grouping=grouping)
    finally:
        for hook in hooks:
            hook.remove()
    seen["batch"] = batch
    return seen


def _is_subset_of_cloud(center: torch.Tensor, points: torch.Tensor) -> bool:
    return bool(((center[:, :, None] - points[:, None]) ** 2).sum(-1).min(-1).values.max() < 1e-12)


def test_pretraining_fps_starts_at_a_random_point() -> None:
    model = PointTransformer(TINY)
    points = torch.rand(2, 64, 3)
    starts = set()
    for seed in range(6):
        torch.manual_seed(seed)
        _, center = group_random_start(model, points)
        assert _is_subset_of_cloud(center, points)
        starts.add(tuple(center[0, 0].tolist()))
    assert len(starts) > 1  # not always the first point
    _, plain = model.group(points)
    assert torch.equal(plain[:, 0], points[:, 0])  # the backbone's own FPS (downstream) starts at the first point


def test_stage2_each_encoder_groups_and_mixes_itself(models, monkeypatch: pytest.MonkeyPatch) -> None:
    for mix_prob in (0.0, 1.0):
        seen = _record_stage2(models, monkeypatch, "per_encoder", mix_prob)
        assert len(seen["images"]) == 1  # one (mixed) image for both encoders
        assert not torch.equal(seen["teacher"], seen["student"])  # own FPS start (and own patch mix)
        if mix_prob == 0.0:
            for enc in ("teacher", "student"):
                assert _is_subset_of_cloud(seen[enc], seen["batch"]["points"])
        else:  # mixed: some of each cloud's centers come from its partner
            assert not _is_subset_of_cloud(seen["student"], seen["batch"]["points"])
            assert not _is_subset_of_cloud(seen["teacher"], seen["batch"]["points"])
            assert not torch.equal(seen["images"][0], seen["batch"]["image"])


def test_stage2_shared_grouping_feeds_one_grouping_to_both(models, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _record_stage2(models, monkeypatch, "shared", 1.0)
    assert torch.equal(seen["teacher"], seen["student"])


def test_first_subset_is_a_shuffle_of_the_first_points() -> None:
    torch.manual_seed(0)
    first = subset_indices(8192, 1024, "first")
    assert sorted(first.tolist()) == list(range(1024)) and not np.array_equal(first, np.arange(1024))
    assert np.array_equal(subset_indices(1024, 1024, "first"), np.arange(1024))  # all points: stored order
    whole = subset_indices(8192, 1024, "whole")
    assert len(set(whole.tolist())) == 1024 and whole.max() >= 1024


def test_pretrain_dataset_uses_the_first_points(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cloud = np.concatenate([rng.random((32, 3)), rng.random((96, 3)) + 5.0]).astype(np.float32)
    shape_id = "02691156-abc"
    (tmp_path / "ShapeNet55-34" / "shapenet_pc").mkdir(parents=True)
    (tmp_path / "ShapeNet55-34" / "ShapeNet-55").mkdir()
    np.save(tmp_path / "ShapeNet55-34" / "shapenet_pc" / f"{shape_id}.npy", cloud)
    (tmp_path / "ShapeNet55-34" / "ShapeNet-55" / "train.txt").write_text(f"{shape_id}.npy\n")
    (tmp_path / "renders" / shape_id).mkdir(parents=True)
    Image.new("RGBA", (16, 16), (255, 0, 0, 255)).save(tmp_path / "renders" / shape_id / view_name(shape_id, 0))
    args = (tmp_path / "ShapeNet55-34", tmp_path / "renders", "train", 32, 16, 0, False)
    torch.manual_seed(0)
    points = ShapeNet55Pretrain(*args, subset="first")[0]["points"].numpy()
    expected = pc_normalize(cloud[:32])
    assert np.allclose(np.sort(points, axis=0), np.sort(expected, axis=0), atol=1e-6)
    assert not np.allclose(points, expected)  # shuffled
    whole = ShapeNet55Pretrain(*args, subset="whole")[0]["points"].numpy()
    assert not np.allclose(np.sort(whole, axis=0), np.sort(expected, axis=0), atol=1e-3)


def test_stage1_noise_timesteps_and_latent_scaling(models, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stage 1: t ~ U[500, 1000) per sample, the scheduler's add_noise of the VAE latent × scaling_factor,
    loss = MSE(predicted noise, ε)."""
    sd, _, _ = models
    torch.manual_seed(0)
    model = Stage1Model(TINY, sd.unet)
    seen: dict = {}
    real_add_noise = sd.noise_scheduler.add_noise

    def add_noise(latents, eps, t):
        seen.update(latents=latents, eps=eps, t=t)
        return real_add_noise(latents, eps, t)

    monkeypatch.setattr(sd.noise_scheduler, "add_noise", add_noise)
    images = torch.rand(64, 3, 32, 32) * 2 - 1
    batch = {"points": torch.rand(64, 64, 3) - 0.5, "image": images}
    hook = model.register_forward_hook(lambda _m, args, out: seen.update(noisy=args[2], pred=out))
    torch.manual_seed(1)
    loss = pretrain.stage1_loss(model, sd.vae, sd.noise_scheduler, batch, NoiseConfig(mix_prob=0.0))
    hook.remove()
    assert seen["t"].min() >= 500 and seen["t"].max() < 1000 and len(set(seen["t"].tolist())) > 10
    torch.manual_seed(2)
    drawn = pretrain.encode_latents(sd.vae, images[:2])
    torch.manual_seed(2)
    with torch.no_grad():
        sampled = sd.vae.encode(images[:2]).latent_dist.sample() * sd.vae.config.scaling_factor
    assert torch.equal(drawn, sampled) and seen["latents"].shape == (64, 4, 4, 4)  # sampled latent × scaling
    assert torch.equal(seen["noisy"], real_add_noise(seen["latents"], seen["eps"], seen["t"]))
    assert torch.equal(loss, torch.nn.functional.mse_loss(seen["pred"], seen["eps"]))


def test_what_each_stage_trains(tmp_path: Path) -> None:
    """Stage 1 trains backbone, global projection and IP layers; stage 2 the fresh backbone and the resampler;
    SD (and the stage-2 teacher) stay frozen."""
    from pointsd.diffusion.stage_models import save_stage1
    from pointsd.train.pretrain import PretrainConfig, build_models
    from pointsd.train.probe import ProbeConfig
    from pointsd.train.speed import plan_for

    sd_dir = tmp_path / "sd"
    write_tiny_sd(sd_dir)
    base = {"sd_dir": sd_dir, "out_dir": tmp_path / "out", "epochs": 1, "batch_size": 2, "lr": 1e-3,
            "warmup_epochs": 0, "weight_decay": 0.01, "grad_clip": 1.0, "noise": NoiseConfig(), "npoints": 64,
            "image_size": 32, "backbone": TINY, "resampler": RESAMPLER, "probe": ProbeConfig(), "probe_every": None,
            "device": "cpu"}
    plan = plan_for("exact", torch.device("cpu"))
    one = build_models(PretrainConfig(stage=1, **base), plan, torch.device("cpu"))
    assert set(one.trained) == {"backbone", "global_proj", "adapter_modules"}
    trained = {id(p) for m in one.trained.values() for p in m.parameters()}
    assert all(p.requires_grad == (id(p) in trained) for p in one.model.parameters())
    assert not any(p.requires_grad for p in one.vae.parameters())
    save_stage1(tmp_path / "s1", one.model, TINY)
    two = build_models(PretrainConfig(stage=2, stage1_dir=tmp_path / "s1", **base), plan, torch.device("cpu"))
    assert set(two.trained) == {"backbone", "resampler"}
    assert all(p.requires_grad for p in two.model.parameters())
    assert not any(p.requires_grad for p in two.teacher.parameters())


def test_optimiser_and_schedule_are_the_official_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """AdamW (lr, betas (0.9, 0.999), weight decay, eps 1e-8) and a cosine schedule with warm-up epochs, stepped
    once per batch over every batch (5 samples in batches of 2: 3 steps an epoch)."""
    from pointsd.train.pretrain import PretrainConfig, run_pretrain
    from pointsd.train.probe import ProbeConfig

    captured: dict = {}

    class Stop(Exception):
        pass

    def fake_train(accelerator, loop_cfg, *, optimizer, scheduler, **_kw):
        captured.update(optimizer=optimizer, scheduler=scheduler)
        raise Stop

    monkeypatch.setattr(pretrain, "train", fake_train)
    sd_dir = write_tiny_sd(tmp_path / "sd")
    cfg = PretrainConfig(stage=1, sd_dir=sd_dir, out_dir=tmp_path / "out", epochs=4, batch_size=2, lr=1.25e-4,
                         warmup_epochs=1, weight_decay=0.01, grad_clip=1.0, noise=NoiseConfig(), npoints=64,
                         image_size=32, backbone=TINY, probe=ProbeConfig(), probe_every=None, device="cpu")
    data = [{"points": torch.rand(64, 3), "image": torch.zeros(3, 32, 32)} for _ in range(5)]
    with pytest.raises(Stop):
        run_pretrain(cfg, data)
    opt = captured["optimizer"]
    assert isinstance(getattr(opt, "optimizer", opt), torch.optim.AdamW)
    group = opt.param_groups[0]
    assert (group["betas"], group["weight_decay"], group["eps"]) == ((0.9, 0.999), 0.01, 1e-8)
    lambdas = getattr(captured["scheduler"], "scheduler", captured["scheduler"]).lr_lambdas[0]
    warmup, total = 3, 12  # 1 warm-up epoch of 3 steps, 4 epochs
    assert lambdas(0) == 0.0 and lambdas(warmup) == 1.0 and abs(lambdas(warmup // 2) - 1 / warmup) < 1e-9
    assert abs(lambdas((warmup + total) // 2) - 0.5 * (1 + np.cos(np.pi * ((warmup + total) // 2 - warmup) / (total - warmup)))) < 1e-9
