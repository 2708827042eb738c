"""Autograd for the differentiable ops; the backward passes are plain torch, shared by all backends.

Forward passes run the selected backend in float32; gradients are returned in the inputs' dtypes.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch


def _gather_rows(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``points (B,N,3)``, ``idx (B,M)`` → ``(B,M,3)``."""
    return torch.gather(points, 1, idx.unsqueeze(-1).expand(-1, -1, points.shape[-1]))


class ChamferFunction(torch.autograd.Function):
    """Nearest squared distances both ways, differentiable w.r.t. both clouds.

    ``x (B,N,3)``, ``y (B,M,3)`` → ``d1 (B,N)``, ``d2 (B,M)`` float32. With ``j = argmin_j |x_i - y_j|²``,
    ``∂d1_i/∂x_i = 2(x_i - y_j)`` and ``∂d1_i/∂y_j = -2(x_i - y_j)``; symmetric for ``d2``.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, y: torch.Tensor, impl: ModuleType) -> tuple[torch.Tensor, torch.Tensor]:
        xf = x.detach().float().contiguous()
        yf = y.detach().float().contiguous()
        d1, i1, d2, i2 = impl.chamfer_nearest(xf, yf)
        ctx.save_for_backward(xf, yf, i1, i2)
        ctx.dtypes = (x.dtype, y.dtype)
        return d1, d2

    @staticmethod
    def backward(ctx: Any, g1: torch.Tensor, g2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        xf, yf, i1, i2 = ctx.saved_tensors
        step1 = 2 * (xf - _gather_rows(yf, i1)) * g1.float().unsqueeze(-1)
        step2 = 2 * (yf - _gather_rows(xf, i2)) * g2.float().unsqueeze(-1)
        gx = step1.scatter_add(1, i2.unsqueeze(-1).expand(-1, -1, 3), -step2)
        gy = step2.scatter_add(1, i1.unsqueeze(-1).expand(-1, -1, 3), -step1)
        return gx.to(ctx.dtypes[0]), gy.to(ctx.dtypes[1]), None


class ThreeInterpolateFunction(torch.autograd.Function):
    """Weighted sum of 3 neighbours' features, differentiable w.r.t. features and weights.

    ``features (B,C,m)``, ``idx (B,n,3)`` int64, ``weight (B,n,3)`` → ``(B,C,n)`` in features' dtype.
    """

    @staticmethod
    def forward(
        ctx: Any, features: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor, impl: ModuleType
    ) -> torch.Tensor:
        ff = features.detach().float().contiguous()
        wf = weight.detach().float().contiguous()
        ctx.save_for_backward(ff, idx, wf)
        ctx.dtypes = (features.dtype, weight.dtype)
        return impl.three_interpolate(ff, idx, wf).to(features.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, torch.Tensor | None, None]:
        ff, idx, wf = ctx.saved_tensors
        B, C, m = ff.shape
        n = idx.shape[1]
        g = grad.float()
        flat_idx = idx.reshape(B, 1, n * 3).expand(B, C, n * 3)
        grad_features = grad_weight = None
        if ctx.needs_input_grad[0]:
            contrib = (g.unsqueeze(-1) * wf.unsqueeze(1)).reshape(B, C, n * 3)
            grad_features = ff.new_zeros(B, C, m).scatter_add_(2, flat_idx, contrib).to(ctx.dtypes[0])
        if ctx.needs_input_grad[2]:
            picked = torch.gather(ff, 2, flat_idx).reshape(B, C, n, 3)
            grad_weight = (picked * g.unsqueeze(-1)).sum(1).to(ctx.dtypes[1])
        return grad_features, None, grad_weight, None
