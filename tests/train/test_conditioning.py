"""Stage 1's conditioning check: denoising MSE with the point tokens vs zero tokens (the unconditional UNet)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pointsd.diffusion.stable_diffusion import load_stable_diffusion, write_tiny_sd
from pointsd.diffusion.stage_models import Stage1Model
from pointsd.models.config import BackboneConfig
from pointsd.train.conditioning import conditioning_losses

TINY = BackboneConfig(trans_dim=32, depth=1, num_heads=2, group_size=8, num_group=8, encoder_dims=32,
                      drop_path_rate=0.0)


@pytest.fixture(scope="module")
def sd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_sd(tmp_path_factory.mktemp("sd") / "sd-tiny")


def views(n: int = 6) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    return [{"points": torch.rand(64, 3, generator=g) - 0.5, "image": torch.rand(3, 32, 32, generator=g) * 2 - 1}
            for _ in range(n)]


def losses(model: Stage1Model, sd, seed: int = 0) -> dict[str, float]:
    return conditioning_losses(model, sd.vae, sd.noise_scheduler, views(), (500, 1000), seed, batch_size=4)


def test_zero_tokens_give_the_unconditional_unet_and_tokens_change_it(sd_dir: Path) -> None:
    sd = load_stable_diffusion(sd_dir)
    torch.manual_seed(0)
    model = Stage1Model(TINY, sd.unet)
    fresh = losses(model, sd)
    assert fresh["with_points"] != pytest.approx(fresh["zero_tokens"], rel=1e-6)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "to_v_ip" in name:
                param.zero_()  # the IP branch now adds nothing, whatever the tokens
    silent = losses(model, sd)
    assert silent["with_points"] == silent["zero_tokens"]
    assert silent["zero_tokens"] == fresh["zero_tokens"]  # zero tokens never depended on the IP weights


def test_fixed_draws_restored_rng_and_mode(sd_dir: Path) -> None:
    sd = load_stable_diffusion(sd_dir)
    torch.manual_seed(0)
    model = Stage1Model(TINY, sd.unet).train()
    before = torch.get_rng_state()
    first = losses(model, sd)
    assert torch.equal(torch.get_rng_state(), before) and model.training
    assert losses(model, sd) == first
    assert losses(model, sd, seed=1) != first


def test_samples_caps_the_items_read(sd_dir: Path) -> None:
    sd = load_stable_diffusion(sd_dir)
    torch.manual_seed(0)
    model = Stage1Model(TINY, sd.unet)
    first_four = conditioning_losses(model, sd.vae, sd.noise_scheduler, views()[:4], (500, 1000), samples=10)
    assert conditioning_losses(model, sd.vae, sd.noise_scheduler, views(), (500, 1000), samples=4) == first_four
