"""Every fast backend gives the reference's exact indices (ties included) and distances."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from pointsd import ops
from pointsd.ops import reference as ref
from tests.ops.conftest import grid_with_duplicates

FAST = ["cpu"]


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("B,N,n,start", [(3, 257, 32, 0), (1, 64, 64, 5), (2, 100, 1, 99)])
def test_fps_matches_reference(cloud, backend, B, N, n, start):
    xyz = cloud(B, N)
    with ops.use_backend(backend):
        got = ops.furthest_point_sample(xyz, n, start)
    assert got.dtype == torch.long and got.shape == (B, n)
    assert torch.equal(got, ref.furthest_point_sample(xyz, n, start))


@pytest.mark.parametrize("backend", FAST)
def test_fps_ties_and_duplicates(tie_grid, backend):
    xyz = tie_grid(2)
    with ops.use_backend(backend):
        got = ops.furthest_point_sample(xyz, xyz.shape[1], 3)
    assert torch.equal(got, ref.furthest_point_sample(xyz, xyz.shape[1], 3))
    assert got[0, 0] == 3


def _cpu_fps_cases() -> dict[str, torch.Tensor]:
    """Inputs for the block-pruned CPU FPS: shapes that stress its boxes, padding and tie-breaking."""
    g = torch.Generator().manual_seed(7)
    normal = torch.randn(2, 1000, 3, generator=g)
    return {
        "normal-1000": normal,
        "grid-duplicates": grid_with_duplicates(1, side=8),
        "flat-plane": normal * torch.tensor([1.0, 1.0, 0.0]),
        "one-point-repeated": torch.ones(1, 300, 3),
        "tiny-scale": normal * 1e-20,
        "overflowing-distances": normal * 1e19,
        "signed-zeros": torch.where(torch.rand(1, 500, 3, generator=g) < 0.5, -1.0, 1.0)
        * torch.randint(0, 2, (1, 500, 3), generator=g) * torch.tensor([0.0, 1.0, 0.0]),
        "clusters": torch.cat([torch.randn(1, 400, 3, generator=g) * 0.01 + c for c in (-5.0, 0.0, 5.0)], 1),
        "two-mask-words": torch.randn(1, 4200, 3, generator=g),  # > 64 blocks of 64: a second, partial word
    }


@pytest.mark.parametrize("name", list(_cpu_fps_cases()))
def test_cpu_fps_is_exact(name):
    """Both CPU FPS drivers (serial, parallel over the batch) against the reference, every index."""
    from pointsd.ops import cpu

    xyz = _cpu_fps_cases()[name].contiguous()
    B, N, _ = xyz.shape
    for n, start in ((N, 3), (min(N, 300), 0)):
        expected = ref.furthest_point_sample(xyz, n, start)
        for driver in (cpu._fps_serial, cpu._fps_parallel):
            out = torch.empty(B, n, dtype=torch.long)
            driver(xyz.numpy(), n, start, out.numpy())
            assert torch.equal(out, expected), (name, n, driver)


@pytest.mark.parametrize("threads", [1, 2])
def test_cpu_kernels_use_torchs_thread_count(monkeypatch, threads):
    """A process given one thread (a Snakemake job's OMP_NUM_THREADS) runs the serial drivers; given
    two, the parallel ones on two numba threads."""
    import numba

    from pointsd.ops import cpu

    calls: list[str] = []
    for name in ("_fps_serial", "_fps_parallel"):
        driver = getattr(cpu, name)
        monkeypatch.setattr(cpu, name, lambda *a, _d=driver, _n=name: calls.append(_n) or _d(*a))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        xyz = torch.randn(64, 1024, 3)
        got = cpu.furthest_point_sample(xyz, 128, 0)  # 2**23 distance evaluations: parallel work
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert calls == (["_fps_serial"] if threads == 1 else ["_fps_parallel"])
    assert after == threads  # numba's OpenMP pool shares libgomp with torch: the count is kept
    assert threads == 1 or numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
    assert torch.equal(got, ref.furthest_point_sample(xyz, 128, 0))


def test_a_parallel_kernel_leaves_torchs_thread_count_alone():
    """A job given 2 threads on a node where numba may start 4: numba's first parallel region sets the
    OpenMP thread count it shares with torch to 4; the count goes back to 2."""
    probe = ("import torch; from pointsd.ops import cpu; "
             "cpu.furthest_point_sample(torch.randn(64, 1024, 3), 128, 0); print(torch.get_num_threads())")
    env = {**os.environ, "NUMBA_NUM_THREADS": "4", "OMP_NUM_THREADS": "2"}
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["2"]


def test_public_cpu_fps_at_the_benchmark_size(cloud):
    """2048 → 128 (many blocks, padding-free) with clusters and duplicated points, through the public op."""
    xyz = cloud(4, 2048)
    xyz[1] = xyz[1] * 0.01 + torch.randint(0, 3, (2048, 1)).float() * 5.0
    xyz[2, 1024:] = xyz[2, :1024]
    with ops.use_backend("cpu"):
        got = ops.furthest_point_sample(xyz, 128, 7)
    assert torch.equal(got, ref.furthest_point_sample(xyz, 128, 7))


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("B,M,N,k", [(2, 17, 300, 16), (1, 5, 5, 5), (3, 8, 40, 1)])
def test_knn_matches_reference(cloud, backend, B, M, N, k):
    pts = cloud(B, N)
    q = cloud(B, M)
    with ops.use_backend(backend):
        dist, idx = ops.knn_with_dist(q, pts, k)
    ref_dist, ref_idx = ref.knn_with_dist(q, pts, k)
    assert torch.equal(idx, ref_idx)
    assert torch.equal(dist, ref_dist)


@pytest.mark.parametrize("backend", FAST)
def test_knn_ties_go_to_lower_index(tie_grid, backend):
    pts = tie_grid(2)
    q = pts[:, ::7] + 0.5  # equidistant from several grid points
    with ops.use_backend(backend):
        got = ops.knn(q, pts, 20)
    assert torch.equal(got, ref.knn(q, pts, 20))


@pytest.mark.parametrize("backend", FAST)
def test_three_nn_matches_reference(cloud, backend):
    known = cloud(2, 30)
    unknown = torch.cat([cloud(2, 50), known[:, :4]], 1)  # some exact hits: distance 0
    with ops.use_backend(backend):
        dist, idx = ops.three_nn(unknown, known)
    ref_dist, ref_idx = ref.three_nn(unknown, known)
    assert torch.equal(idx, ref_idx)
    assert torch.equal(dist, ref_dist)


@pytest.mark.parametrize("backend", FAST)
def test_chamfer_matches_reference(cloud, backend):
    x, y = cloud(3, 70), cloud(3, 45)
    with ops.use_backend(backend):
        d1, d2 = ops.chamfer_distance(x, y)
    r1, r2 = ref.chamfer_distance(x, y)
    assert torch.equal(d1, r1) and torch.equal(d2, r2)


@pytest.mark.parametrize("backend", FAST)
def test_three_interpolate_matches_reference(gen, backend):
    feats = torch.randn(2, 5, 12, generator=gen)
    idx = torch.randint(0, 12, (2, 9, 3), generator=gen)
    weight = torch.rand(2, 9, 3, generator=gen)
    with ops.use_backend(backend):
        got = ops.three_interpolate(feats, idx.int(), weight)
    torch.testing.assert_close(got, ref.three_interpolate(feats, idx, weight))


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_use_float32_indices(cloud, backend, dtype):
    xyz = cloud(2, 200, dtype)
    as32 = xyz.float()
    with ops.use_backend(backend):
        fps = ops.furthest_point_sample(xyz, 40)
        nbrs = ops.knn(xyz[:, :10], xyz, 8)
    assert torch.equal(fps, ref.furthest_point_sample(as32, 40))
    assert torch.equal(nbrs, ref.knn(as32[:, :10], as32, 8))


@pytest.mark.parametrize("backend", FAST)
def test_non_contiguous_inputs(gen, backend):
    base = torch.randn(2, 3, 150, generator=gen)
    xyz = base.transpose(1, 2)  # (2,150,3), not contiguous
    assert not xyz.is_contiguous()
    with ops.use_backend(backend):
        fps = ops.furthest_point_sample(xyz, 20)
        nbrs = ops.knn(xyz[:, ::5], xyz, 4)
        d1, d2 = ops.chamfer_distance(xyz[:, ::2], xyz[:, 1::3])
    assert torch.equal(fps, ref.furthest_point_sample(xyz.contiguous(), 20))
    assert torch.equal(nbrs, ref.knn(xyz[:, ::5].contiguous(), xyz.contiguous(), 4))
    r1, r2 = ref.chamfer_distance(xyz[:, ::2].contiguous(), xyz[:, 1::3].contiguous())
    assert torch.equal(d1, r1) and torch.equal(d2, r2)


def test_gather_picks_rows(gen):
    pts = torch.randn(2, 10, 4, generator=gen)
    idx = torch.tensor([[[0, 9], [3, 3]], [[1, 2], [8, 0]]])
    out = ops.gather(pts, idx)
    assert out.shape == (2, 2, 2, 4)
    assert torch.equal(out[1, 1, 0], pts[1, 8])
