"""``pointsd bench finetune`` measures both modes of the real training step (tiny sizes)."""

import json

import torch

from pointsd.bench import timing
from pointsd.bench.finetune import WORKLOADS, Workload, measure, targets
from pointsd.cli import main as cli_main
from pointsd.models.config import BackboneConfig

TINY = BackboneConfig(trans_dim=32, depth=1, num_heads=2, encoder_dims=32)


def test_measure_both_modes_on_a_tiny_workload(monkeypatch, step_clock):
    """3 timed steps of batch 2 taking 0.5 s (reference) and 0.25 s (fast): 4 and 8 samples/s."""
    work = Workload("tiny", 256, 128, 8, 5, "scale_translate")
    rows = []
    for mode, seconds in (("reference", 0.5), ("fast", 0.25)):
        monkeypatch.setattr(timing, "time", step_clock([seconds]))
        rows.append(measure(work, mode, torch.device("cpu"), 2, 1, 3, TINY))
    assert [r["ops_backend"] for r in rows] == ["reference", "cpu"]
    assert [r["samples_per_s"] for r in rows] == [2 / 0.5, 2 / 0.25]
    assert [r["steps"] for r in rows] == [3, 3]
    assert all(r["peak_mem_mb"] > 0 and r["recompiles"] == 0 for r in rows)
    assert [r["compiled"] for r in rows] == [False, False]  # the CPU plan does not compile


def test_targets_judge_speedup_and_rate():
    rows = [{"task": "scan_hardest", "mode": "reference", "samples_per_s": 1000.0},
            {"task": "scan_hardest", "mode": "fast", "samples_per_s": 3200.0},
            {"task": "modelnet40", "mode": "fast", "samples_per_s": 900.0}]
    found = {t["name"]: (t["measured"], t["met"]) for t in targets(rows)}
    assert found == {"finetune.scan_hardest.speedup": (3.2, True),
                     "finetune.scan_hardest.samples_per_s": (3200.0, True)}  # modelnet40: no reference row


def test_cli_json_lists_the_paper_workloads(capsys, monkeypatch, step_clock):
    monkeypatch.setattr(timing, "time", step_clock([2.0]))
    monkeypatch.setitem(WORKLOADS, "scan_hardest", Workload("scan_hardest", 160, 128, 8, 15, "scale_rotate"))
    argv = ["bench", "finetune", "--tasks", "scan_hardest", "--batch-size", "2", "--steps", "1", "--warmup", "1",
            "--trans-dim", "32", "--depth", "1", "--num-heads", "2", "--json"]
    assert cli_main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert {r["mode"] for r in report["rows"]} == {"reference", "fast"}
    assert {r["mode"]: r["samples_per_s"] for r in report["rows"]} == {"reference": 1.0, "fast": 1.0}
    assert report["speedup_fast_over_reference"]["scan_hardest"] == 1.0
    assert report["targets"] == []  # the targets are the GPU's
