"""The stage-2 distillation target: the output of the UNet's last down block (SPEC §3).

Only the down path runs (``conv_in``, time embedding, down blocks); the mid block and the up path,
which the target does not depend on, are skipped. At 64 px with SD v1.5 the last down block gives
``(B, 1280, 1, 1)``; larger maps are average-pooled to ``(B, C)``.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import UNet2DConditionModel


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
