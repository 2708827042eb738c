"""Shared inputs for the ops tests: small random clouds with a fixed seed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def cloud(gen: torch.Generator) -> Callable[..., torch.Tensor]:
    """``cloud(B, N, dtype=float32)`` → ``(B,N,3)`` standard-normal points from ``gen``."""
    return lambda B, N, dtype=torch.float32: torch.randn(B, N, 3, generator=gen).to(dtype)


@pytest.fixture
def tie_grid() -> Callable[..., torch.Tensor]:
    """``tie_grid(B)``: see :func:`grid_with_duplicates`."""
    return grid_with_duplicates


def grid_with_duplicates(B: int, side: int = 4) -> torch.Tensor:
    """``(B, 2·side³, 3)``: an integer grid listed twice, full of exact distance ties."""
    axis = torch.arange(side, dtype=torch.float32)
    g = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    return torch.cat([g, g]).unsqueeze(0).expand(B, -1, -1).contiguous()
