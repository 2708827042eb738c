"""The backend-dispatched point operations as ``torch.library`` custom operators (namespace ``pointsd``).

Each op is opaque to ``torch.compile``: its real implementation checks the input values (finite
coordinates, indices in range; checks that would break a traced graph), then runs the backend that
:func:`~pointsd.ops.backends.resolve` picks when the op executes, so :func:`~pointsd.ops.use_backend`
and ``POINTSD_OPS_BACKEND`` apply to compiled code too. A fake implementation gives the output
shapes and dtypes for tracing. Inputs are validated float32 / int64 contiguous tensors (see
:mod:`pointsd.ops`, which is the public entry); ``chamfer_nearest`` and ``three_interpolate`` are
differentiable (plain-torch backward passes, shared by every backend).

Plain eager calls skip the dispatcher (:class:`PointOp`): its Python path for a custom operator costs
≈ 25–30 µs a call on this project's CPU (≈ 150 µs on a cold cache), longer than the smaller GPU
kernels run; traced code and calls that need autograd go through the operator.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch

from pointsd.ops import validate
from pointsd.ops.backends import resolve

__all__ = ["PointOp", "chamfer_nearest", "furthest_point_sample", "knn_with_dist", "three_interpolate", "three_nn"]


def _plain_eager(tensors: Sequence[torch.Tensor]) -> bool:
    """Whether a call may run its implementation straight: not traced by ``torch.compile``, plain
    tensors (no subclass such as a fake tensor) and nothing to differentiate."""
    return (not torch.compiler.is_compiling()
            and all(type(t) is torch.Tensor for t in tensors)
            and not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors)))


class PointOp:
    """The custom operator ``pointsd::<name>`` (``.op``) made from ``impl``; calling a ``PointOp``
    runs ``impl`` directly when :func:`_plain_eager` allows, else the operator."""

    def __init__(self, name: str, impl: Callable[..., Any]) -> None:
        self.impl = impl
        self.op = torch.library.custom_op(f"pointsd::{name}", impl, mutates_args=())
        functools.update_wrapper(self, impl)

    def __call__(self, *args: Any) -> Any:
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        return self.impl(*args) if _plain_eager(tensors) else self.op(*args)


def _point_op(name: str) -> Callable[[Callable[..., Any]], PointOp]:
    """Decorator: ``@_point_op(name)`` over an implementation makes its :class:`PointOp`."""
    return functools.partial(PointOp, name)


@_point_op("furthest_point_sample")
def furthest_point_sample(xyz: torch.Tensor, n: int, start: int) -> torch.Tensor:
    """``xyz (B,N,3)`` float32 → indices ``(B,n)`` int64, first index ``start``."""
    validate.finite("xyz", xyz)
    return resolve(xyz.device)[1].furthest_point_sample(xyz, n, start)


@furthest_point_sample.op.register_fake
def _(xyz: torch.Tensor, n: int, start: int) -> torch.Tensor:
    return xyz.new_empty((xyz.shape[0], n), dtype=torch.long)


@_point_op("knn_with_dist")
def knn_with_dist(query: torch.Tensor, points: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``query (B,M,3)``, ``points (B,N,3)`` float32 → ``(sq. dist (B,M,k) float32, idx (B,M,k) int64)``."""
    validate.finite("query", query)
    validate.finite("points", points)
    return resolve(points.device)[1].knn_with_dist(query, points, k)


