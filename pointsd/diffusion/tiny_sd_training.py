"""Teach the embedded tiny Stable Diffusion the rendered views, so that PointSD's teacher knows the data.

SD v1.5 was trained on images; a random-init tiny SD knows nothing, and stage 2 then distils features
that carry no information about the shapes. This module trains the tiny SD on the pre-training renders,
as Stable Diffusion is trained, in two parts:

1. the VAE: reconstruction MSE + ``kl_weight`` × KL to N(0, I) (an untrained VAE's posterior noise
   swamps its latent mean, and pre-training encodes with ``latent_dist.sample()``); then its
   ``scaling_factor`` is set to 1 / std of the latent means (the rule SD's 0.18215 came from);
2. the UNet: diffusers' standard denoising objective, MSE(ε̂, ε) at timesteps uniform in [0, 1000) with
   the DDPM noising of SD's scheduler, **with captions and caption dropout**, as SD v1.5 was trained:
   each view's context is its caption through the (frozen) text encoder, replaced by the all-zero
   context PointSD gives the text branch with probability ``caption_dropout``. Why captions: PointSD's
   point tokens reach the UNet through IP-Adapter key/value projections *copied from the UNet's own
   cross-attention* (:mod:`pointsd.diffusion.point_conditioning`); trained on zero contexts only, those
   projections never receive a gradient (SD's ``to_k``/``to_v`` have no bias) and the UNet never learns
   to use what cross-attention brings, so stage 1 would condition a UNet that ignores its condition.
   ``caption_dropout: 1.0`` trains it unconditionally.

Both losses are measured before and after on every view with fixed noise and timesteps
(:class:`TrainingReport`); the stage writes them beside the weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

from pointsd.diffusion.point_conditioning import TEXT_CONTEXT_LEN
from pointsd.errors import PointSDError


@dataclass(frozen=True)
class TinySDTraining:
    """Budgets and optimiser of the two parts (params.yaml ``sd.train``)."""

    vae_steps: int
    unet_steps: int
    batch_size: int
    lr: float
    kl_weight: float
    caption_dropout: float
    seed: int

    def validate(self) -> None:
        for name in ("vae_steps", "unet_steps"):
            if getattr(self, name) < 0:
                raise PointSDError(f"sd.train.{name} must be >= 0, got {getattr(self, name)}")
        if self.batch_size < 1 or self.lr <= 0 or self.kl_weight < 0 or not 0.0 <= self.caption_dropout <= 1.0:
            raise PointSDError("sd.train: batch_size >= 1, lr > 0, kl_weight >= 0 and caption_dropout in [0, 1] "
                               f"needed, got {asdict(self)}")


@dataclass
class TrainingReport:
    """Losses on every view (fixed draws): before and after each part; written as ``training.json``."""

    views: int
    image_size: int
    vae_reconstruction_before: float
    vae_reconstruction_after: float
    scaling_factor: float
    denoising_before: float
    denoising_after: float
    config: dict[str, Any]


def unconditional_context(batch: int, unet: UNet2DConditionModel) -> torch.Tensor:
    """The all-zero text context PointSD gives the UNet → ``(batch, TEXT_CONTEXT_LEN, cross_attention_dim)``."""
    return torch.zeros(batch, TEXT_CONTEXT_LEN, unet.config.cross_attention_dim, device=unet.device)


def _batches(count: int, steps: int, batch: int, gen: torch.Generator) -> Any:
    """``steps`` batches of ``batch`` random indices into ``count`` samples (with replacement)."""
    for _ in range(steps):
        yield torch.randint(0, count, (batch,), generator=gen)


def training_context(captions: torch.Tensor, dropout: float, gen: torch.Generator) -> torch.Tensor:
    """A batch's context: each sample's ``captions (B,L,D)`` or, with probability ``dropout``, zeros (zeros of
    any length give the same zero cross-attention as PointSD's all-zero text context)."""
    keep = torch.rand(len(captions), generator=gen) >= dropout
    return torch.where(keep[:, None, None], captions, torch.zeros_like(captions))


def _posterior_sample(post: Any, gen: torch.Generator) -> torch.Tensor:
    """A draw of the VAE posterior ``post`` (diffusers' ``DiagonalGaussianDistribution``) from ``gen``."""
    return post.mean + post.std * torch.randn(post.mean.shape, generator=gen)


@torch.no_grad()
def reconstruction_loss(vae: AutoencoderKL, images: torch.Tensor, seed: int, batch: int = 64) -> float:
    """Mean MSE of ``decode(sample(encode(x)))`` over ``images (N,3,S,S)`` in [-1, 1] (fixed posterior draws)."""
    gen, total = torch.Generator().manual_seed(seed), 0.0
    for chunk in images.split(batch):
        post = vae.encode(chunk).latent_dist
        total += F.mse_loss(vae.decode(_posterior_sample(post, gen)).sample, chunk, reduction="sum").item()
    return total / images.numel()


def train_vae(vae: AutoencoderKL, images: torch.Tensor, cfg: TinySDTraining, gen: torch.Generator) -> None:
    """``cfg.vae_steps`` AdamW steps of reconstruction MSE + ``kl_weight`` × KL on random batches of ``images``."""
    vae.train().requires_grad_(True)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr, weight_decay=0.0)
    for idx in _batches(len(images), cfg.vae_steps, cfg.batch_size, gen):
        x = images[idx]
        post = vae.encode(x).latent_dist
        loss = F.mse_loss(vae.decode(_posterior_sample(post, gen)).sample, x) + cfg.kl_weight * post.kl().mean()
        _check_finite(loss, "VAE")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    vae.eval().requires_grad_(False)


