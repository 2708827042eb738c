"""Batch-level point augmentations and sampling named in SPEC §2 and §4.

Every function takes ``points (B,N,3)`` float tensors and an optional ``torch.Generator``
(``None`` → torch's global RNG), and returns a new tensor of the same dtype and device.
"""

from __future__ import annotations

import math

import torch

from pointsd.ops import furthest_point_sample, gather


def draw_device(ref: torch.Tensor, generator: torch.Generator | None) -> torch.device:
    """Where the random numbers for ``ref`` are drawn: ``generator``'s device when one is given, else
    ``ref``'s (on CUDA no CPU numbers are copied over, which would synchronise with the host)."""
    return generator.device if generator is not None else ref.device


def _uniform(shape: tuple[int, ...], low: float, high: float, ref: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
    """Uniform samples in ``[low, high)`` (float64 draws, :func:`draw_device`) on ``ref``'s device and dtype."""
    u = torch.rand(shape, generator=generator, dtype=torch.float64, device=draw_device(ref, generator))
    return (low + (high - low) * u).to(device=ref.device, dtype=ref.dtype)


def fps_subsample(points: torch.Tensor, n: int, oversample: float = 1.2,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """FPS to ``min(N, int(oversample*n))`` points, then a random subset of ``n`` of them.

    ``points (B,N,C)`` (first 3 channels are xyz) → ``(B,n,C)``. When ``N == n`` a random
    permutation is returned. Raises ``ValueError`` when ``N < n``.
    """
    B, N, _ = points.shape
    if N < n:
        raise ValueError(f"fps_subsample: cloud has {N} points, fewer than n={n}")
    m = min(N, int(oversample * n))
    if m == N:
        pool = points
    else:
        idx = furthest_point_sample(points[..., :3].contiguous(), m)
        pool = gather(points, idx)
    return gather(pool, random_subsets(B, m, n, points, generator))


def random_subsets(B: int, m: int, n: int, ref: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``(B, n)`` int64 on ``ref``'s device: per row, ``n`` distinct indices of ``range(m)`` in random order.

    Drawn on the CPU as ``randperm`` rows (reproducible against earlier runs), on CUDA as the ``argsort``
    of uniform draws on the device (:func:`draw_device`: no host synchronisation)."""
    device = draw_device(ref, generator)
    if device.type == "cpu":
        return torch.stack([torch.randperm(m, generator=generator)[:n] for _ in range(B)]).to(ref.device)
    return torch.rand((B, m), generator=generator, device=device).argsort(dim=1)[:, :n]


def scale_translate(points: torch.Tensor, scale_low: float = 2.0 / 3.0, scale_high: float = 1.5,
                    translate: float = 0.2, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample, per-axis scale ``U(scale_low, scale_high)`` and shift ``U(-translate, translate)``."""
    B = points.shape[0]
    s = _uniform((B, 1, 3), scale_low, scale_high, points, generator)
    t = _uniform((B, 1, 3), -translate, translate, points, generator)
    return points * s + t


def scale(points: torch.Tensor, low: float = 0.9, high: float = 1.1,
          generator: torch.Generator | None = None, anisotropic: bool = True) -> torch.Tensor:
    """Per-sample scale ``U(low, high)``, per axis (default) or one factor for all axes."""
    B = points.shape[0]
    s = _uniform((B, 1, 3 if anisotropic else 1), low, high, points, generator)
    return points * s


def shift(points: torch.Tensor, amount: float = 0.1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample translation ``U(-amount, amount)`` per axis."""
    return points + _uniform((points.shape[0], 1, 3), -amount, amount, points, generator)


def rotation_matrix_y(angles: torch.Tensor) -> torch.Tensor:
    """Rotations about the up (y) axis, ``[[c,0,s],[0,1,0],[-s,0,c]]`` (the official PointSD and Point-MAE
    sign). ``angles (B,)`` radians → ``(B,3,3)``, applied as ``p @ R``."""
    c, s = torch.cos(angles), torch.sin(angles)
    z, o = torch.zeros_like(c), torch.ones_like(c)
    return torch.stack([torch.stack([c, z, s], -1), torch.stack([z, o, z], -1),
                        torch.stack([-s, z, c], -1)], -2)


def rotate_up(points: torch.Tensor, generator: torch.Generator | None = None,
              max_angle: float = 2 * math.pi) -> torch.Tensor:
    """Random rotation about the up (y) axis by ``U(0, max_angle)`` per sample."""
    angles = _uniform((points.shape[0],), 0.0, max_angle, points, generator)
    return points @ rotation_matrix_y(angles)


def perturbation_matrix(angles: torch.Tensor) -> torch.Tensor:
    """``angles (B,3)`` about x, y, z → ``Rz·Ry·Rx`` ``(B,3,3)``, applied as ``p @ R`` (official PointSD)."""
    c, s = torch.cos(angles), torch.sin(angles)
    z, o = torch.zeros_like(c[:, 0]), torch.ones_like(c[:, 0])
    rx = torch.stack([torch.stack([o, z, z], -1), torch.stack([z, c[:, 0], -s[:, 0]], -1),
                      torch.stack([z, s[:, 0], c[:, 0]], -1)], -2)
    ry = torch.stack([torch.stack([c[:, 1], z, s[:, 1]], -1), torch.stack([z, o, z], -1),
                      torch.stack([-s[:, 1], z, c[:, 1]], -1)], -2)
    rz = torch.stack([torch.stack([c[:, 2], -s[:, 2], z], -1), torch.stack([s[:, 2], c[:, 2], z], -1),
                      torch.stack([z, z, o], -1)], -2)
    return rz @ ry @ rx


def rotate_perturbation(points: torch.Tensor, sigma: float = 0.06, clip: float = 0.18,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Small random rotation: per-axis angles ``clip(N(0,sigma), -clip, clip)``, ``p @ (Rz·Ry·Rx)``."""
    a = (torch.randn((points.shape[0], 3), generator=generator, dtype=torch.float64,
                     device=draw_device(points, generator)) * sigma).clamp(-clip, clip)
    return points @ perturbation_matrix(a.to(device=points.device, dtype=points.dtype))


def random_point_dropout(points: torch.Tensor, max_ratio: float = 0.875,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """Drop a random fraction ``U(0, max_ratio)`` of points per sample; dropped points become the first point."""
    B, N, _ = points.shape
    ratio = torch.rand((B, 1), generator=generator, dtype=torch.float64) * max_ratio
    drop = (torch.rand((B, N), generator=generator, dtype=torch.float64) <= ratio).to(points.device)
    first = points[:, :1, :].expand_as(points)
    return torch.where(drop.unsqueeze(-1), first, points)


def pretrain_augment(points: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """SPEC §2 pre-training augmentation: dropout, scale U(0.8,1.25), shift 0.1, perturbation, up-axis rotation."""
    points = random_point_dropout(points, 0.875, generator)
    points = scale(points, 0.8, 1.25, generator, anisotropic=False)
    points = shift(points, 0.1, generator)
    points = rotate_perturbation(points, 0.06, 0.18, generator)
    return rotate_up(points, generator)
