"""Where the Triton kernels run in these tests: compiled on the GPU when CUDA is present, else in
Triton's CPU interpreter. Every test compares with the reference on the same device.

``TRITON_INTERPRET`` is read when a kernel is decorated, so it is set (or cleared) here, before any
test module imports ``pointsd_kernels``; kernel modules imported earlier are re-decorated, and the
``triton`` backend module re-binds them.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

import pytest
import torch

from tests.ops.conftest import grid_with_duplicates

COMPILED = torch.cuda.is_available()
DEVICE = torch.device("cuda" if COMPILED else "cpu")

if COMPILED:
    os.environ.pop("TRITON_INTERPRET", None)
else:
    os.environ["TRITON_INTERPRET"] = "1"
for _name in [m for m in sys.modules if m.startswith("pointsd_kernels.") and not m.endswith("_launch")]:
    importlib.reload(sys.modules[_name])
if "pointsd.ops.triton_backend" in sys.modules:
    importlib.reload(sys.modules["pointsd.ops.triton_backend"])


def pytest_report_header() -> str:
    return f"pointsd kernels: {'compiled on ' + torch.cuda.get_device_name() if COMPILED else 'Triton interpreter'}"


@pytest.fixture
def dev() -> torch.device:
    """The device the kernels run on here (CUDA, else CPU under the interpreter)."""
    return DEVICE


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(99)


@pytest.fixture
def tie_grid() -> Callable[..., torch.Tensor]:
    """``tie_grid(B)``: see :func:`grid_with_duplicates` (on :data:`DEVICE`)."""
    return lambda B, side=3: grid_with_duplicates(B, side).to(DEVICE)
