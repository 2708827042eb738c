"""The tiny SD learns the rendered views (pointsd/diffusion/tiny_sd_training.py, `pointsd sd tiny`)."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

from pointsd import cli
from pointsd.diffusion.stable_diffusion import SD15_SCHEDULER_CONFIG, TRAINING_REPORT, write_tiny_sd
from pointsd.diffusion.tiny_sd_training import TinySDTraining, denoising_loss, unconditional_context
from pointsd.errors import PointSDError


def _views(n: int = 8, size: int = 32) -> torch.Tensor:
    """White images with one dark disc each (radius and place vary) → ``(n,3,S,S)`` in [-1, 1]."""
    gen = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    out = torch.ones(n, 3, size, size)
    for i in range(n):
        cx, cy, r = (torch.rand(3, generator=gen) * torch.tensor([16, 16, 6]) + torch.tensor([8, 8, 4])).tolist()
        out[i, :, (xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = -0.6
    return out


def _training(**kw) -> TinySDTraining:
    return TinySDTraining(**{"vae_steps": 40, "unet_steps": 60, "batch_size": 8, "lr": 2e-3, "kl_weight": 1e-6,
                             "caption_dropout": 1.0, "seed": 0, **kw})


def test_training_lowers_both_losses_and_sets_the_scaling_factor(tmp_path):
    out = write_tiny_sd(tmp_path / "sd", seed=0, images=_views(), training=_training())
    report = json.loads((out / TRAINING_REPORT).read_text())
    assert report["views"] == 8 and report["image_size"] == 32
    assert report["vae_reconstruction_after"] < 0.5 * report["vae_reconstruction_before"], report
    assert report["denoising_after"] < 0.7 * report["denoising_before"], report
    vae = AutoencoderKL.from_pretrained(out / "vae")
    assert vae.config.scaling_factor == pytest.approx(report["scaling_factor"])
    assert vae.config.scaling_factor != 0.18215
    # the saved UNet is the trained one: its loss on the views is the recorded one
    unet = UNet2DConditionModel.from_pretrained(out / "unet")
    loss = denoising_loss(unet, vae, DDPMScheduler.from_config(SD15_SCHEDULER_CONFIG), _views(), seed=1)
    assert loss == pytest.approx(report["denoising_after"], rel=1e-4)


def test_training_is_deterministic(tmp_path):
    a = write_tiny_sd(tmp_path / "a", seed=0, images=_views(), training=_training(vae_steps=3, unet_steps=3))
    b = write_tiny_sd(tmp_path / "b", seed=0, images=_views(), training=_training(vae_steps=3, unet_steps=3))
    assert (a / TRAINING_REPORT).read_text() == (b / TRAINING_REPORT).read_text()
    assert (a / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == \
        (b / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()


def test_the_unet_trains_on_the_context_pointsd_gives_it():
    from pointsd.diffusion.point_conditioning import point_encoder_states
    from pointsd.diffusion.stable_diffusion import TINY_UNET_CONFIG, build_unet

    model = build_unet(TINY_UNET_CONFIG)
    text, _ = point_encoder_states(torch.randn(3, 4, TINY_UNET_CONFIG["cross_attention_dim"]))
    assert torch.equal(unconditional_context(3, model), text)


def test_bad_budget_is_refused(tmp_path):
    with pytest.raises(PointSDError, match="lr"):
        write_tiny_sd(tmp_path / "sd", images=_views(), training=_training(lr=0.0))
    with pytest.raises(PointSDError, match="caption_dropout"):
        write_tiny_sd(tmp_path / "sd", images=_views(), training=_training(caption_dropout=1.5))
    with pytest.raises(PointSDError, match="3 captions for 8 rendered views"):
        write_tiny_sd(tmp_path / "sd", images=_views(), training=_training(), captions=["a"] * 3)
    assert not (tmp_path / "sd").exists()


def _cross_attention_keys(folder) -> dict[str, torch.Tensor]:
    unet = UNet2DConditionModel.from_pretrained(folder / "unet")
    return {k: v for k, v in unet.state_dict().items() if "attn2.to_k" in k or "attn2.to_v" in k}


def test_captions_train_the_cross_attention_the_point_tokens_use(tmp_path):
    """Unconditional training leaves the cross-attention keys/values (copied into PointSD's IP layers) at
    their random init (decayed by AdamW): zero contexts give them no gradient. With captions they learn."""
    captions = [f"a rendering of a {'disc' if i % 2 else 'ring'} {i}" for i in range(8)]
    random = _cross_attention_keys(write_tiny_sd(tmp_path / "random", seed=0))
    plain = _cross_attention_keys(write_tiny_sd(tmp_path / "plain", seed=0, images=_views(), training=_training(
        vae_steps=3, unet_steps=3)))
    captioned = _cross_attention_keys(write_tiny_sd(tmp_path / "cap", seed=0, images=_views(), captions=captions,
                                                    training=_training(vae_steps=3, unet_steps=3, caption_dropout=0.1)))
    decay = (1 - 2e-3 * 0.01) ** 3  # AdamW's decoupled weight decay, 3 steps: all that moves a weight without gradient
    assert random and all(torch.allclose(plain[k], random[k] * decay, rtol=1e-6, atol=0) for k in random)
    assert all(not torch.allclose(captioned[k], random[k] * decay, rtol=1e-3, atol=0) for k in random)


def test_cli_without_steps_writes_the_random_init_sd(tmp_path):
    rc = cli.main(["sd", "tiny", "--out", str(tmp_path / "sd"), "--seed", "0", "--vae-steps", "0", "--unet-steps", "0",
                   "--image-size", "32", "--batch-size", "8", "--lr", "1e-3", "--kl-weight", "0", "--caption-dropout", "0.1",
                   "--data-root", str(tmp_path / "none"), "--renders", str(tmp_path / "none")])
    assert rc == 0 and not (tmp_path / "sd" / TRAINING_REPORT).exists()
    random = write_tiny_sd(tmp_path / "ref", seed=0)
    assert (tmp_path / "sd" / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == \
        (random / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
