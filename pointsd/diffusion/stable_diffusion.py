"""Stable Diffusion parts: load a diffusers folder (real SD v1.5 or the embedded tiny one), write the tiny one.

A Stable Diffusion folder is the diffusers layout: ``unet/``, ``vae/``, ``scheduler/`` (each with its
config and weights), and for generation ``text_encoder/``, ``tokenizer/`` and ``model_index.json``.
The real SD v1.5 folder loads unchanged. ``SD15_UNET_CONFIG`` / ``SD15_VAE_CONFIG`` are SD v1.5's
architectures written inline, so the benchmark can build them with random weights and no download.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    DDPMScheduler,
    PNDMScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)

from pointsd.errors import PointSDError, first_line
from pointsd.diffusion.tiny_sd_training import TinySDTraining, train_tiny_sd
from pointsd.utils import atomic, json_io

#: SD v1.5 ``scheduler/scheduler_config.json`` (PNDM; training uses DDPM with the same betas).
SD15_SCHEDULER_CONFIG: dict[str, Any] = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "clip_sample": False,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "prediction_type": "epsilon",
    "trained_betas": None,
}

_SD15_DOWN = ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D")
_SD15_UP = ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")

#: SD v1.5 ``unet/config.json`` architecture.
SD15_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": _SD15_DOWN,
    "up_block_types": _SD15_UP,
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "act_fn": "silu",
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "center_input_sample": False,
    "mid_block_scale_factor": 1,
}

#: SD v1.5 ``vae/config.json`` architecture.
SD15_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "act_fn": "silu",
    "sample_size": 512,
    "scaling_factor": 0.18215,
}

#: The embedded tiny profile: SD v1.5's block types with small widths (64 px image → 8×8 latent → 1×1).
TINY_UNET_CONFIG: dict[str, Any] = {
    **SD15_UNET_CONFIG,
    "sample_size": 8,
    "block_out_channels": (32, 64, 64, 64),
    "layers_per_block": 1,
    "cross_attention_dim": 64,
    "attention_head_dim": 4,
    "norm_num_groups": 16,
}

TINY_VAE_CONFIG: dict[str, Any] = {
    **SD15_VAE_CONFIG,
    "block_out_channels": (16, 32, 32, 32),
    "layers_per_block": 1,
    "norm_num_groups": 16,
    "sample_size": 64,
}

TINY_TEXT_ENCODER: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "max_position_embeddings": 77,
    "projection_dim": 64,
}

REQUIRED_PARTS = ("unet", "vae", "scheduler")
TRAINING_REPORT = "training.json"  # the tiny SD's losses before and after training on the renders


@dataclass
class StableDiffusionParts:
    """The frozen SD pieces pre-training needs."""

    unet: UNet2DConditionModel
    vae: AutoencoderKL
    noise_scheduler: DDPMScheduler


def check_sd_folder(model_dir: str | os.PathLike, parts: tuple[str, ...] = REQUIRED_PARTS) -> Path:
    """Raise :class:`PointSDError` naming the path when ``model_dir`` or one of ``parts`` is missing."""
    root = Path(model_dir)
    if not root.is_dir():
        raise PointSDError(f"Stable Diffusion folder not found: {root}")
    for part in parts:
        config = root / part / ("scheduler_config.json" if part == "scheduler" else "config.json")
        if part == "tokenizer":
            config = root / part / "tokenizer_config.json"
        if not config.is_file():
            raise PointSDError(f"Stable Diffusion folder {root} has no {part}/ part (missing {config})")
    return root


def load_stable_diffusion(model_dir: str | os.PathLike) -> StableDiffusionParts:
    """Load UNet, VAE and the DDPM noise scheduler from a diffusers folder, frozen, in eval mode."""
    root = check_sd_folder(model_dir)
    unet = _load(UNet2DConditionModel, root, "unet")
    vae = _load(AutoencoderKL, root, "vae")
    scheduler = _load(DDPMScheduler, root, "scheduler")
    for model in (unet, vae):
        model.requires_grad_(False)
        model.eval()
    return StableDiffusionParts(unet=unet, vae=vae, noise_scheduler=scheduler)


def _load(cls: Any, root: Path, part: str) -> Any:
    try:
        return cls.from_pretrained(root, subfolder=part)
    except Exception as err:  # noqa: BLE001 - any broken part is the same user error
        raise PointSDError(f"cannot load {part} from Stable Diffusion folder {root / part}: "
                           f"{first_line(err)}") from err


def build_unet(config: dict[str, Any]) -> UNet2DConditionModel:
    """A randomly initialised UNet from an inline config (e.g. :data:`SD15_UNET_CONFIG`)."""
    return UNet2DConditionModel(**config)


def build_vae(config: dict[str, Any]) -> AutoencoderKL:
    """A randomly initialised VAE from an inline config (e.g. :data:`SD15_VAE_CONFIG`)."""
    return AutoencoderKL(**config)


def tiny_tokenizer() -> Any:
    """A CLIP tokenizer with a byte-level vocabulary (256 bytes, word-final forms, 2 specials), no merges."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[], model_max_length=77)


def write_tiny_sd(out_dir: str | os.PathLike, seed: int = 0, images: torch.Tensor | None = None,
                  training: TinySDTraining | None = None, captions: list[str] | None = None) -> Path:
    """Write the tiny Stable Diffusion (unet, vae, scheduler, text_encoder, tokenizer) atomically: random
    init from ``seed``; with ``images (N,3,S,S)`` and ``training``, first trained on them and their
    ``captions`` (N strings; ``None``: unconditional) (:mod:`pointsd.diffusion.tiny_sd_training`), its
    losses written as ``training.json``."""
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, **TINY_TEXT_ENCODER,
    ))
    pipe = StableDiffusionPipeline(
        vae=build_vae(TINY_VAE_CONFIG),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=build_unet(TINY_UNET_CONFIG),
        scheduler=PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    report = None
    if training is not None and images is not None:
        contexts = None if captions is None else encode_captions(pipe.tokenizer, pipe.text_encoder, captions)
        report = train_tiny_sd(pipe.unet, pipe.vae, DDPMScheduler.from_config(SD15_SCHEDULER_CONFIG), images,
                               contexts, training)
    out = Path(out_dir)
    with atomic.atomic_path(out) as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        if report is not None:
            json_io.write_json(Path(tmp) / TRAINING_REPORT, asdict(report))
    return out


@torch.no_grad()
def encode_captions(tokenizer: Any, text_encoder: Any, captions: list[str], batch: int = 64) -> torch.Tensor:
    """``captions`` (N strings) → their text-encoder states ``(N, max_length, hidden)``, padded as SD pads them."""
    ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    return torch.cat([text_encoder(chunk).last_hidden_state for chunk in ids.split(batch)])
