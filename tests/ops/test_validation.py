"""Bad inputs raise one PointSDError naming the argument."""

from __future__ import annotations

import pytest
import torch

from pointsd import ops
from pointsd.errors import PointSDError

P = torch.rand(2, 10, 3)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: ops.furthest_point_sample(torch.rand(10, 3), 2), "xyz: expected a"),
        (lambda: ops.furthest_point_sample(torch.rand(2, 10, 2), 2), "xyz: last dimension must be 3"),
        (lambda: ops.furthest_point_sample(P, 11), r"n=11 out of range \[1, 10\]"),
        (lambda: ops.furthest_point_sample(P, 0), "n=0 out of range"),
        (lambda: ops.furthest_point_sample(P, 3, start=10), "start=10 out of range"),
        (lambda: ops.furthest_point_sample(P.long(), 3), "xyz: expected a floating tensor"),
        (lambda: ops.furthest_point_sample([[0.0, 0.0, 0.0]], 1), "xyz: expected a torch.Tensor"),
        (lambda: ops.knn(P, P, 11), r"k=11 out of range"),
        (lambda: ops.knn(P[:1], P, 2), "points: batch size 2 does not match query's 1"),
        (lambda: ops.knn(P, P.clone().index_fill_(1, torch.tensor([3]), float("nan")), 2), "points: contains NaN"),
        (lambda: ops.knn(P.clone().fill_(float("inf")), P, 2), "query: contains NaN or infinite"),
        (lambda: ops.three_nn(P, P[:, :2]), "known: needs at least 3 points"),
        (lambda: ops.chamfer_distance(P, torch.rand(3, 4, 3)), "y: batch size 3"),
        (lambda: ops.three_interpolate(torch.rand(2, 4, 5), torch.full((2, 6, 3), 5), torch.rand(2, 6, 3)),
         r"idx: values must lie in \[0, 5\)"),
        (lambda: ops.three_interpolate(torch.rand(2, 4, 5), torch.zeros(2, 6, 2, dtype=torch.long),
                                       torch.rand(2, 6, 3)), "idx: expected shape"),
        (lambda: ops.three_interpolate(torch.rand(2, 4, 5), torch.zeros(2, 6, 3), torch.rand(2, 6, 3)),
         "idx: expected an integer tensor"),
        (lambda: ops.gather(P, torch.tensor([[0, 10]] * 2)), r"idx: values must lie in \[0, 10\)"),
        (lambda: ops.gather(P, torch.zeros(3, 2, dtype=torch.long)), "idx: batch size 3"),
    ],
)
def test_bad_input_raises_named_error(call, match):
    with pytest.raises(PointSDError, match=match):
        call()


def test_value_checks_can_be_left_to_the_loss():
    """Inside values_unchecked (the fast path's training step) NaN and out-of-range values are not read."""
    from pointsd.ops.validate import values_unchecked

    bad = torch.rand(1, 8, 3)
    bad[0, 3, 1] = float("nan")
    with values_unchecked():
        ops.furthest_point_sample(bad, 2)
        with pytest.raises(RuntimeError, match="out of bounds") as caught:  # torch's own indexing error
            ops.gather(torch.rand(1, 4, 3), torch.tensor([[7]]))
        assert not isinstance(caught.value, PointSDError)
    with values_unchecked(False), pytest.raises(PointSDError, match="xyz: contains NaN"):
        ops.furthest_point_sample(bad, 2)
    with pytest.raises(PointSDError, match="xyz: contains NaN"):
        ops.furthest_point_sample(bad, 2)


def test_a_huge_finite_cloud_is_finite():
    """The sum overflows to inf; the element-wise check then finds every value finite."""
    huge = torch.full((1, 8, 3), 3e38)
    assert ops.furthest_point_sample(huge, 2).shape == (1, 2)
