"""A stage writes only its own outputs: right after a full `dvc repro`, `dvc status` is clean and a
second `dvc repro` has nothing to do (ModelNet40 fine-tuning once wrote FPS caches into data_synth's
tree, so the next `dvc repro` started again from the data). The whole DAG runs on a smoke config
(one short epoch everywhere: the mechanics, not the learning; tests/e2e checks the learning)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

pytestmark = pytest.mark.timeout(1500)


def _run(cmd: list[str], cwd) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _smoke(params: dict) -> dict:
    """One short epoch per run, one few-shot fold, an FPS cache size the data does not hold."""
    params["pretrain"].update(max_steps_per_epoch=2)
    for task in [*params["finetune"].values(), params["fewshot"], params["partseg"]]:
        task.update(epochs=1, npoints=64, num_group=8, group_size=8)
    params["fewshot"]["grid"]["folds"] = [0]
    params["finetune_common"]["modelnet40_points"] = 300
    params["paths"]["modelnet10"] = "no-modelnet10-here"
    return params


def test_second_dvc_repro_has_nothing_to_do(tmp_path, copy_checkout):
    checkout = copy_checkout(tmp_path / "checkout")
    params = _smoke(yaml.safe_load((checkout / "params.yaml").read_text()))
    (checkout / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], checkout)
    _run([sys.executable, "workflow/stage_table.py", "dvc"], checkout)
    first = _run(["dvc", "repro"], checkout)
    assert "Running stage 'report_table'" in first and "Running stage 'finetune@modelnet40'" in first
    assert "up to date" in _run(["dvc", "status"], checkout)
    second = _run(["dvc", "repro"], checkout)
    assert "Running stage" not in second, second
    assert (checkout / "results/table.md").is_file()
    assert not list((checkout / "data/synthetic").rglob("*300pts_fps.dat"))
