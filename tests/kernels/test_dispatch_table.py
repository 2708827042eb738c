"""The ``triton`` backend's dispatch table: torch up to the measured work, the kernel above."""

from __future__ import annotations

import pointsd_kernels.knn
import torch

from pointsd import ops
from pointsd.ops import reference as ref
from pointsd.ops import triton_backend


def test_knn_runs_in_torch_up_to_the_table_s_work(monkeypatch, gen, dev):
    kernel_calls = []
    kernel = pointsd_kernels.knn.knn_with_dist
    monkeypatch.setattr(pointsd_kernels.knn, "knn_with_dist", lambda *a: kernel_calls.append(1) or kernel(*a))
    pts = torch.randn(1, 20, 3, generator=gen).to(dev)
    q = pts[:, :5]
    expect = ref.knn_with_dist(q, pts, 4)
    with ops.use_backend("triton"):
        for table, kernel_ran in [({}, True), ({"knn": 5 * 20}, False), ({"knn": 5 * 20 - 1}, True)]:
            monkeypatch.setattr(triton_backend, "TORCH_FASTER", table)
            kernel_calls.clear()
            got = ops.knn_with_dist(q, pts, 4)
            assert bool(kernel_calls) == kernel_ran, table
            assert all(torch.equal(a, b) for a, b in zip(got, expect))
