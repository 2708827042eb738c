"""The honest protocol's validation split: carved from the training set, stratified, seeded.

The test set is never looked at: only training labels enter, and the returned indices refer to
the training set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from pointsd.errors import PointSDError


def stratified_split(
    labels: Sequence[int] | np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train_idx, val_idx)`` into a training set with labels ``(n,)``.

    Each class keeps (about) ``val_fraction`` of its samples for validation, and every class has at
    least one validation sample (small sets: the split grows to the number of classes); the two
    index sets are disjoint, sorted, and cover ``range(n)``. Same ``seed`` → same split.
    """
    labels = np.asarray(labels).reshape(-1)
    if not 0.0 < val_fraction < 1.0:
        raise PointSDError(f"val_fraction must be in (0, 1), got {val_fraction}")
    index = np.arange(labels.size)
    val_size = max(int(np.ceil(val_fraction * labels.size)), np.unique(labels).size)
    try:
        train_idx, val_idx = train_test_split(
            index, test_size=val_size, random_state=seed, stratify=labels, shuffle=True
        )
    except ValueError as err:
        raise PointSDError(
            f"cannot carve a stratified validation split of fraction {val_fraction} from "
            f"{labels.size} training samples: {err}"
        ) from err
    return np.sort(train_idx), np.sort(val_idx)
