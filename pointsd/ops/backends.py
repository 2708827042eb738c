"""Backend registry and selection for :mod:`pointsd.ops`.

A backend is a module exposing the same five functions over validated, contiguous float32 inputs
on one device: ``furthest_point_sample(xyz, n, start)``, ``knn_with_dist(query, points, k)``,
``three_nn(unknown, known)``, ``chamfer_nearest(x, y)``, ``three_interpolate(features, idx, weight)``.

Selection, first match wins: :func:`use_backend` (context manager, per thread/task) →
:func:`set_backend` (process-wide) → env ``POINTSD_OPS_BACKEND`` → ``auto``.
``auto`` picks ``triton`` for CUDA tensors when triton is importable (else ``reference``) and
``cpu`` otherwise.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import importlib.util
import os
from collections.abc import Iterator
from types import ModuleType

import torch

from pointsd.errors import PointSDError

ENV_VAR = "POINTSD_OPS_BACKEND"
BACKENDS = ("reference", "cpu", "triton", "pointnet2_ops")
_MODULES = {
    "reference": "pointsd.ops.reference",
    "cpu": "pointsd.ops.cpu",
    "triton": "pointsd.ops.triton_backend",
    "pointnet2_ops": "pointsd.ops.pointnet2_backend",
}

_scoped: contextvars.ContextVar[str | None] = contextvars.ContextVar("pointsd_ops_backend", default=None)
_process_wide: str | None = None


def _check_name(name: str, origin: str) -> str:
    if name != "auto" and name not in BACKENDS:
        raise PointSDError(f"unknown ops backend {name!r} ({origin}); choose one of auto, {', '.join(BACKENDS)}")
    return name


def set_backend(name: str | None) -> None:
    """Select the backend for the whole process (``None`` returns to env / ``auto``)."""
    global _process_wide
    _process_wide = None if name is None else _check_name(name, "set_backend")


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Select the backend inside a ``with`` block (restored on exit)."""
    token = _scoped.set(_check_name(name, "use_backend"))
    try:
        yield
    finally:
        _scoped.reset(token)


def selected() -> str:
    """The backend name in force here (may be ``auto``)."""
    name = _scoped.get() or _process_wide
    if name is not None:
        return name
    return _check_name(os.environ.get(ENV_VAR, "auto") or "auto", f"env {ENV_VAR}")


def triton_interpreting() -> bool:
    """Whether Triton kernels run in the CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def _unavailable_reason(name: str, device: torch.device) -> str | None:
    """Why backend ``name`` cannot run on ``device`` (``None`` when it can)."""
    if name == "cpu" and device.type != "cpu":
        return f"it runs on CPU tensors, got {device}"
    if name == "triton":
        if importlib.util.find_spec("triton") is None:
            return "triton is not installed"
        if device.type != "cuda" and not (device.type == "cpu" and triton_interpreting()):
            return f"it needs CUDA tensors (or CPU tensors with TRITON_INTERPRET=1), got {device}"
    if name == "pointnet2_ops":
        if importlib.util.find_spec("pointnet2_ops") is None:
            return "the upstream pointnet2_ops package is not installed"
        if device.type != "cuda":
            return f"it needs CUDA tensors, got {device}"
    return None


@functools.cache
def _module(name: str) -> ModuleType:
    """Backend ``name``'s module, imported once (``import_module`` is not free on a hot path)."""
    return importlib.import_module(_MODULES[name])


def resolve(device: torch.device) -> tuple[str, ModuleType]:
    """The backend (name, module) that runs an op on ``device``; PointSDError if unavailable."""
    name = selected()
    if name == "auto":
        if device.type == "cuda":
            name = "triton" if _unavailable_reason("triton", device) is None else "reference"
        else:
            name = "cpu" if device.type == "cpu" else "reference"
    reason = _unavailable_reason(name, device)
    if reason is not None:
        raise PointSDError(f"ops backend {name!r} is unavailable: {reason}")
    return name, _module(name)
