"""The written order of float operations for squared distances (:mod:`pointsd.ops.reference`):
inputs on which any other order gives other float32 values, checked on every device at hand."""

from __future__ import annotations

import pytest
import torch

from pointsd import ops
from pointsd.ops import reference as ref
from tests.ops import float_order as fo

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.mark.parametrize("other", [name for name in fo.ORDERS if name != fo.WRITTEN])
def test_the_inputs_tell_every_other_order_apart(other):
    written, alt = fo.expected_sq_dist(), fo.expected_sq_dist(other)
    assert not torch.equal(torch.argsort(alt, dim=1, stable=True), torch.argsort(written, dim=1, stable=True))
    assert not torch.equal(fo.expected_fps(other), fo.expected_fps())


@pytest.mark.parametrize("device", DEVICES)
def test_reference_distances_follow_the_written_order(device):
    q, pts = fo.clouds()
    got = ref.square_distance(q.to(device), pts.to(device))[:, 0]
    assert torch.equal(got.cpu(), fo.expected_sq_dist())


@pytest.mark.parametrize("device,backend", [(d, "reference") for d in DEVICES] + [("cpu", "cpu")])
def test_public_ops_follow_the_written_order(device, backend):
    with ops.use_backend(backend):
        fo.assert_public_ops_follow_written_order(torch.device(device))
