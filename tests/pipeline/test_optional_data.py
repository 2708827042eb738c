"""Real data is optional: without ``paths.modelnet10`` the DAG still completes, and the ModelNet10
row records that it did not run, naming the path and how to get the data."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from conftest import ROOT, snakemake_jobs


def _checkout_without_modelnet10(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for rel in files:
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["paths"]["modelnet10"] = str(dest / "no-modelnet10-here")
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return dest / "no-modelnet10-here"


def test_missing_modelnet10_is_recorded_not_run(tmp_path):
    absent = _checkout_without_modelnet10(tmp_path)
    jobs = snakemake_jobs(cwd=tmp_path)
    assert jobs["runs/finetune/modelnet10"]["cmd"].startswith(
        f"pointsd report not-run --task modelnet10 --reason 'no data at {absent}'")
    proc = subprocess.run(["snakemake", "--cores", "1", "runs/finetune/modelnet10"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "runs/finetune/modelnet10/metrics.json").read_text())
    assert record["status"] == "not run" and record["reason"] == f"no data at {absent}"
    assert "train.h5" in record["hint"]
