"""Input checks for :mod:`pointsd.ops`: each failure is one PointSDError naming the argument.

The checks that read tensor values (:func:`finite`, :func:`in_range`) are skipped while
``torch.compile`` traces (they would break the graph); the custom ops of
:mod:`pointsd.ops.custom_ops` run them in their real implementations, so compiled code checks too.
They are also skipped inside :func:`values_unchecked`: on a GPU reading a value synchronises with
the host, so the fast path's training step (:mod:`pointsd.train.speed`) leaves a NaN to its loss
check instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from pointsd.errors import PointSDError

_check_values = True


@contextlib.contextmanager
def values_unchecked(active: bool = True) -> Iterator[None]:
    """Within the block (when ``active``), :func:`finite` and :func:`in_range` read no tensor values."""
    global _check_values
    before = _check_values
    _check_values = before and not active
    try:
        yield
    finally:
        _check_values = before


def _reading_values(t: torch.Tensor) -> bool:
    # is_compiling first: dynamo then never reads (nor guards on) the module flag
    return not torch.compiler.is_compiling() and _check_values and bool(t.numel())


def points(name: str, t: object, width: int | None = 3) -> torch.Tensor:
    """A floating ``(B,N,width)`` tensor, returned detached as contiguous float32 (values not read)."""
    if not isinstance(t, torch.Tensor):
        raise PointSDError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.dim() != 3:
        raise PointSDError(f"{name}: expected a (B,N,{width or 'C'}) tensor, got shape {tuple(t.shape)}")
    if width is not None and t.shape[-1] != width:
        raise PointSDError(f"{name}: last dimension must be {width}, got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise PointSDError(f"{name}: expected a floating tensor, got {t.dtype}")
    return t.detach().float().contiguous()


def finite(name: str, t: torch.Tensor) -> None:
    """``t`` holds no NaN or infinity. One sum first: it is finite unless an element is not (or the
    sum overflows), and only then is every element looked at."""
    if _reading_values(t) and not bool(torch.isfinite(t.sum())) and not bool(torch.isfinite(t).all()):
        raise PointSDError(f"{name}: contains NaN or infinite values")


def same_batch(a_name: str, a: torch.Tensor, b_name: str, b: torch.Tensor) -> None:
    """``a`` and ``b`` share batch size and device."""
    if a.shape[0] != b.shape[0]:
        raise PointSDError(f"{b_name}: batch size {b.shape[0]} does not match {a_name}'s {a.shape[0]}")
    if a.device != b.device:
        raise PointSDError(f"{b_name}: on {b.device}, but {a_name} is on {a.device}")


def count(name: str, value: int, low: int, high: int, what: str) -> int:
    """An int in ``[low, high]``; ``what`` says what ``high`` is."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise PointSDError(f"{name}: expected an int, got {value!r}")
    if not low <= value <= high:
        raise PointSDError(f"{name}={value} out of range [{low}, {high}] ({what})")
    return value


def indices(name: str, idx: object, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """An integer tensor of ``shape`` on ``device``, returned as contiguous int64 (values not read)."""
    if not isinstance(idx, torch.Tensor):
        raise PointSDError(f"{name}: expected a torch.Tensor, got {type(idx).__name__}")
    if idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dtype == torch.bool:
        raise PointSDError(f"{name}: expected an integer tensor, got {idx.dtype}")
    if tuple(idx.shape) != shape:
        raise PointSDError(f"{name}: expected shape {shape}, got {tuple(idx.shape)}")
    if idx.device != device:
        raise PointSDError(f"{name}: on {idx.device}, expected {device}")
    return idx.long().contiguous()


def in_range(name: str, idx: torch.Tensor, bound: int) -> None:
    """Every value of ``idx`` lies in ``[0, bound)``."""
    if not _reading_values(idx):
        return
    low, high = (int(v) for v in torch.aminmax(idx))
    if low < 0 or high >= bound:
        raise PointSDError(f"{name}: values must lie in [0, {bound}), got [{low}, {high}]")
