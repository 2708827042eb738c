"""Patch mix (SPEC §2): swap patch slots between paired clouds and join their images side by side.

Samples are paired ``(2i, 2i+1)``; with an odd batch the last sample is left as is. One
``lam ~ U(0,1)`` per batch sets ``n = max(1, int(G·lam))`` slots, drawn at random per pair; those
slots (neighborhoods and centers) are exchanged. The first mixed cloud gets the image ``[a|b]``,
the second ``[b|a]``, each padded with white above and below to a square and resized back:
``nearest`` (``F.interpolate``'s default, the official code) or ``antialias`` (bicubic with
antialiasing, clamped to [-1, 1]; params ``pretrain.mix_resize``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pointsd.data.transforms import draw_device
from pointsd.train.presets import MIX_RESIZES

WHITE = 1.0


def swap_slots(
    neighborhood: torch.Tensor, center: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exchange random patch slots between pairs.

    ``neighborhood (B,G,K,3)``, ``center (B,G,3)`` → mixed copies and the swapped-slot mask ``(B//2, G)`` bool.
    """
    B, G = center.shape[:2]
    pairs = B // 2
    lam = torch.rand((), generator=generator).item()
    n = max(1, int(G * lam))
    device = draw_device(center, generator)  # no CPU draws copied to a GPU
    order = torch.rand((pairs, G), generator=generator, device=device).argsort(dim=1)[:, :n]
    mask = torch.zeros((pairs, G), dtype=torch.bool, device=device).scatter_(1, order, True).to(center.device)
    nb, ct = neighborhood.clone(), center.clone()
    a, b = slice(0, 2 * pairs, 2), slice(1, 2 * pairs, 2)
    m4, m3 = mask[:, :, None, None], mask[:, :, None]
    nb[a] = torch.where(m4, neighborhood[b], neighborhood[a])
    nb[b] = torch.where(m4, neighborhood[a], neighborhood[b])
    ct[a] = torch.where(m3, center[b], center[a])
    ct[b] = torch.where(m3, center[a], center[b])
    return nb, ct, mask


def join_images(left: torch.Tensor, right: torch.Tensor, resize: str = "nearest") -> torch.Tensor:
    """``[left|right]`` padded white above/below to a square, resized back by ``resize`` (:data:`MIX_RESIZES`):
    ``(P,3,S,S)`` ×2 → ``(P,3,S,S)``."""
    S = left.shape[-1]
    wide = torch.cat([left, right], dim=-1)
    top = S // 2
    square = F.pad(wide, (0, 0, top, S - top), value=WHITE)
    if resize == "nearest":
        return F.interpolate(square, size=(S, S))
    if resize == "antialias":
        out = F.interpolate(square, size=(S, S), mode="bicubic", antialias=True, align_corners=False)
        return out.clamp(-1.0, 1.0)
    raise ValueError(f"resize must be one of {MIX_RESIZES}, got {resize!r}")


def mix_images(images: torch.Tensor, resize: str = "nearest") -> torch.Tensor:
    """Pairs ``(2i, 2i+1)`` get ``[a|b]`` and ``[b|a]``; an odd last image is kept: ``(B,3,S,S)`` → same shape."""
    pairs = images.shape[0] // 2
    if pairs == 0:  # a last batch of one sample: nothing to pair
        return images
    a, b = images[0:2 * pairs:2], images[1:2 * pairs:2]
    mixed = images.clone()
    mixed[0:2 * pairs:2] = join_images(a, b, resize)
    mixed[1:2 * pairs:2] = join_images(b, a, resize)
    return mixed

