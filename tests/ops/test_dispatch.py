"""Backend selection: context manager, process-wide setter, environment variable, errors."""

from __future__ import annotations

import pytest
import torch

from pointsd import ops
from pointsd.errors import PointSDError
from pointsd.ops import backends


def test_auto_picks_cpu_for_cpu_tensors(monkeypatch):
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    assert ops.selected() == "auto"
    name, module = backends.resolve(torch.device("cpu"))
    assert name == "cpu" and module.__name__ == "pointsd.ops.cpu"


def test_precedence_context_over_setter_over_env(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "reference")
    assert backends.resolve(torch.device("cpu"))[0] == "reference"
    try:
        ops.set_backend("cpu")
        assert ops.selected() == "cpu"
        with ops.use_backend("reference"):
            assert ops.selected() == "reference"
        assert ops.selected() == "cpu"
    finally:
        ops.set_backend(None)
    assert ops.selected() == "reference"


@pytest.mark.parametrize("bad", ["cuda", "numba", ""])
def test_unknown_backend_is_an_error(bad):
    with pytest.raises(PointSDError, match="unknown ops backend"), ops.use_backend(bad):
        pass


def test_unknown_backend_from_env(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "fast")
    with pytest.raises(PointSDError, match="POINTSD_OPS_BACKEND"):
        ops.furthest_point_sample(torch.zeros(1, 4, 3), 2)


def test_unavailable_backends_are_errors(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    xyz = torch.rand(1, 8, 3)
    with ops.use_backend("triton"), pytest.raises(PointSDError, match="'triton' is unavailable"):
        ops.furthest_point_sample(xyz, 2)
    with ops.use_backend("pointnet2_ops"), pytest.raises(PointSDError, match="'pointnet2_ops' is unavailable"):
        ops.knn(xyz, xyz, 2)
