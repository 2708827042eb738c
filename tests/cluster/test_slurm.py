"""The embedded-default DAG from data to one fine-tune through ``workflow/profiles/slurm`` on a real
(one-node) SLURM cluster: every job goes through sbatch, the outputs equal a local run's (data bitwise,
stage 1 to float tolerance), a failing job fails the workflow.

What the local cluster cannot offer is overridden on the command line, never in the profile: the
partition, no account, no GPU gres (``gpu=0``), memory and threads that fit this node, and status
polling with squeue every 2 s (the profile's sacct needs accounting, which this cluster has not).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import Cluster

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slurm, pytest.mark.timeout(1500)]
TARGET = "runs/finetune/scan_objbg"
SLICE = {"data_synth", "render", "sd_tiny", "pretrain_stage1", "pretrain_stage2", "finetune"}
TRAINING = ("pretrain_stage1", "pretrain_stage2", "finetune")
THREADS = [f"{rule}=1" for rule in SLICE]


def slurm_flags(cluster: Cluster) -> list[str]:
    return [
        "--profile", "workflow/profiles/slurm", "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "2",
        "--slurm-no-account", "--slurm-keep-successful-logs", "--latency-wait", "5",
        "--default-resources", f"slurm_partition={cluster.partition}", "mem_mb=1000", "runtime=30",
        "--set-resources", *[f"{rule}:{key}" for rule in TRAINING for key in ("gpu=0", "mem_mb=2000")],
        "--set-threads", *THREADS,
    ]


def copy_checkout(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for rel in files:
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)


def snakemake(cwd: Path, env: dict[str, str], target: str, *args: str) -> subprocess.CompletedProcess:
    """``snakemake TARGET ARGS`` (the target first: list-valued flags would swallow it)."""
    return subprocess.run(["snakemake", target, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=1200, check=False)


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster: Cluster, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, float]:
    work = tmp_path_factory.mktemp("slurm-run")
    copy_checkout(work)
    started = time.monotonic()
    proc = snakemake(work, slurm_cluster.env, TARGET, *slurm_flags(slurm_cluster))
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    print(f"SLURM slice ({', '.join(sorted(SLICE))}): {elapsed:.0f} s")
    return work, proc, elapsed


def test_every_job_went_through_sbatch(slurm_cluster: Cluster, slurm_run) -> None:
    """One SLURM job per rule of the slice: its id in Snakemake's output, its log under
    .snakemake/slurm_logs/rule_<rule>/[<wildcards>/]<id>.log, COMPLETED in squeue."""
    work, proc, _ = slurm_run
    ids = re.findall(r"has been submitted with SLURM jobid (\d+)", proc.stdout + proc.stderr)
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
    proc = snakemake(local, slurm_cluster.env, "runs/pretrain/stage1", "--cores", "2", "--set-threads", *THREADS)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    for folder in ("data/synthetic", "data/renders", "models/sd-tiny"):
        files = sorted(p.relative_to(work) for p in (work / folder).rglob("*") if p.is_file())
        assert files and files == sorted(p.relative_to(local) for p in (local / folder).rglob("*") if p.is_file())
        assert all((work / f).read_bytes() == (local / f).read_bytes() for f in files), folder
    la, lb = (losses(root / "runs/pretrain/stage1") for root in (work, local))
    print(f"stage 1 losses: {la} (SLURM) vs {lb} (local)")
    assert la == pytest.approx(lb, rel=1e-3)


def losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines() if "loss" in line]


def test_a_failing_job_fails_the_workflow(slurm_cluster: Cluster, slurm_run, tmp_path) -> None:
    """A fine-tune from a corrupt checkpoint: the SLURM job fails, Snakemake says so and exits non-zero."""
    work, _, _ = slurm_run
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    proc = snakemake(work, slurm_cluster.env, "runs/finetune/scan_objonly", *slurm_flags(slurm_cluster),
                     "--config", f"init={broken}")
    assert proc.returncode != 0
    ids = re.findall(r"has been submitted with SLURM jobid (\d+)", proc.stdout + proc.stderr)
    assert len(ids) == 1 and slurm_cluster.squeue()[ids[0]] == "FAILED", proc.stderr[-3000:]
    assert "Error in rule finetune" in proc.stdout + proc.stderr
