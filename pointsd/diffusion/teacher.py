"""The stage-2 teacher (SPEC §3): a frozen stage-1 model whose target is the output of the UNet's
last down block for the image latent noised to t = 0.

As in the official ``train_pointsd.py``, the latent goes through the scheduler's ``add_noise`` at
timestep 0 with a fresh ε on every call (``sqrt(ᾱ_0)·z + sqrt(1-ᾱ_0)·ε``, ≈ ``0.99958·z + 0.0292·ε``
for SD v1.5); it is not used clean.

Two modes give the same target: ``down`` runs only the down path (``conv_in``, time embedding, down
blocks), skipping the mid block and the up path the target does not depend on; ``full`` runs the
whole UNet and captures the block with a hook (the reference). At 64 px with SD v1.5 the last down
block gives ``(B, 1280, 1, 1)``; larger maps are average-pooled to ``(B, C)``.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from torch import nn

from pointsd.diffusion.point_conditioning import point_encoder_states
from pointsd.diffusion.stage_models import Stage1Model
from pointsd.errors import PointSDError

TEACHER_MODES = ("down", "full")


class Stage2Teacher(nn.Module):
    """Frozen stage-1 model; :meth:`forward` gives the last-down-block feature of latents noised to t = 0."""

    def __init__(self, stage1: Stage1Model, noise_scheduler: DDPMScheduler, mode: str = "down") -> None:
        """``noise_scheduler``: the SD scheduler whose ``add_noise`` noises the latent to t = 0."""
        super().__init__()
        if mode not in TEACHER_MODES:
            raise PointSDError(f"teacher mode must be one of {TEACHER_MODES}, got {mode!r}")
        self.stage1 = stage1.requires_grad_(False).eval()
        self.noise_scheduler = noise_scheduler
        self.mode = mode

    @property
    def target_dim(self) -> int:
        return self.stage1.unet.config.block_out_channels[-1]

    def train(self, mode: bool = True) -> Stage2Teacher:
        """The teacher stays in eval mode."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, neighborhood: torch.Tensor, center: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """Clean ``latents (B,4,h,w)`` → target ``(B, C)`` of the latents noised to t = 0 (fresh ε);
        ``full`` runs the whole UNet and hooks the block."""
        states = point_encoder_states(self.stage1.point_tokens(neighborhood, center))
        timesteps = torch.zeros(latents.shape[0], dtype=torch.long, device=latents.device)
        latents = self.noise_scheduler.add_noise(latents, torch.randn_like(latents), timesteps)
        unet = self.stage1.unet
        if self.mode == "down":
            return down_path_feature(unet, latents, timesteps, states)
        return full_forward_feature(unet, latents, timesteps, states)


def full_forward_feature(
    unet: UNet2DConditionModel, latents: torch.Tensor, timesteps: torch.Tensor, encoder_hidden_states: Any
) -> torch.Tensor:
    """The last down block's output captured by a hook during a full UNet forward, pooled to ``(B, C)``."""
    captured: list[torch.Tensor] = []
    handle = unet.down_blocks[-1].register_forward_hook(lambda _m, _i, out: captured.append(out[0]))
    try:
        unet(latents, timesteps, encoder_hidden_states=encoder_hidden_states)
    finally:
        handle.remove()
    return pool_feature(captured[0])


def down_path_feature(
    unet: UNet2DConditionModel, latents: torch.Tensor, timesteps: torch.Tensor, encoder_hidden_states: Any
) -> torch.Tensor:
    """``latents (B,4,h,w)``, ``timesteps (B,)`` → last down block output pooled to ``(B, C)``.

    ``encoder_hidden_states`` is what the full UNet forward takes (a tensor, or the IP-adapter tuple).
    """
    emb = unet.time_embedding(unet.get_time_embed(sample=latents, timestep=timesteps))
    if unet.config.center_input_sample:
        latents = 2 * latents - 1.0
    sample = unet.conv_in(latents)
    for block in unet.down_blocks:
        if getattr(block, "has_cross_attention", False):
            sample, _ = block(hidden_states=sample, temb=emb, encoder_hidden_states=encoder_hidden_states)
        else:
            sample, _ = block(hidden_states=sample, temb=emb)
    return pool_feature(sample)


def pool_feature(feature: torch.Tensor) -> torch.Tensor:
    """``(B,C,H,W)`` → ``(B,C)`` by global average (exact for ``1×1``)."""
    return feature.mean(dim=(2, 3))
