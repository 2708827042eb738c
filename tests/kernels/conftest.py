"""Run the Triton kernels in the CPU interpreter: no GPU is needed for these tests.

``TRITON_INTERPRET`` is read when a kernel is decorated, so it is set here, before any test
module imports ``pointsd_kernels``; kernel modules imported earlier are re-decorated.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

import pytest
import torch

os.environ["TRITON_INTERPRET"] = "1"
for _name in [m for m in sys.modules if m.startswith("pointsd_kernels.") and not m.endswith("_launch")]:
    importlib.reload(sys.modules[_name])


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(99)


@pytest.fixture
def tie_grid() -> Callable[..., torch.Tensor]:
    """``tie_grid(B)``: see :func:`grid_with_duplicates`."""
    return grid_with_duplicates


def grid_with_duplicates(B: int, side: int = 3) -> torch.Tensor:
    """``(B, 2·side³, 3)``: an integer grid listed twice, full of exact distance ties."""
    axis = torch.arange(side, dtype=torch.float32)
    g = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    return torch.cat([g, g]).unsqueeze(0).expand(B, -1, -1).contiguous()
