"""Triton KNN, both kernels (compiled on CUDA, else interpreted): exact, sorted, ties by lower index."""

from __future__ import annotations

import pytest
import torch
from pointsd_kernels.knn import SORTED_MAX_K, knn_with_dist

from pointsd.ops import reference as ref


# k <= SORTED_MAX_K: the sorted top-k kernel (several tiles, partial query blocks, k == N, k == 1, k == T);
# above: the selection kernel.
@pytest.mark.parametrize("B,M,N,k", [(2, 9, 150, 8), (1, 6, 6, 6), (1, 3, 200, 1), (1, 5, 100, 32),
                                     (1, 3, 80, SORTED_MAX_K + 6)])
def test_knn_kernel_matches_reference(gen, dev, B, M, N, k):
    pts = torch.randn(B, N, 3, generator=gen).to(dev)
    q = torch.randn(B, M, 3, generator=gen).to(dev)
    dist, idx = knn_with_dist(q, pts, k)
    ref_dist, ref_idx = ref.knn_with_dist(q, pts, k)
    assert torch.equal(idx, ref_idx) and torch.equal(dist, ref_dist)


def test_knn_kernel_ties(tie_grid):
    pts = tie_grid(2)
    q = (pts[:, ::5] + 0.5).contiguous()
    assert torch.equal(knn_with_dist(q, pts, 12)[1], ref.knn(q, pts, 12))
