"""``pointsd bench ops --quick --json``: every op, size and implementation, exact, timed."""

from __future__ import annotations

import json

import torch

from pointsd.cli import main


def test_bench_ops_quick_json(capsys):
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
        assert r["median_ms"] > 0 and r["speedup"] > 0


def test_bench_ops_cuda_without_gpu_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", "ops", "--device", "cuda", "--quick"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
