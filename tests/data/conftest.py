"""Shared fixtures: one very small synthetic data root per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from pointsd.data.synth import sizes_for, synthesize

MICRO = dict(shapenet_synsets=3, shapenet_train=3, shapenet_test=2, shapenet_points=512,
             modelnet_train_per_class=2, modelnet_test_per_class=1, modelnet_points=96,
             fewshot_points=64, fewshot_test_per_class=3, fewshot_folds=2,
             scan_train_per_class=2, scan_test_per_class=1, scan_points=128,
             part_train_per_category=1, part_val_per_category=1, part_test_per_category=1, part_points=128)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    synthesize(root, sizes_for("tiny", **MICRO), seed=3)
    return root
