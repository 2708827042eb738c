"""The down-path-only target equals the last down block's output in a full UNet forward; the teacher
noises the latent to t = 0 with the scheduler's ``add_noise`` and a fresh ε (official stage 2)."""

from __future__ import annotations

from pathlib import Path

import torch

from pointsd.diffusion.point_conditioning import point_encoder_states
from pointsd.diffusion.stable_diffusion import load_stable_diffusion
from pointsd.diffusion.stage_models import Stage1Model
from pointsd.diffusion.teacher import Stage2Teacher, down_path_feature, full_forward_feature
from pointsd.models.config import BackboneConfig

TINY = BackboneConfig(trans_dim=32, depth=1, num_heads=2, group_size=8, num_group=8, encoder_dims=32,
                      drop_path_rate=0.0)


def test_down_path_equals_hooked_full_forward(tiny_sd: Path) -> None:
    model = Stage1Model(TINY, load_stable_diffusion(tiny_sd).unet).eval()
    torch.manual_seed(0)
    latents = torch.randn(3, 4, 8, 8)
    states = point_encoder_states(torch.randn(3, 4, 64))
    for t in (0, 700):
        timesteps = torch.full((3,), t, dtype=torch.long)
        with torch.no_grad():
            fast = down_path_feature(model.unet, latents, timesteps, states)
            full = full_forward_feature(model.unet, latents, timesteps, states)
        assert fast.shape == (3, model.unet.config.block_out_channels[-1])
        assert torch.allclose(fast, full, atol=1e-5)


def test_teacher_modes_agree_and_stay_frozen(tiny_sd: Path) -> None:
    sd = load_stable_diffusion(tiny_sd)
    stage1 = Stage1Model(TINY, sd.unet)
    torch.manual_seed(0)
    points = torch.randn(2, 64, 3)
    neighborhood, center = stage1.backbone.group(points)
    latents = torch.randn(2, 4, 8, 8)
    down = Stage2Teacher(stage1, sd.noise_scheduler, "down")
    down.train()
    assert not down.stage1.training
    torch.manual_seed(1)
    target = down(neighborhood, center, latents)
    torch.manual_seed(1)  # the same ε for the t = 0 noise
    full = Stage2Teacher(stage1, sd.noise_scheduler, "full")(neighborhood, center, latents)
    assert torch.allclose(target, full, atol=1e-5)
    assert not target.requires_grad and not any(p.requires_grad for p in down.parameters())


def test_teacher_noises_the_latent_to_t0_with_the_scheduler_and_a_fresh_eps(tiny_sd: Path) -> None:
    sd = load_stable_diffusion(tiny_sd)
    stage1 = Stage1Model(TINY, sd.unet)
    teacher = Stage2Teacher(stage1, sd.noise_scheduler)
    torch.manual_seed(0)
    neighborhood, center = stage1.backbone.group(torch.randn(2, 64, 3))
    latents = torch.randn(2, 4, 8, 8)
    torch.manual_seed(5)
    target = teacher(neighborhood, center, latents)
    torch.manual_seed(5)
    eps = torch.randn_like(latents)
    abar0 = sd.noise_scheduler.alphas_cumprod[0]
    assert abs(abar0.sqrt().item() - 0.99958) < 1e-5 and abs((1 - abar0).sqrt().item() - 0.0292) < 1e-4  # SD v1.5 betas
    noised = abar0.sqrt() * latents + (1 - abar0).sqrt() * eps
    states = point_encoder_states(stage1.point_tokens(neighborhood, center))
    zero = torch.zeros(2, dtype=torch.long)
    with torch.no_grad():
        expected = down_path_feature(stage1.unet, noised, zero, states)
        clean = down_path_feature(stage1.unet, latents, zero, states)
    assert torch.allclose(target, expected, atol=1e-5)
    assert not torch.allclose(target, clean, atol=1e-4)  # not the clean latent
    assert not torch.allclose(teacher(neighborhood, center, latents), target, atol=1e-6)  # a fresh ε each call
