"""A stage writes only its own outputs: right after a full `dvc repro`, `dvc status` is clean and a
second `dvc repro` has nothing to do (ModelNet40 fine-tuning once wrote FPS caches into data_synth's
tree, so the next `dvc repro` started again from the data). Code is an input: editing the fine-tuning
code changes exactly the stages that run it. The whole DAG runs on a smoke config (one short epoch
everywhere: the mechanics, not the learning; tests/e2e checks the learning)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.smoke_params import smoke

pytestmark = pytest.mark.timeout(1500)


def _run(cmd: list[str], cwd) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_second_dvc_repro_has_nothing_to_do(tmp_path, copy_checkout):
    checkout = copy_checkout(tmp_path / "checkout")
    params = smoke(yaml.safe_load((checkout / "params.yaml").read_text()))
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
    _edit_finetune_code_changes_exactly_its_stages(checkout)


def _edit_finetune_code_changes_exactly_its_stages(checkout) -> None:
    """After an edit of pointsd/train/finetune.py, `dvc status` names every stage that runs it (the
    classification and few-shot fine-tunes from stage 2 and from scratch, and the two few-shot summaries,
    whose command module imports the fine-tuning CLI: dependants of the few-shot runs anyway) and no other
    stage."""
    with open(checkout / "pointsd" / "train" / "finetune.py", "a") as f:
        f.write("# an edit\n")
    changed = set(json.loads(_run(["dvc", "status", "--json"], checkout).strip().splitlines()[-1]))
    stages = yaml.safe_load((checkout / "dvc.yaml").read_text())["stages"]
    runs_it = {"finetune", "finetune_scratch", "finetune_modelnet10", "finetune_modelnet10_scratch", "fewshot",
               "fewshot_aggregate", "fewshot_scratch", "fewshot_scratch_aggregate"} & set(stages)
    assert {name.split("@")[0] for name in changed} == runs_it, changed
    assert all("pointsd/train/finetune.py" in json.dumps(v) for v in json.loads(
        _run(["dvc", "status", "--json"], checkout).strip().splitlines()[-1]).values())
