"""The embedded-default DAG from data to one fine-tune through ``workflow/profiles/slurm`` on a real
(one-node) SLURM cluster: every job goes through sbatch, the training outputs equal a local run's, a
failing job fails the workflow.

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
import torch
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


def test_training_outputs_equal_a_local_run(slurm_cluster: Cluster, slurm_run, tmp_path) -> None:
    """The three training jobs again on this machine, from the SLURM run's data, renders and SD, with
    the same threads: checkpoints, metrics lines and test results are bit-identical."""
    work, _, _ = slurm_run
    local = tmp_path / "local"
    shutil.copytree(work, local, ignore=lambda d, names: ["runs"] if Path(d) == work else [])
    proc = snakemake(local, slurm_cluster.env, TARGET, "--cores", "2", "--set-threads", *THREADS)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert not re.search(r"rule (data_synth|render|sd_tiny):", proc.stdout + proc.stderr)
    for rel in ["runs/pretrain/stage1/ckpt-stage1.pt", "runs/pretrain/stage2/ckpt-stage2.pt", f"{TARGET}/best.pt"]:
        a, b = (torch.load(root / rel, map_location="cpu", weights_only=True) for root in (work, local))
        assert_same_tensors(a, b, rel)
    for rel in ["runs/pretrain/stage1/metrics.jsonl", "runs/pretrain/stage2/metrics.jsonl", f"{TARGET}/metrics.jsonl"]:
        assert (work / rel).read_text() == (local / rel).read_text(), rel
    a, b = (json.loads((root / TARGET / "metrics.json").read_text()) for root in (work, local))
    assert a["test"] == b["test"] and a["selected_epoch"] == b["selected_epoch"]


def assert_same_tensors(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_tensors(a[key], b[key], f"{where}:{key}")
    else:
        assert a == b, where


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
