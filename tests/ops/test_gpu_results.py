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
    assert doc["targets"] == [{"name": "ops.chamfer.1024x1024.vs_reference", "measured": 2.67, "target": 3.0,
                               "met": False}]
    assert [r["bench"] for r in doc["rows"]] == ["ops", "ops", "finetune"]
    assert doc["tests"] == {"rc": 0, "passed": True, "summary": "3 passed in 1.0s"}
    assert "CUDA out of memory" in doc["missing"]["pretrain"] and "no output" in doc["missing"]["render"]


def test_results_file_without_ops_output_says_so(tmp_path):
    doc = gpu.assemble(tmp_path / "absent.json", {})
    assert doc["targets"] == [] and doc["rows"] == [] and "ops" in doc["missing"]
    assert doc["meta"]["torch"] == torch.__version__ and doc["meta"]["date"]


def test_training_targets_join_the_ops_targets(tmp_path):
    """finetune.* come from the fine-tuning bench; pretrain.* are judged on both stage invocations' rows."""
    (tmp_path / "ops.json").write_text(json.dumps(_ops_output()))
    finetune = {"rows": [], "targets": [{"name": "finetune.modelnet40.speedup", "measured": 4.5, "target": 4.0,
                                          "met": True}]}
    (tmp_path / "finetune.json").write_text(json.dumps(finetune))
    for stage, (ref, fast) in ((1, (10.0, 35.0)), (2, (10.0, 40.0))):
        rows = [{"kind": "step", "stage": stage, "mode": "reference", "samples_per_s": ref},
                {"kind": "step", "stage": stage, "mode": "fast", "samples_per_s": fast},
                {"kind": "loop", "stage": stage, "mode": "fast", "samples_per_s": 4000.0}]
        (tmp_path / f"pretrain{stage}.json").write_text(json.dumps({"rows": rows, "targets": []}))
    benches = {name: tmp_path / f"{name}.json" for name in ("finetune", "pretrain1", "pretrain2")}
    doc = gpu.assemble(tmp_path / "ops.json", benches)
    found = {t["name"]: t["met"] for t in doc["targets"]}
    assert found == {"ops.chamfer.1024x1024.vs_reference": False, "finetune.modelnet40.speedup": True,
                     "pretrain.stage1.speedup": True, "pretrain.stage2.speedup": False,
                     "pretrain.paper_schedule_hours": True}  # 2 x 300 x 52,470 / 4000 / 3600 = 2.19 h


def test_gpu_script_fits_its_eight_minutes_and_runs_every_bench():
    """benchmarks/gpu.sh: literal timeouts plus the looped specs' ("SECONDS name ...") at most 480 s."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.sh").read_text()
    literal = [int(s) for s in re.findall(r"\btimeout (\d+) ", text)]
    looped = [int(s) for s in re.findall(r'"(\d+) [\w/]+', text)]
    assert len(literal) == 2 and len(looped) == 5 and sum(literal + looped) <= 480
    for bench in ("bench ops", "pretrain --stages 1", "pretrain --stages 2", '"70 finetune finetune"'):
        assert bench in text
