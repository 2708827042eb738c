"""Size presets of the embedded synthetic data, as a dataclass so params can override any count."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from pointsd.errors import PointSDError


@dataclass(frozen=True)
class SynthSizes:
    """How many shapes (per class or split) and points each synthetic dataset gets."""

    shapenet_synsets: int = 20
    shapenet_train: int = 96
    shapenet_test: int = 32
    shapenet_points: int = 8192
    modelnet_train_per_class: int = 8
    modelnet_test_per_class: int = 3
    modelnet_points: int = 1200
    fewshot_points: int = 1024
    fewshot_test_per_class: int = 20
    fewshot_folds: int = 10
    scan_train_per_class: int = 20
    scan_test_per_class: int = 6
    scan_points: int = 2048
    scan_hardest_copies: int = 3
    part_train_per_category: int = 6
    part_val_per_category: int = 2
    part_test_per_category: int = 3
    part_points: int = 2500


PRESETS: dict[str, SynthSizes] = {
    "tiny": SynthSizes(),
    "small": SynthSizes(shapenet_synsets=30, shapenet_train=720, shapenet_test=240,
                        modelnet_train_per_class=40, modelnet_test_per_class=12,
                        modelnet_points=2048, scan_train_per_class=80, scan_test_per_class=20,
                        scan_hardest_copies=3, part_train_per_category=40, part_val_per_category=8,
                        part_test_per_category=16),
}


def sizes_for(name: str, **overrides: Any) -> SynthSizes:
    """The preset ``name`` with any field replaced by ``overrides``; unknown names raise PointSDError."""
    if name not in PRESETS:
        raise PointSDError(f"unknown synthetic size {name!r} (choose from {sorted(PRESETS)})")
    known = {f.name for f in fields(SynthSizes)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise PointSDError(f"unknown synthetic size field(s) {unknown}")
    return replace(PRESETS[name], **overrides)
