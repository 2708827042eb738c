"""Tiny model sizes shared by the model tests."""

import pytest
import torch

TINY = dict(trans_dim=48, depth=2, num_heads=2, group_size=8, num_group=16, encoder_dims=32)


@pytest.fixture
def tiny() -> dict:
    """Backbone kwargs of a model small enough for CPU tests."""
    return dict(TINY)


@pytest.fixture
def points() -> torch.Tensor:
    """A fixed batch of 2 clouds of 128 points, ``(2,128,3)``."""
    return torch.rand(2, 128, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
