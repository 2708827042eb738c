"""The pointnet2_ops-compatible facade: layouts, int32 indices and upstream ball_query semantics."""

from __future__ import annotations

import torch

from pointsd.ops import pointnet2_utils as pu
from pointsd.ops import reference as ref


def naive_ball_query(radius: float, nsample: int, xyz: torch.Tensor, new_xyz: torch.Tensor) -> torch.Tensor:
    """The upstream CUDA loop, transcribed point by point."""
    B, S, _ = new_xyz.shape
    out = torch.zeros(B, S, nsample, dtype=torch.int32)
    for b in range(B):
        for s in range(S):
            cnt = 0
            for k in range(xyz.shape[1]):
                d2 = ((xyz[b, k] - new_xyz[b, s]) ** 2).sum()
                if d2 < radius**2:
                    if cnt == 0:
                        out[b, s, :] = k
                    out[b, s, cnt] = k
                    cnt += 1
                    if cnt >= nsample:
                        break
    return out


def test_ball_query_matches_upstream_loop(cloud):
    xyz = cloud(2, 60)
    centres = torch.cat([xyz[:, :6], torch.full((2, 1, 3), 50.0)], 1)  # the last ball is empty
    got = pu.ball_query(0.8, 5, xyz, centres)
    assert got.dtype == torch.int32 and got.shape == (2, 7, 5)
    assert torch.equal(got, naive_ball_query(0.8, 5, xyz, centres))
    assert torch.equal(got[:, -1], torch.zeros(2, 5, dtype=torch.int32))


def test_fps_is_int32_from_zero(cloud):
    xyz = cloud(2, 50)
    got = pu.furthest_point_sample(xyz, 10)
    assert got.dtype == torch.int32
    assert torch.equal(got.long(), ref.furthest_point_sample(xyz, 10, 0))


def test_gather_and_grouping_layouts_and_gradients(gen):
    feats = torch.randn(2, 4, 20, generator=gen, requires_grad=True)
    idx = torch.randint(0, 20, (2, 6), generator=gen, dtype=torch.int32)
    gathered = pu.gather_operation(feats, idx)
    assert gathered.shape == (2, 4, 6)
    assert torch.equal(gathered[1, :, 2], feats[1, :, idx[1, 2]])
    group_idx = torch.randint(0, 20, (2, 6, 3), generator=gen, dtype=torch.int32)
    grouped = pu.grouping_operation(feats, group_idx)
    assert grouped.shape == (2, 4, 6, 3)
    assert torch.equal(grouped[0, :, 5, 1], feats[0, :, group_idx[0, 5, 1]])
    (gathered.sum() + grouped.sum()).backward()
    counts = torch.zeros(2, 20)
    for b in range(2):
        counts[b].index_add_(0, idx[b].long(), torch.ones(6))
        counts[b].index_add_(0, group_idx[b].flatten().long(), torch.ones(18))
    torch.testing.assert_close(feats.grad, counts.unsqueeze(1).expand(-1, 4, -1))


def test_three_nn_and_interpolate(cloud, gen):
    known, unknown = cloud(2, 12), cloud(2, 30)
    dist, idx = pu.three_nn(unknown, known)
    ref_dist, ref_idx = ref.three_nn(unknown, known)
    assert idx.dtype == torch.int32 and torch.equal(idx.long(), ref_idx)
    torch.testing.assert_close(dist, ref_dist)
    weight = 1.0 / (dist + 1e-8)
    weight = weight / weight.sum(-1, keepdim=True)
    feats = torch.randn(2, 5, 12, generator=gen)
    out = pu.three_interpolate(feats, idx, weight)
    torch.testing.assert_close(out, ref.three_interpolate(feats, ref_idx, weight))
