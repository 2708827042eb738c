"""Session-wide test settings, applied before any test module imports the package, and the fixtures
that tests in several folders share.

Without a GPU the Triton kernels can only run in Triton's CPU interpreter, and ``TRITON_INTERPRET``
is read when a kernel is decorated: it is set here, before anything imports ``pointsd_kernels``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from pointsd.data.synth import sizes_for, synthesize  # noqa: E402 - after TRITON_INTERPRET is set

MICRO = dict(shapenet_synsets=3, shapenet_train=3, shapenet_test=2, shapenet_points=512,
             modelnet_train_per_class=2, modelnet_test_per_class=1, modelnet_points=96,
             fewshot_points=64, fewshot_test_per_class=3, fewshot_folds=2,
             scan_train_per_class=2, scan_test_per_class=1, scan_points=128,
             part_train_per_category=1, part_val_per_category=1, part_test_per_category=1, part_points=128)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One very small synthetic data root (every SPEC §5 format) per test session."""
    root = tmp_path_factory.mktemp("synth")
    synthesize(root, sizes_for("tiny", **MICRO), seed=3)
    return root
