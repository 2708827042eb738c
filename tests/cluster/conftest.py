"""A one-node SLURM cluster for the tests: munged, slurmctld and slurmd started directly (no systemd)
from a slurm.conf generated for this host in a temporary folder, stopped by PID at the end.

It looks like the site workflow/profiles/slurm expects: its partition is the profile's (``gpu``), its node
offers 2 GPUs (stand-in device files: jobs asking for one are scheduled; the training runs on the CPU),
and jobs are confined by cgroups (v1: proctrack/cgroup, task/cgroup constrain cores and memory; the
cgroup v1 hierarchies of this container are writable). KillWait=10 s (SIGTERM → SIGKILL at a time
limit), OverTimeLimit=0; slurmctld checks time limits and ``--signal`` every 30 s, so a job with
``--time=1`` is signalled between 30 and 60 s before its limit and ends within about 90 s.

SLURM commands find the cluster through ``SLURM_CONF``. snakemake-executor-plugin-slurm-jobstep
drops every ``SLURM_*`` variable but the job's identity before its nested ``srun``, so inside a job
``srun`` would look for /etc/slurm/slurm.conf (a real site has it; this cluster must not touch it):
an ``srun`` shim first on the PATH sets ``SLURM_CONF`` again.

Skipped, with the reason, where it cannot run: not root, slurm-wlm / munge not installed (``.ci/run``
installs them with apt), or the daemons do not come up; with ``CI=true`` each of these fails the test
instead (tests/prerequisites.py).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.prerequisites import missing_prerequisite

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "sinfo", "scancel")
PARTITION = "gpu"  # workflow/profiles/slurm's slurm_partition
GPUS = 2
# The site profile and the test cluster's overlay (tests/cluster/profile): nothing else.
SLURM_FLAGS = ["--profile", "workflow/profiles/slurm", "--workflow-profile", "tests/cluster/profile"]


def snakemake(cwd: Path, env: dict[str, str], target: str, *args: str, timeout: int) -> subprocess.CompletedProcess:
    """``snakemake TARGET ARGS`` (the target first: list-valued flags would swallow it), killed after ``timeout`` s."""
    return subprocess.run(["snakemake", target, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def submitted(proc: subprocess.CompletedProcess) -> list[str]:
    """The SLURM job ids a Snakemake run submitted, in order."""
    return re.findall(r"has been submitted with SLURM jobid (\d+)", proc.stdout + proc.stderr)


@dataclass
class Cluster:
    """The running cluster: its folder, the environment that points SLURM commands at it, the partition."""

    root: Path
    env: dict[str, str]
    partition: str = PARTITION

    def squeue(self) -> dict[str, str]:
        """``{job id: state}`` of every job slurmctld still remembers (MinJobAge keeps finished ones an hour:
        the time-limited run spanned 25 minutes on a slow machine, and its first jobs must still answer)."""
        out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i %T"], env=self.env, capture_output=True,
                             text=True, check=True).stdout
        return dict(line.split() for line in out.splitlines())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _slurm_conf(root: Path, host: str) -> str:
    """slurm.conf for one node ``host`` with this machine's CPUs and memory and GPUS counted GPUs; no accounting."""
    mem_mb = int(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 * 0.9)
    return "\n".join([
        "ClusterName=pointsdtest", f"SlurmctldHost={host}(127.0.0.1)", "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={root}/munge.sock",
        f"StateSaveLocation={root}/state", f"SlurmdSpoolDir={root}/spool",
        f"SlurmctldPidFile={root}/slurmctld.pid", f"SlurmdPidFile={root}/slurmd.pid",
        f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
        "ProctrackType=proctrack/cgroup", "TaskPlugin=task/cgroup", "MpiDefault=none", "GresTypes=gpu",
        "KillWait=10", "OverTimeLimit=0",
        "SchedulerType=sched/backfill", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory",
        "AccountingStorageType=accounting_storage/none", "JobAcctGatherType=jobacct_gather/none",
        "JobCompType=jobcomp/none", "MinJobAge=3600", "ReturnToService=2",
        f"SlurmctldLogFile={root}/slurmctld.log", f"SlurmdLogFile={root}/slurmd.log",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={mem_mb} Gres=gpu:{GPUS} State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP", "",
    ])


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each daemon by PID (last started first), SIGKILL what is still there after 10 s."""
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_idle(env: dict[str, str], procs: list[subprocess.Popen], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and all(p.poll() is None for p in procs):
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, check=False).stdout
        if out.strip() == "idle":
            return True
        time.sleep(0.5)
    return False


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory) -> Iterator[Cluster]:
    if os.geteuid() != 0:
        missing_prerequisite("the one-node SLURM cluster needs root (slurmd runs jobs as their user)")
    missing = [d for d in DAEMONS if shutil.which(d) is None]
    if missing:
        missing_prerequisite(f"SLURM not installed ({', '.join(missing)} missing): apt-get install slurm-wlm munge")
    root = tmp_path_factory.mktemp("slurm")
    (root / "state").mkdir()
    (root / "spool").mkdir()
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True).stdout.strip()
    (root / "slurm.conf").write_text(_slurm_conf(root, host))
    (root / "dev").mkdir()
    for i in range(GPUS):  # stand-in device files (what /dev/null is): SLURM counts GPUs by their files
        os.mknod(root / "dev" / f"gpu{i}", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    (root / "gres.conf").write_text(f"NodeName={host} Name=gpu File={root}/dev/gpu[0-{GPUS - 1}]\n")
    (root / "cgroup.conf").write_text("CgroupPlugin=cgroup/v1\nCgroupMountpoint=/sys/fs/cgroup\n"
                                      "ConstrainCores=yes\nConstrainRAMSpace=yes\n")
    subprocess.run(["mungekey", "--create", f"--keyfile={root}/munge.key"], check=True, capture_output=True)
    shim = root / "bin" / "srun"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nSLURM_CONF={root}/slurm.conf exec {shutil.which("srun")} "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf"), "PATH": f"{shim.parent}:{os.environ['PATH']}"}
    log = open(root / "daemons.out", "w")  # noqa: SIM115 - open for the daemons' lifetime
    commands = [
        ["munged", "--foreground", "--force", f"--socket={root}/munge.sock", f"--key-file={root}/munge.key",
         f"--log-file={root}/munged.log", f"--pid-file={root}/munged.pid", f"--seed-file={root}/munged.seed"],
        ["slurmctld", "-D", "-i", "-f", str(root / "slurm.conf")],
        ["slurmd", "-D", "-N", host, "-f", str(root / "slurm.conf")],
    ]
    procs: list[subprocess.Popen] = []
    try:
        for cmd in commands:
            procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
            time.sleep(0.5)
        if not _wait_idle(env, procs):
            missing_prerequisite("the SLURM daemons did not come up: " + (root / "daemons.out").read_text()[-500:])
        yield Cluster(root, env)
    finally:
        subprocess.run(["scancel", "--partition", PARTITION], env=env, capture_output=True, check=False)
        _stop(procs)
        log.close()


@pytest.fixture(scope="session")
def cluster_checkout(copy_checkout) -> Callable[[Path], Path]:
    """``cluster_checkout(dest)``: the checkout (``copy_checkout``) with a tiny SD that trains 5 + 5 steps.
    These tests check jobs, signals and outputs, not what the teacher learns (tests/e2e does), and its
    minutes of training would be paid by each SLURM run and each local comparison."""

    def copy(dest: Path) -> Path:
        work = copy_checkout(dest)
        params = yaml.safe_load((work / "params.yaml").read_text())
        params["sd"]["train"].update(vae_steps=5, unet_steps=5)
        (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        return work

    return copy
