"""``python -m pointsd.results.gpu``: the GPU results file assembled from fake bench outputs."""

from __future__ import annotations

import json
from dataclasses import asdict

import torch

from pointsd.bench.ops import FULL_BATCH, Row, evaluate_targets
from pointsd.results import gpu


def _ops_output() -> dict:
    rows = [Row("chamfer", "1024x1024", FULL_BATCH, "reference", 1.2, None, 1.0, True),
            Row("chamfer", "1024x1024", FULL_BATCH, "triton", 0.5, 0.45, 2.4, True)]
    meta = {"device": "cuda:Fake GPU", "commit": "abc1234", "date": "2026-11-26T12:00:00+00:00",
            "torch": "2.11.0", "profile": "full"}
    return {"bench": "ops", "meta": meta, "rows": [asdict(r) for r in rows],
            "targets": evaluate_targets(rows, torch.device("cuda"))}


def test_results_file_from_bench_outputs(tmp_path):
    (tmp_path / "ops.json").write_text(json.dumps(_ops_output()))
    (tmp_path / "finetune.json").write_text(json.dumps({"meta": {}, "rows": [{"mode": "fast", "samples_s": 9}]}))
    (tmp_path / "pretrain.json").write_text("Traceback ...\nRuntimeError: CUDA out of memory\n")
    (tmp_path / "pytest.log").write_text("....\n3 passed in 1.0s\n")
    out = tmp_path / "results" / "gpu-2026-11-26.json"
    assert gpu.main(["--ops", str(tmp_path / "ops.json"), "--bench", f"finetune={tmp_path / 'finetune.json'}",
                     "--bench", f"pretrain={tmp_path / 'pretrain.json'}", "--bench", "render=/nonexistent.json",
                     "--tests-rc", "0", "--tests-log", str(tmp_path / "pytest.log"), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert set(doc["meta"]) == {"device", "commit", "date", "torch", "triton"}
    assert doc["meta"]["device"] == "cuda:Fake GPU" and doc["meta"]["commit"] == "abc1234"
    assert doc["targets"] == [{"name": "ops.chamfer.1024x1024.vs_reference", "measured": 2.4, "target": 3.0,
                               "met": False}]
    assert [r["bench"] for r in doc["rows"]] == ["ops", "ops", "finetune"]
    assert doc["tests"] == {"rc": 0, "passed": True, "summary": "3 passed in 1.0s"}
    assert "CUDA out of memory" in doc["missing"]["pretrain"] and "no output" in doc["missing"]["render"]


def test_results_file_without_ops_output_says_so(tmp_path):
    doc = gpu.assemble(tmp_path / "absent.json", {})
    assert doc["targets"] == [] and doc["rows"] == [] and "ops" in doc["missing"]
    assert doc["meta"]["torch"] == torch.__version__ and doc["meta"]["date"]
