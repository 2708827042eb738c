"""Whether stage 1's point encoder conditions the UNet: its denoising MSE with the point tokens and without.

Stage 1 (SPEC §2) only teaches the point encoder something when its tokens help the frozen UNet denoise
the shape's view. Without tokens, PointSD's UNet is unconditional: all-zero tokens give exactly zero
through the IP layers (``to_k_ip``/``to_v_ip`` have no bias), as the all-zero text context does through
the text branch. Both are measured on the same draws (sample, its augmentation, latent, ε, t), so the
difference is the conditioning alone; no patch mix (single views, as the UNet learned them).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler
from torch.utils.data import DataLoader, Dataset, Subset

from pointsd.diffusion.point_conditioning import point_encoder_states
from pointsd.diffusion.stage_models import Stage1Model
from pointsd.train.latent_cache import encode_latents


@torch.no_grad()
def conditioning_losses(
    model: Stage1Model, vae: AutoencoderKL, noise_scheduler: DDPMScheduler, dataset: Dataset,
    t_range: tuple[int, int], seed: int = 0, draws: int = 2, samples: int = 256, batch_size: int = 32,
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> dict[str, float]:
    """Mean denoising MSE over ``draws`` passes of the first ``samples`` items of ``dataset`` (dicts with
    ``points (N,3)``, ``image (3,S,S)``) at ``t ~ U[t_range)``, every draw from ``seed`` →
    ``{"with_points", "zero_tokens"}`` (the cap keeps it seconds on a paper-scale set).

    The global RNG is restored afterwards; ``model`` is evaluated in eval mode and left in its mode.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    totals, count = {"with_points": 0.0, "zero_tokens": 0.0}, 0
    subset = Subset(dataset, range(min(samples, len(dataset))))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for _ in range(draws):
            for batch in DataLoader(subset, batch_size=batch_size, shuffle=False):
                points, images = batch["points"].to(device), batch["image"].to(device)
                with autocast():
                    losses = _batch_losses(model, vae, noise_scheduler, points, images, t_range)
                for key, loss in losses.items():
                    totals[key] += loss * len(points)
                count += len(points)
    model.train(was_training)
    return {key: total / count for key, total in totals.items()}


def _batch_losses(model: Stage1Model, vae: AutoencoderKL, noise_scheduler: DDPMScheduler, points: torch.Tensor,
                  images: torch.Tensor, t_range: tuple[int, int]) -> dict[str, float]:
    """``points (B,N,3)``, ``images (B,3,S,S)`` → the batch's MSE with its point tokens and with zeros."""
    latents = encode_latents(vae, images)
    eps = torch.randn_like(latents)
    t = torch.randint(t_range[0], t_range[1], (len(latents),), device=latents.device)
    noisy = noise_scheduler.add_noise(latents, eps, t)
    tokens = model.point_tokens(*model.backbone.group(points))
    out = {}
    for key, given in (("with_points", tokens), ("zero_tokens", torch.zeros_like(tokens))):
        pred = model.unet(noisy, t, encoder_hidden_states=point_encoder_states(given)).sample
        out[key] = F.mse_loss(pred.float(), eps.float()).item()
    return out