@knn_with_dist.op.register_fake
def _(query: torch.Tensor, points: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    B, M, _ = query.shape
    return query.new_empty((B, M, k)), query.new_empty((B, M, k), dtype=torch.long)


@_point_op("three_nn")
def three_nn(unknown: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``unknown (B,n,3)``, ``known (B,m≥3,3)`` float32 → ``(dist (B,n,3) euclidean, idx (B,n,3) int64)``."""
    validate.finite("unknown", unknown)
    validate.finite("known", known)
    return resolve(known.device)[1].three_nn(unknown, known)


@three_nn.op.register_fake
def _(unknown: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    B, n, _ = unknown.shape
    return unknown.new_empty((B, n, 3)), unknown.new_empty((B, n, 3), dtype=torch.long)


@_point_op("chamfer_nearest")
def chamfer_nearest(
    x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nearest squared distances both ways with the nearest indices (first minimum).

    ``x (B,N,3)``, ``y (B,M,3)`` float32 → ``d1 (B,N), i1 (B,N) int64, d2 (B,M), i2 (B,M) int64``.
    """
    validate.finite("x", x)
    validate.finite("y", y)
    return resolve(x.device)[1].chamfer_nearest(x.detach(), y.detach())


@chamfer_nearest.op.register_fake
def _(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    (B, N, _), M = x.shape, y.shape[1]
    long = torch.long
    return x.new_empty((B, N)), x.new_empty((B, N), dtype=long), x.new_empty((B, M)), x.new_empty((B, M), dtype=long)


def _gather_rows(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``points (B,N,3)``, ``idx (B,M)`` → ``(B,M,3)``."""
    return torch.gather(points, 1, idx.unsqueeze(-1).expand(-1, -1, points.shape[-1]))


def _chamfer_setup(ctx: Any, inputs: tuple[torch.Tensor, torch.Tensor], output: tuple[torch.Tensor, ...]) -> None:
    ctx.save_for_backward(inputs[0], inputs[1], output[1], output[3])


def _chamfer_backward(ctx: Any, g1: torch.Tensor, _gi1: Any, g2: torch.Tensor, _gi2: Any
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """With ``j = argmin_j |x_i - y_j|²``: ``∂d1_i/∂x_i = 2(x_i - y_j)``, ``∂d1_i/∂y_j = -2(x_i - y_j)``;
    symmetric for ``d2``."""
    x, y, i1, i2 = ctx.saved_tensors
    step1 = 2 * (x - _gather_rows(y, i1)) * g1.unsqueeze(-1)
    step2 = 2 * (y - _gather_rows(x, i2)) * g2.unsqueeze(-1)
    gx = step1.scatter_add(1, i2.unsqueeze(-1).expand(-1, -1, 3), -step2)
    gy = step2.scatter_add(1, i1.unsqueeze(-1).expand(-1, -1, 3), -step1)
    return gx, gy


chamfer_nearest.op.register_autograd(_chamfer_backward, setup_context=_chamfer_setup)


@_point_op("three_interpolate")
def three_interpolate(features: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted sum of 3 neighbours' features.

    ``features (B,C,m)`` float32, ``idx (B,n,3)`` int64 in ``[0,m)``, ``weight (B,n,3)`` float32 → ``(B,C,n)``.
    """
    validate.in_range("idx", idx, features.shape[2])
    return resolve(features.device)[1].three_interpolate(features.detach(), idx, weight.detach())


@three_interpolate.op.register_fake
def _(features: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return features.new_empty((features.shape[0], features.shape[1], idx.shape[1]))


def _interpolate_setup(ctx: Any, inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor], output: torch.Tensor) -> None:
    ctx.save_for_backward(*inputs)


def _interpolate_backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, torch.Tensor | None]:
    """``grad (B,C,n)`` → gradients w.r.t. ``features (B,C,m)`` and ``weight (B,n,3)``."""
    features, idx, weight = ctx.saved_tensors
    B, C, m = features.shape
    n = idx.shape[1]
    flat_idx = idx.reshape(B, 1, n * 3).expand(B, C, n * 3)
    grad_features = grad_weight = None
    if ctx.needs_input_grad[0]:
        contrib = (grad.unsqueeze(-1) * weight.unsqueeze(1)).reshape(B, C, n * 3)
        grad_features = features.new_zeros(B, C, m).scatter_add_(2, flat_idx, contrib)
    if ctx.needs_input_grad[2]:
        picked = torch.gather(features, 2, flat_idx).reshape(B, C, n, 3)
        grad_weight = (picked * grad.unsqueeze(-1)).sum(1)
    return grad_features, None, grad_weight


three_interpolate.op.register_autograd(_interpolate_backward, setup_context=_interpolate_setup)
