"""Linear probe on frozen features: accuracy on separable data, policies, FPS to probe points."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pointsd.errors import PointSDError
from pointsd.train.probe import ProbeConfig, extract_features, probe_accuracy


class RadiusBackbone(nn.Module):
    """A frozen stand-in backbone: global feature = (mean radius, point count), ``(B,N,3)`` → ``(B,2)``."""

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        radius = points.norm(dim=-1).mean(dim=1, keepdim=True)
        count = torch.full_like(radius, points.shape[1])
        return torch.cat([radius, count], dim=1), points


def shells(n: int, seed: int) -> list[tuple[torch.Tensor, int]]:
    """Class = which of two spherical shells (radius 0.3 or 0.9) the cloud lies on."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        d = torch.randn(50, 3, generator=g)
        out.append((d / d.norm(dim=1, keepdim=True) * (0.3 if i % 2 else 0.9), i % 2))
    return out


def test_features_are_fps_reduced_to_probe_points() -> None:
    X, y = extract_features(RadiusBackbone(), shells(6, 0), num_points=20, batch_size=4, device=torch.device("cpu"))
    assert X.shape == (6, 2) and (X[:, 1] == 20).all() and y.tolist() == [0, 1, 0, 1, 0, 1]
    with pytest.raises(PointSDError, match="probe_points"):
        extract_features(RadiusBackbone(), shells(2, 0), num_points=99, batch_size=4, device=torch.device("cpu"))


@pytest.mark.parametrize("policy", ["paper", "honest"])
def test_separable_classes_are_probed_perfectly(policy: str) -> None:
    cfg = ProbeConfig(policy=policy, num_points=32, val_fraction=0.25)
    result = probe_accuracy(RadiusBackbone(), shells(40, 1), shells(10, 2), cfg, torch.device("cpu"))
    assert result["probe_policy"] == policy
    assert result["probe_acc"] == 100.0 and result["probe_test_acc"] == 100.0


def test_honest_policy_never_selects_on_test() -> None:
    # test labels flipped: the paper score collapses, the honest score (held-out train) does not
    flipped = [(p, 1 - y) for p, y in shells(10, 2)]
    paper = probe_accuracy(RadiusBackbone(), shells(40, 1), flipped, ProbeConfig("paper", 32), torch.device("cpu"))
    honest = probe_accuracy(RadiusBackbone(), shells(40, 1), flipped, ProbeConfig("honest", 32), torch.device("cpu"))
    assert paper["probe_acc"] == 0.0
    assert honest["probe_acc"] == 100.0 and honest["probe_test_acc"] == 0.0


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(PointSDError, match="policy"):
        ProbeConfig(policy="best")
