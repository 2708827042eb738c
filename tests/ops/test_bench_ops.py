"""``pointsd bench ops --quick --json``: every op, size and implementation, exact, timed."""

from __future__ import annotations

import json

import torch

from pointsd.bench import ops as bench_ops
from pointsd.bench.ops import FULL_BATCH, CdistTopk, Row, evaluate_targets
from pointsd.cli import main
from pointsd.ops import reference


def test_bench_ops_quick_json(capsys, monkeypatch, step_clock):
    # Per case and repeat on the CPU: the reference, the cpu backend through the public ops, then straight.
    monkeypatch.setattr(bench_ops, "time", step_clock([0.008, 0.002, 0.0005]))
    assert main(["bench", "ops", "--quick", "--json", "--repeats", "1"]) == 0
    assert torch.is_grad_enabled()  # the command leaves no global state behind
    report = json.loads(capsys.readouterr().out)
    assert report["bench"] == "ops" and report["meta"]["profile"] == "quick"
    rows = report["rows"]
    cells = {(r["op"], r["size"], r["impl"]) for r in rows}
    for op, size in [("fps", "8192->1024"), ("knn", "2048->128 k=32"), ("three_nn", "2048x128"),
                     ("chamfer", "1024x1024")]:
        assert {(op, size, "reference"), (op, size, "cpu")} <= cells
    assert len(rows) == 16
    for r in rows:
        assert r["exact"] is True and r["batch"] == 1
        reference = r["impl"] == "reference"
        assert (r["median_ms"], r["kernel_ms"], r["speedup"]) == ((8.0, None, 1.0) if reference else (2.0, 0.5, 4.0))
    assert report["targets"] == []  # targets are judged at the full batch only


def _rows(ms: dict[tuple[str, str, str], float]) -> list[Row]:
    return [Row(op, size, FULL_BATCH, impl, t, None, 1.0, True) for (op, size, impl), t in ms.items()]


def test_cuda_targets_compare_with_the_named_baselines():
    rows = _rows({("knn", "2048->128 k=32", "reference"): 9.0, ("knn", "2048->128 k=32", "cdist+topk"): 5.0,
                  ("knn", "2048->128 k=32", "triton"): 3.0, ("fps", "1024->64", "reference"): 5.0,
                  ("fps", "1024->64", "triton"): 0.2})
    got = {t["name"]: t for t in evaluate_targets(rows, torch.device("cuda"))}
    assert got["ops.knn.2048->128_k=32.vs_reference"] == {"name": "ops.knn.2048->128_k=32.vs_reference",
                                                          "measured": 3.0, "target": 3.0, "met": True}
    assert got["ops.knn.2048->128_k=32.vs_cdist+topk"]["met"] is False  # 1.67× < 2×
    assert got["ops.fps.1024->64.vs_pointnet2_ops"] == {"name": "ops.fps.1024->64.vs_pointnet2_ops",
                                                        "measured": None, "target": 1.5, "met": False}
    assert len(got) == 3  # sizes that were not measured give no target
    assert evaluate_targets([Row("fps", "1024->64", 1, "triton", 0.1, None, 1.0, True)],
                            torch.device("cuda")) == []


def test_targets_compare_calls_without_validation_on_both_sides():
    rows = [Row("fps", "1024->64", FULL_BATCH, "pointnet2_ops", 0.40, 0.30, 1.0, True),
            Row("fps", "1024->64", FULL_BATCH, "triton", 0.32, 0.20, 1.0, True),
            Row("fps", "2048->128", FULL_BATCH, "reference", 20.0, None, 1.0, True),
            Row("fps", "2048->128", FULL_BATCH, "cpu", 1.0, 0.5, 20.0, True)]
    cuda = {t["name"]: t["measured"] for t in evaluate_targets(rows, torch.device("cuda"))}
    assert cuda["ops.fps.1024->64.vs_pointnet2_ops"] == 1.5  # 0.30 / 0.20, not 0.40 / 0.32
    cpu = {t["name"]: t["measured"] for t in evaluate_targets(rows, torch.device("cpu"))}
    assert cpu["ops.fps.2048->128.vs_reference"] == 40.0  # 20 / 0.5: the kernel's time


def test_cdist_topk_baseline_finds_the_same_neighbours(gen):
    pts = torch.randn(2, 200, 3, generator=gen)
    dist, idx = CdistTopk.knn_with_dist(pts[:, :7], pts, 5)
    ref_dist, ref_idx = reference.knn_with_dist(pts[:, :7], pts, 5)
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(dist, ref_dist, atol=1e-5, rtol=1e-4)


def test_bench_ops_cuda_without_gpu_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", "ops", "--device", "cuda", "--quick"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
