"""VAE latent distributions of the unmixed views, computed once (the fast path, :mod:`pointsd.train.speed`).

The VAE is frozen and a view image is one of two (as rendered, or mirrored), so the diagonal Gaussian
the encoder gives for it never changes: its mean and standard deviation are computed once per
(shape, mirror) and a step samples ``mean + std * eps`` from them, as
``vae.encode(image).latent_dist.sample()`` would, with one contiguous ``randn`` of the same shape. Patch-mixed
images are new every step and are still encoded (:func:`encode_latents`, the uncached encoding).
"""

from __future__ import annotations

from typing import Protocol

import torch
from diffusers import AutoencoderKL
from torch.utils.data import DataLoader, Dataset


def encode_latents(vae: AutoencoderKL, images: torch.Tensor) -> torch.Tensor:
    """Images ``(B,3,S,S)`` in [-1,1] → scaled VAE latents ``(B,4,S/8,S/8)`` (sampled, no grad)."""
    with torch.no_grad():
        latents = vae.encode(images.to(vae.dtype)).latent_dist.sample()
    return latents * vae.config.scaling_factor


class ViewSource(Protocol):
    """A pre-training set that can give any view image: :class:`pointsd.data.ulip_renders.ShapeNet55Pretrain`."""

    def __len__(self) -> int: ...

    def view_image(self, index: int, flip: bool) -> torch.Tensor: ...


class _BothViews(Dataset):
    """Item ``i`` → ``(2,3,S,S)``: view ``i`` as rendered and mirrored."""

    def __init__(self, source: ViewSource) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.stack([self.source.view_image(index, False), self.source.view_image(index, True)])


class LatentCache:
    """``mean``, ``std`` ``(2n, 4, S/8, S/8)`` on the VAE's device, row ``2*index + flip``."""

    def __init__(self, vae: AutoencoderKL, source: ViewSource, batch_size: int = 64) -> None:
        """Encode every view of ``source`` (both mirrors) with ``vae``, ``batch_size`` images at a time, under
        the caller's autocast (the precision the training step encodes in)."""
        means, stds = [], []
        device = next(vae.parameters()).device
        loader = DataLoader(_BothViews(source), batch_size=max(1, batch_size // 2), shuffle=False,
                            generator=torch.Generator())  # its own generator: the run's random stream is untouched
        with torch.no_grad():
            for pairs in loader:
                images = pairs.flatten(0, 1).to(device=device, dtype=vae.dtype)
                dist = vae.encode(images).latent_dist
                means.append(dist.mean.float().contiguous())
                stds.append(dist.std.float().contiguous())
        self.mean, self.std = torch.cat(means), torch.cat(stds)
        self.scaling = float(vae.config.scaling_factor)

    def __len__(self) -> int:
        return self.mean.shape[0]

    def sample(self, index: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        """Scaled latents ``(B,4,h,w)`` of views ``index (B,)`` mirrored where ``flip (B,)``, freshly sampled."""
        rows = index.to(self.mean.device) * 2 + flip.to(self.mean.device).long()
        mean, std = self.mean[rows], self.std[rows]
        eps = torch.randn(mean.shape, dtype=mean.dtype, device=mean.device)  # as diffusers' randn_tensor draws
        return (mean + std * eps) * self.scaling
