"""A stage writes only its own outputs: right after `dvc repro`, `dvc status` is clean and a second
`dvc repro` has nothing to do (ModelNet40 fine-tuning once wrote FPS caches into data_synth's tree)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

pytestmark = pytest.mark.timeout(900)


def _run(cmd: list[str], cwd) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_second_dvc_repro_has_nothing_to_do(tmp_path, copy_checkout):
    checkout = copy_checkout(tmp_path / "checkout")
    params = yaml.safe_load((checkout / "params.yaml").read_text())
    params["finetune"]["modelnet40"].update(epochs=1, npoints=64, num_group=8, group_size=8, votes=1)
    params["finetune_common"]["modelnet40_points"] = 300  # no cache of that size: FPS in memory
    (checkout / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], checkout)
    _run([sys.executable, "workflow/stage_table.py", "dvc"], checkout)
    target = "finetune_scratch@modelnet40"  # data_synth, then one fine-tuning run
    first = _run(["dvc", "repro", target], checkout)
    assert "Running stage 'data_synth'" in first and f"Running stage '{target}'" in first
    assert "up to date" in _run(["dvc", "status", target], checkout)
    second = _run(["dvc", "repro", target], checkout)
    assert "Running stage" not in second, second
    assert not list((checkout / "data/synthetic").rglob("*300pts_fps.dat"))
