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


def snakemake_jobs(*extra: str, cwd: Path = ROOT) -> dict[str, dict]:
    """Every job of the full DAG (dry run, forced): ``{first output: {"rule", "outputs", "cmd"}}``."""
    proc = subprocess.run(
        ["snakemake", "-n", "-p", "--forceall", "--cores", "1", *extra],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs, current = {}, None
    for line in proc.stdout.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line):
            current = {"rule": m.group(1), "outputs": [], "cmd": None}
        elif current and (m := re.match(r"^\s+output: (.*)$", line)):
            current["outputs"] = [p.strip() for p in m.group(1).split(",")]
        elif current and current["outputs"] and line.startswith("Shell command: "):
            current["cmd"] = " ".join(LOG_REDIRECT.sub("", line[len("Shell command: "):]).split())
            jobs[current["outputs"][0]] = current
            current = None
    return jobs


def dvc_stages(cwd: Path = ROOT) -> dict[str, dict]:
    """Every stage of dvc.yaml, resolved: ``{first out: {"name", "outputs", "cmd"}}``."""
    from dvc.repo import Repo

    with Repo(str(cwd)) as repo:
        stages = {}
        for stage in repo.index.stages:
            outs = [str(Path(o.fs_path).relative_to(cwd)) for o in stage.outs]
            stages[outs[0]] = {"name": stage.addressing, "outputs": outs, "cmd": " ".join(stage.cmd.split())}
        return stages


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