@torch.no_grad()
def set_scaling_factor(vae: AutoencoderKL, images: torch.Tensor, batch: int = 64) -> float:
    """Set (and return) ``vae.config.scaling_factor`` = 1 / std of the latent means of ``images``."""
    means = torch.cat([vae.encode(chunk).latent_dist.mean for chunk in images.split(batch)])
    factor = float(1.0 / means.std().clamp_min(1e-6))
    vae.register_to_config(scaling_factor=factor)
    return factor


@torch.no_grad()
def _scaled_latents(vae: AutoencoderKL, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return _posterior_sample(vae.encode(images).latent_dist, gen) * vae.config.scaling_factor


def denoising_step_loss(unet: UNet2DConditionModel, scheduler: DDPMScheduler, latents: torch.Tensor,
                        noise: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
    """MSE(ε̂, ε) of scaled ``latents (B,4,h,w)`` noised to ``timesteps (B,)`` given ``context (B,L,D)``
    (default: the all-zero context, unconditional)."""
    noisy = scheduler.add_noise(latents, noise, timesteps)
    if context is None:
        context = unconditional_context(len(latents), unet)
    pred = unet(noisy, timesteps, encoder_hidden_states=context).sample
    return F.mse_loss(pred.float(), noise.float())


@torch.no_grad()
def denoising_loss(unet: UNet2DConditionModel, vae: AutoencoderKL, scheduler: DDPMScheduler,
                   images: torch.Tensor, seed: int, batch: int = 64) -> float:
    """Mean denoising MSE over ``images`` with draws fixed by ``seed`` (latent sample, ε, t)."""
    gen, total = torch.Generator().manual_seed(seed), 0.0
    for chunk in images.split(batch):
        latents = _scaled_latents(vae, chunk, gen)
        noise = torch.randn(latents.shape, generator=gen)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(chunk),), generator=gen)
        total += denoising_step_loss(unet, scheduler, latents, noise, t).item() * len(chunk)
    return total / len(images)


def train_unet(unet: UNet2DConditionModel, vae: AutoencoderKL, scheduler: DDPMScheduler, images: torch.Tensor,
               captions: torch.Tensor | None, cfg: TinySDTraining, gen: torch.Generator) -> None:
    """``cfg.unet_steps`` AdamW steps of the denoising objective on random batches of ``images``, each view
    conditioned on its ``captions (N,L,D)`` (dropped with probability ``cfg.caption_dropout``) or, without
    captions, unconditional."""
    unet.train().requires_grad_(True)
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=0.01)
    for idx in _batches(len(images), cfg.unet_steps, cfg.batch_size, gen):
        latents = _scaled_latents(vae, images[idx], gen)
        noise = torch.randn(latents.shape, generator=gen)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(idx),), generator=gen)
        context = None if captions is None else training_context(captions[idx], cfg.caption_dropout, gen)
        loss = denoising_step_loss(unet, scheduler, latents, noise, t, context)
        _check_finite(loss, "UNet")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    unet.eval().requires_grad_(False)


def train_tiny_sd(unet: UNet2DConditionModel, vae: AutoencoderKL, scheduler: DDPMScheduler,
                  images: torch.Tensor, captions: torch.Tensor | None, cfg: TinySDTraining) -> TrainingReport:
    """Train ``vae`` then ``unet`` in place on ``images (N,3,S,S)`` in [-1, 1] with their ``captions (N,L,D)``
    (encoded; ``None``: unconditional); → the losses before and after (unconditional, as PointSD's text branch)."""
    cfg.validate()
    if len(images) == 0:
        raise PointSDError("no rendered views to train the tiny Stable Diffusion on")
    if captions is not None and len(captions) != len(images):
        raise PointSDError(f"{len(captions)} captions for {len(images)} rendered views")
    if cfg.caption_dropout >= 1.0:
        captions = None  # every caption dropped: unconditional, no draws spent on dropping
    gen = torch.Generator().manual_seed(cfg.seed)
    eval_seed = cfg.seed + 1
    vae.eval().requires_grad_(False)
    unet.eval().requires_grad_(False)
    rec_before = reconstruction_loss(vae, images, eval_seed)
    train_vae(vae, images, cfg, gen)
    rec_after = reconstruction_loss(vae, images, eval_seed)
    factor = set_scaling_factor(vae, images)
    den_before = denoising_loss(unet, vae, scheduler, images, eval_seed)
    train_unet(unet, vae, scheduler, images, captions, cfg, gen)
    return TrainingReport(
        views=len(images), image_size=int(images.shape[-1]), vae_reconstruction_before=rec_before,
        vae_reconstruction_after=rec_after, scaling_factor=factor, denoising_before=den_before,
        denoising_after=denoising_loss(unet, vae, scheduler, images, eval_seed), config=asdict(cfg))


def _check_finite(loss: torch.Tensor, part: str) -> None:
    if not torch.isfinite(loss):
        raise PointSDError(f"tiny SD training: the {part} loss became {loss.item()} (lower sd.train.lr)")
