"""The embedded-default DAG from data to one fine-tune through ``workflow/profiles/slurm`` on a real
(one-node) SLURM cluster: every job goes through sbatch, the outputs equal a local run's (data bitwise,
stage 1 to float tolerance), a failing job fails the workflow.

The profile's own values run: its partition, and each job's time, memory, threads and GPUs from
params.yaml and the stage table (the cluster offers them, tests/cluster/conftest.py). What the test
cluster needs besides (squeue status polling every 2 s: no accounting, so no sacct; no account) comes from
its overlay profile, tests/cluster/profile, given as the workflow profile.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import SLURM_FLAGS, Cluster, snakemake, submitted

from pointsd.diffusion.stable_diffusion import TRAINING_REPORT

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slurm, pytest.mark.timeout(1500)]
TARGET = "runs/finetune/scan_objbg"
SLICE = {"data_synth", "render", "sd_tiny", "pretrain_stage1", "pretrain_stage2", "finetune"}
TIMEOUT = 1200  # seconds, each Snakemake run


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster: Cluster, tmp_path_factory, cluster_checkout) -> tuple[Path, subprocess.CompletedProcess, float]:
    work = tmp_path_factory.mktemp("slurm-run")
    cluster_checkout(work)
    started = time.monotonic()
    proc = snakemake(work, slurm_cluster.env, TARGET, *SLURM_FLAGS, timeout=TIMEOUT)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    print(f"SLURM slice ({', '.join(sorted(SLICE))}): {elapsed:.0f} s")
    return work, proc, elapsed


def test_every_job_went_through_sbatch(slurm_cluster: Cluster, slurm_run) -> None:
    """One SLURM job per rule of the slice: its id in Snakemake's output, its log under
    .snakemake/slurm_logs/rule_<rule>/[<wildcards>/]<id>.log, COMPLETED in squeue."""
    work, proc, _ = slurm_run
    ids = submitted(proc)
    logdir = work / ".snakemake" / "slurm_logs"
    logs = {p.stem: p.relative_to(logdir).parts[0].removeprefix("rule_") for p in logdir.rglob("*.log")}
    assert sorted(logs.values()) == sorted(SLICE) and set(ids) == set(logs), (logs, ids)
    states = slurm_cluster.squeue()
    assert all(states.get(i) == "COMPLETED" for i in ids), (ids, states)


def test_outputs_equal_local_runs(slurm_cluster: Cluster, slurm_run, tmp_path) -> None:
    """The same jobs on this machine: data, renders and the tiny SD are bit-identical; stage 1, run from
    the SLURM run's inputs with the same command and threads, follows the same loss trajectory to
    float tolerance (not bitwise: the SLURM job's last bits differ, and Adam carries such differences
    into the weights)."""
    work, _, _ = slurm_run
    local = tmp_path / "local"
    shutil.copytree(work, local, ignore=lambda d, names: ["runs", "data", "models"] if Path(d) == work else [])
    proc = snakemake(local, slurm_cluster.env, "runs/pretrain/stage1", "--cores", "2", timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    for folder in ("data/synthetic", "data/renders", "models/sd-tiny"):
        files = sorted(p.relative_to(work) for p in (work / folder).rglob("*") if p.is_file())
        assert files and files == sorted(p.relative_to(local) for p in (local / folder).rglob("*") if p.is_file())
        exact = [f for f in files if f.name != TRAINING_REPORT]
        assert all((work / f).read_bytes() == (local / f).read_bytes() for f in exact), folder
    # the tiny SD's recorded losses are float sums whose last bits vary between runs (measured: the random VAE's
    # reconstruction 0.865851640701294 vs 0.8658517201741537, with bit-identical weights)
    reports = [json.loads((root / "models/sd-tiny" / TRAINING_REPORT).read_text()) for root in (work, local)]
    assert reports[0]["config"] == reports[1]["config"]
    values = [{k: v for k, v in r.items() if k != "config"} for r in reports]
    assert values[0] == pytest.approx(values[1], rel=1e-6)
    la, lb = (losses(root / "runs/pretrain/stage1") for root in (work, local))
    print(f"stage 1 losses: {la} (SLURM) vs {lb} (local)")
    assert la == pytest.approx(lb, rel=1e-3)


def losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines() if "loss" in line]


def test_a_failing_job_fails_the_workflow(slurm_cluster: Cluster, slurm_run, tmp_path) -> None:
    """A fine-tune from a corrupt checkpoint: the SLURM job fails, is submitted again once (``--retries 1``
    here; the profile retries 10 times, for the jobs a time limit stopped), fails again; Snakemake says so
    and exits non-zero."""
    work, _, _ = slurm_run
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    proc = snakemake(work, slurm_cluster.env, "runs/finetune/scan_objonly", *SLURM_FLAGS,
                     "--retries", "1", "--config", f"init={broken}", timeout=TIMEOUT)
    assert proc.returncode != 0
    ids = submitted(proc)
    assert len(ids) == 2 and all(slurm_cluster.squeue()[i] == "FAILED" for i in ids), proc.stderr[-3000:]
    assert "Error in rule finetune" in proc.stdout + proc.stderr
