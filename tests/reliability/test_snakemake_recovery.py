"""kill -9 of a Snakemake run, then the README's recovery: ``snakemake --unlock`` once, the same command again.

The rerun of the incomplete output comes from the workflow profile ``profiles/default`` beside the
Snakefile (``rerun-incomplete``); without it (``--workflow-profile none``) Snakemake refuses.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import ROOT

TARGET = "data/synthetic"  # written into progressively: a kill leaves it half-written


def _cmd(*extra: str) -> list[str]:
    return ["snakemake", "--snakefile", str(ROOT / "Snakefile"), "--cores", "1", *extra]


def _snakemake(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(*extra), cwd=workdir, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_kill_9_then_unlock_and_the_same_command(tmp_path):
    if shutil.which("snakemake") is None:
        pytest.skip("snakemake is not installed")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    proc = subprocess.Popen(_cmd(TARGET), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while not (tmp_path / TARGET).exists():  # the job has started writing
        assert proc.poll() is None and time.monotonic() < deadline, "snakemake ended before the job started"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    half = sorted(p.relative_to(tmp_path) for p in (tmp_path / TARGET).rglob("*"))

    locked = _snakemake(tmp_path, TARGET)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    assert _snakemake(tmp_path, "--unlock").returncode == 0
    refused = _snakemake(tmp_path, "--workflow-profile", "none", TARGET)
    assert refused.returncode != 0 and "ncomplete" in refused.stdout + refused.stderr
    done = _snakemake(tmp_path, TARGET)
    assert done.returncode == 0, done.stderr[-2000:]
    whole = sorted(p.relative_to(tmp_path) for p in (tmp_path / TARGET).rglob("*"))
    assert len(whole) > len(half) and not [p for p in whole if p.name.endswith(".tmp")]
