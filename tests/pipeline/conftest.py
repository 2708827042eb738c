"""Helpers shared by the pipeline tests: the repository root and the two DAG descriptions."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "workflow"))

LOG_REDIRECT = re.compile(r"\s*>\s*logs/\S+\.log\s+2>&1\s*$")
LAUNCHER = re.compile(r"^python \S+/workflow/launch\.py --nodes \d+ --gpus \d+ -- ")  # what runs `pointsd ARGS`


def snakemake_jobs(*extra: str, cwd: Path = ROOT) -> dict[str, dict]:
    """Every job of the DAG for the target(s) in ``extra`` (default: all), forced dry run with enough
    cores that no rule's threads are scaled down: ``{min(outputs): {"rule", "outputs", "inputs", "cmd",
    "launch", "threads"}}`` (the dry run lists ``threads`` only above 1; ``cmd``: ``pointsd ARGS``, ``launch``:
    the command as the rule runs it, through workflow/launch.py for the training stages)."""
    proc = subprocess.run(["snakemake", "-n", "-p", "--forceall", "--cores", "64", *extra], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs, current = {}, None
    for line in proc.stdout.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line):
            current = {"rule": m.group(1), "outputs": [], "inputs": [], "cmd": None, "threads": 1}
        elif current and (m := re.match(r"^\s+(input|output): (.*)$", line)):
            current[m.group(1) + "s"] = [p.strip() for p in m.group(2).split(",")]
        elif current and (m := re.match(r"^\s+threads: (\d+)$", line)):
            current["threads"] = int(m.group(1))
        elif current and current["outputs"] and line.startswith("Shell command: "):
            current["launch"] = " ".join(LOG_REDIRECT.sub("", line[len("Shell command: "):]).split())
            current["cmd"] = LAUNCHER.sub("pointsd ", current["launch"])
            jobs[min(current["outputs"])] = current
            current = None
    return jobs


def is_code(path: str) -> bool:
    """A source file of this repository (a stage's code dependency, workflow/code_deps.py)."""
    return path.startswith(("pointsd/", "kernels/")) and path.endswith(".py")


def dvc_stages(cwd: Path = ROOT) -> dict[str, dict]:
    """Every stage of ``cwd``'s dvc.yaml, resolved by DVC: ``{min(outs): {"name", "outputs", "inputs", "code",
    "cmd", "threads"}}``, the command's ``OMP_NUM_THREADS=N`` prefix read into ``threads``, the stage's
    source files (which Snakemake tracks as a rule param, not an input) apart in ``code``."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    if not (cwd / ".git").exists():  # a checkout copy: DVC wants a git work tree
        subprocess.run(["git", "init", "-q"], cwd=cwd, check=True)
    with Repo(str(cwd)) as repo:
        stages = {}
        for stage in repo.index.stages:
            outs = [o.def_path for o in stage.outs]
            threads, cmd = re.fullmatch(r"OMP_NUM_THREADS=(\d+) (.*)", " ".join(stage.cmd.split())).groups()
            deps = [d.def_path for d in stage.deps if not isinstance(d, ParamsDependency)]
            stages[min(outs)] = {"name": stage.addressing, "outputs": outs, "cmd": cmd, "threads": int(threads),
                                 "inputs": [d for d in deps if not is_code(d)], "code": [d for d in deps if is_code(d)]}
        return stages


def structure(jobs: dict[str, dict]) -> dict[str, tuple]:
    """The DAG as ``{job: (command, sorted outputs, upstream jobs, external inputs, threads)}``: an input
    is an edge to the job whose output holds it (a file inside a run folder, a run folder inside a parent)."""

    def within(a: str, b: str) -> bool:
        return a == b or a.startswith(b.rstrip("/") + "/")

    out = {}
    for key, job in jobs.items():
        upstream, external = set(), set()
        for path in job["inputs"]:
            producers = {k for k, other in jobs.items() for o in other["outputs"] if within(path, o) or within(o, path)}
            upstream |= producers
            external |= set() if producers else {path}
        out[key] = (job["cmd"], tuple(sorted(job["outputs"])), tuple(sorted(upstream)), tuple(sorted(external)),
                    job["threads"])
    return out


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
