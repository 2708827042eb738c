"""Linear-probe validation during pre-training (SPEC §2): logistic regression on frozen global features.

Policies for choosing the best checkpoint:
- ``paper``: fit on the probe's train split, score on its test split (what the official code does);
- ``honest``: fit on a stratified part of train, score on the held-out rest; the test score is
  logged for information only and never selects anything.
Accuracies are in percent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch.utils.data import DataLoader, Dataset

from pointsd import ops
from pointsd.errors import PointSDError
from pointsd.train.metrics import majority_rate
from pointsd.train.splits import stratified_split

POLICIES = ("paper", "honest")
PROBE_C = 0.316
PROBE_MAX_ITER = 1000


@dataclass
class ProbeConfig:
    """How the probe runs: policy, points per cloud (FPS), held-out fraction for ``honest``."""

    policy: str = "paper"
    num_points: int = 1024
    batch_size: int = 32
    val_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise PointSDError(f"probe policy must be one of {POLICIES}, got {self.policy!r}")


@torch.no_grad()
def extract_features(
    backbone: torch.nn.Module, dataset: Dataset, num_points: int, batch_size: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Global features of every ``(points (N,3), label)`` sample: ``X (n, 2D)`` float32, ``y (n,)`` int64.

    Clouds are reduced to ``num_points`` by farthest point sampling (deterministic).
    """
    feats: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for points, label in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        points = points[..., :3].to(device=device, dtype=torch.float32)
        if points.shape[1] < num_points:
            raise PointSDError(f"probe clouds have {points.shape[1]} points, fewer than probe_points={num_points}")
        if points.shape[1] > num_points:
            points = ops.gather(points, ops.furthest_point_sample(points.contiguous(), num_points))
        global_feature, _ = backbone(points)
        feats.append(global_feature.float().cpu().numpy())
        labels.append(torch.as_tensor(label).reshape(-1).cpu().numpy())
    return np.concatenate(feats), np.concatenate(labels).astype(np.int64)


def fit_probe(X: np.ndarray, y: np.ndarray, seed: int = 0) -> LogisticRegression:
    """Logistic regression with C = 0.316, 1000 iterations."""
    return LogisticRegression(C=PROBE_C, max_iter=PROBE_MAX_ITER, random_state=seed).fit(X, y)


def score(clf: LogisticRegression, X: np.ndarray, y: np.ndarray) -> float:
    """Accuracy in percent."""
    return float(100.0 * (clf.predict(X) == y).mean())


def probe_accuracy(
    backbone: torch.nn.Module, train_set: Dataset, test_set: Dataset, cfg: ProbeConfig, device: torch.device
) -> dict[str, Any]:
    """``{"probe_acc": selection score, "probe_test_acc": test score, "probe_policy": policy}``."""
    train = extract_features(backbone, train_set, cfg.num_points, cfg.batch_size, device)
    test = extract_features(backbone, test_set, cfg.num_points, cfg.batch_size, device)
    return _fit_and_score(train, test, cfg)


def _fit_and_score(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                   cfg: ProbeConfig) -> dict[str, Any]:
    """The probe fitted on features ``train = (X, y)`` as ``cfg.policy`` says, scored on ``test``."""
    (X_train, y_train), (X_test, y_test) = train, test
    if cfg.policy == "paper":
        clf = fit_probe(X_train, y_train, cfg.seed)
        test_acc = score(clf, X_test, y_test)
        return {"probe_acc": test_acc, "probe_test_acc": test_acc, "probe_policy": cfg.policy}
    fit_idx, val_idx = stratified_split(y_train, cfg.val_fraction, cfg.seed)
    clf = fit_probe(X_train[fit_idx], y_train[fit_idx], cfg.seed)
    return {
        "probe_acc": score(clf, X_train[val_idx], y_train[val_idx]),
        "probe_test_acc": score(clf, X_test, y_test),
        "probe_policy": cfg.policy,
    }


def probe_record(backbone: torch.nn.Module, train_set: Dataset, test_set: Dataset, cfg: ProbeConfig,
                 device: torch.device) -> dict[str, Any]:
    """The probe of a frozen ``backbone`` as a metrics-file body: ``test.overall_acc`` (the probe fitted as
    ``cfg.policy`` says, scored on the test set), ``selection_acc`` and ``chance.overall_acc`` (majority)."""
    backbone.eval()
    train = extract_features(backbone, train_set, cfg.num_points, cfg.batch_size, device)
    test = extract_features(backbone, test_set, cfg.num_points, cfg.batch_size, device)
    result = _fit_and_score(train, test, cfg)
    return {"test": {"overall_acc": result["probe_test_acc"]}, "selection_acc": result["probe_acc"],
            "chance": {"overall_acc": majority_rate(torch.from_numpy(test[1]))},
            "probe": {"points": cfg.num_points, "C": PROBE_C, "max_iter": PROBE_MAX_ITER}}
