"""Tiny SD folder: layout, SD1.5 block types and scheduler, loading, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from diffusers import StableDiffusionPipeline

from pointsd.diffusion.stable_diffusion import (
    SD15_UNET_CONFIG,
    check_sd_folder,
    load_stable_diffusion,
)
from pointsd.errors import PointSDError


def test_tiny_sd_layout_and_sd15_structure(tiny_sd: Path) -> None:
    for part in ("unet", "vae", "scheduler", "text_encoder", "tokenizer"):
        assert (tiny_sd / part).is_dir()
    assert (tiny_sd / "model_index.json").is_file()
    sd = load_stable_diffusion(tiny_sd)
    assert tuple(sd.unet.config.down_block_types) == tuple(SD15_UNET_CONFIG["down_block_types"])
    assert tuple(sd.unet.config.up_block_types) == tuple(SD15_UNET_CONFIG["up_block_types"])
    cfg = sd.noise_scheduler.config
    assert (cfg.beta_schedule, cfg.beta_start, cfg.beta_end, cfg.num_train_timesteps) == (
        "scaled_linear", 0.00085, 0.012, 1000)
    assert cfg.prediction_type == "epsilon"
    assert not any(p.requires_grad for p in sd.unet.parameters())
    # 64 px → 8×8 latent, like SD1.5
    latents = sd.vae.encode(torch.zeros(1, 3, 64, 64)).latent_dist.mean
    assert latents.shape == (1, 4, 8, 8)


def test_pipeline_loads_with_text_encoder_and_tokenizer(tiny_sd: Path) -> None:
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd)
    ids = pipe.tokenizer("", padding="max_length", max_length=pipe.tokenizer.model_max_length).input_ids
    assert len(ids) == 77 and ids[0] == pipe.tokenizer.bos_token_id and ids[1] == pipe.tokenizer.eos_token_id
    hidden = pipe.text_encoder(torch.tensor([ids]))[0]
    assert hidden.shape == (1, 77, pipe.unet.config.cross_attention_dim)


def test_missing_folder_and_parts_are_named(tiny_sd: Path, tmp_path: Path) -> None:
    with pytest.raises(PointSDError, match="not found"):
        check_sd_folder(tmp_path / "nope")
    broken = tmp_path / "sd"
    shutil.copytree(tiny_sd, broken)
    shutil.rmtree(broken / "vae")
    with pytest.raises(PointSDError, match=r"vae"):
        load_stable_diffusion(broken)


def test_broken_part_is_one_clear_error(tiny_sd: Path, tmp_path: Path) -> None:
    broken = tmp_path / "sd"
    shutil.copytree(tiny_sd, broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(PointSDError, match=str(broken / "unet")):
        load_stable_diffusion(broken)
