"""A pre-training stage longer than its SLURM time limit completes through workflow/profiles/slurm: each
job is sent SIGTERM before its limit (``--signal``), the command saves its state beside its output and
exits 75, Snakemake submits the job again (the profile's ``retries``) and it resumes, until the stage is
done; its checkpoint is then byte for byte the one of a run that was never stopped. Jobs are confined
by cgroups (memory and cores as asked).

The time limit is SLURM's minimum, 1 minute, with ``--signal=TERM@1`` (set on the command line: the one
deliberate departure from the profile). slurmctld looks at time limits every 30 s and sends the signal
as soon as the limit is less than the asked lead *plus those 30 s* away, so a job is signalled 30-60 s
after it starts (with a lead of 30 s it was signalled 0-30 s after starting, while pointsd was still
loading, which then ended it); the limit ends it 60-90 s after it started (KillWait 10 s). The stage
is given 60 epochs of 8 steps, more than a 1-minute job can do (the uninterrupted run's job is timed and
must take over 2 minutes: on the fastest 2-core machine we had 15 epochs took 72 s and 40 epochs 110 s,
start-up and a probe per epoch included), so `--retries 30` (also on the command line: a 1-minute limit
needs more resubmissions than the profile's day-long ones). At 60 epochs, an AMD EPYC 2-core machine ran
the uninterrupted job in 167 s and the limited run in 4 jobs, 302 s (80 epochs: 229 s; 6 jobs, 384 s).
At 80 epochs, a machine about 3× slower per job
needed 13 one-minute jobs and 23 minutes for the limited run, hence the timeouts: 15 minutes for the
uninterrupted run, 30 for the limited one, 50 for the test (a job that never ends fails the test, not CI).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import SLURM_FLAGS, Cluster, snakemake, submitted

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(3000)]
STAGE1 = "runs/pretrain/stage1"
TIME_LIMITED = ["--set-resources", "pretrain_stage1:runtime=1", "pretrain_stage1:slurm_extra='--signal=TERM@1'",
                "--retries", "30"]
EPOCHS = 60


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, cluster_checkout, slurm_cluster: Cluster) -> Path:
    """A checkout whose pre-training runs EPOCHS epochs, with the stage's inputs built locally. The tiny SD
    is left untrained (0 steps): stage 1 costs the same on it, and its training is minutes of this test."""
    work = cluster_checkout(tmp_path_factory.mktemp("inputs"))
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["pretrain"]["epochs"] = EPOCHS
    params["sd"]["train"].update(vae_steps=0, unet_steps=0)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = snakemake(work, slurm_cluster.env, "models/sd-tiny", "data/renders", "data/synthetic", "--cores", "2",
                     timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work


def copy_of(inputs: Path, dest: Path) -> Path:
    shutil.copytree(inputs, dest, ignore=shutil.ignore_patterns(".snakemake", "logs"))
    return dest


def test_time_limited_pretraining_resumes_until_done(slurm_cluster: Cluster, inputs, tmp_path):
    whole = copy_of(inputs, tmp_path / "whole")
    started = time.monotonic()
    proc = snakemake(whole, slurm_cluster.env, STAGE1, *SLURM_FLAGS, timeout=900)
    work = time.monotonic() - started
    assert proc.returncode == 0 and len(submitted(proc)) == 1, proc.stderr[-3000:]

    limited = copy_of(inputs, tmp_path / "limited")
    started = time.monotonic()
    proc = snakemake(limited, slurm_cluster.env, STAGE1, *SLURM_FLAGS, *TIME_LIMITED, timeout=1800)
    wall = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    jobs = submitted(proc)
    logs = limited / ".snakemake" / "slurm_logs" / "rule_pretrain_stage1"
    log = "".join((logs / f"{job}.log").read_text() for job in jobs)  # the command's output: workflow/launch.py
    stops = re.findall(r"stopped by SIGTERM after step (\d+)", log)
    resumes = re.findall(r"resumed from .*: epoch \d+, step (\d+)", log)
    print(f"stage 1 uninterrupted: one job, {work:.0f} s; limited to 1 minute: {len(jobs)} SLURM jobs, "
          f"stopped after steps {stops}, resumed at steps {resumes}, {wall:.0f} s")
    assert work > 120 and len(jobs) >= 2 and len(stops) >= 1 and set(stops) <= set(resumes)
    states = slurm_cluster.squeue()
    assert all(states[j] in ("FAILED", "TIMEOUT") for j in jobs[:-1]) and states[jobs[-1]] == "COMPLETED"
    assert not list(limited.glob("runs/pretrain/.stage1.partial-*"))  # the resume state went with the run

    files = sorted(p.relative_to(whole) for p in (whole / STAGE1).rglob("*") if p.is_file() and p.suffix != ".json")
    assert any(f.name == "ckpt-stage1.pt" for f in files)
    differ = [f for f in files if (limited / f).read_bytes() != (whole / f).read_bytes()]
    # The last resume state holds the same values; torch.save may lay out a resumed run's storages otherwise.
    assert differ in ([], [Path(STAGE1) / "state" / "last.pt"])
    assert same(*(torch.load(root / STAGE1 / "state" / "last.pt", weights_only=True) for root in (limited, whole)))


def same(a, b) -> bool:
    """Whether two loaded checkpoints hold equal values (tensors bit for bit)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


def test_jobs_are_confined_by_cgroups(slurm_cluster: Cluster):
    """A job asking for 1 CPU and 300 MB runs on one CPU, under a memory cgroup of 300 MB (SLURM limits the job's
    and step's cgroups; the task's, below them, is unlimited: the smallest limit above the task counts)."""
    script = ("nproc; p=$(grep -oP '(?<=:memory:).*' /proc/self/cgroup); "
              "while [ -n \"$p\" ]; do cat /sys/fs/cgroup/memory$p/memory.limit_in_bytes; p=${p%/*}; done")
    out = subprocess.run(["srun", "--partition", slurm_cluster.partition, "--cpus-per-task", "1", "--mem", "300",
                          "sh", "-c", script], env=slurm_cluster.env, capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    cpus, *limits = map(int, out.stdout.split())
    assert cpus == 1 and min(limits) == 300 * 2**20, out.stdout
