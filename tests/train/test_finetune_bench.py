"""``pointsd bench finetune`` measures both modes of the real training step (tiny sizes)."""

import json

import torch

from pointsd.bench import finetune as bench_finetune
from pointsd.bench.finetune import WORKLOADS, Workload, measure
from pointsd.cli import main as cli_main
from pointsd.models.config import BackboneConfig

TINY = BackboneConfig(trans_dim=32, depth=1, num_heads=2, encoder_dims=32)


def test_measure_both_modes_on_a_tiny_workload(monkeypatch, step_clock):
    """3 timed steps of batch 2 taking 0.5 s (reference) and 0.25 s (fast): 12 and 24 samples/s."""
    monkeypatch.setattr(bench_finetune, "time", step_clock([0.5, 0.25]))
    work = Workload("tiny", 256, 128, 8, 5, "scale_translate")
    rows = [measure(work, mode, torch.device("cpu"), 2, 1, 3, TINY, compile_model=False)
            for mode in ("reference", "fast")]
    assert [r["ops_backend"] for r in rows] == ["reference", "cpu"]
    assert [r["samples_per_s"] for r in rows] == [3 * 2 / 0.5, 3 * 2 / 0.25]


def test_cli_json_lists_the_paper_workloads(capsys, monkeypatch, step_clock):
    monkeypatch.setattr(bench_finetune, "time", step_clock([2.0, 0.5]))  # reference, then fast
    monkeypatch.setitem(WORKLOADS, "scan_hardest", Workload("scan_hardest", 160, 128, 8, 15, "scale_rotate"))
    argv = ["bench", "finetune", "--tasks", "scan_hardest", "--batch-size", "2", "--steps", "1", "--warmup", "1",
            "--trans-dim", "32", "--depth", "1", "--num-heads", "2", "--json"]
    assert cli_main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert {r["mode"] for r in report["rows"]} == {"reference", "fast"}
    assert {r["mode"]: r["samples_per_s"] for r in report["rows"]} == {"reference": 2 / 2.0, "fast": 2 / 0.5}
    assert report["speedup_fast_over_reference"]["scan_hardest"] == 4.0
