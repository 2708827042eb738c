"""Launch helpers for the multi-process tests: ``accelerate launch`` with 2 CPU processes (gloo).

accelerate's ``--cpu`` launcher starts one process unless MPI is set up; its torchrun launcher
(``--multi_gpu``) starts N processes, and ``--device cpu`` (``Accelerator(cpu=True)``) makes them
a MULTI_CPU group on gloo. One thread per process: this is a 2-core machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def command(processes: int, *args: str) -> list[str]:
    """``args`` (a module run as ``-m``, or a script) under ``processes`` processes."""
    if processes == 1:
        return [sys.executable, *args]
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(free_port()), *args]


def launch(processes: int, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(command(processes, *args), cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def metrics_lines(run: Path) -> list[dict]:
    """The records of ``run/metrics.jsonl``; fails on a duplicated line."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(set(lines)), "duplicated metrics lines"
    return [json.loads(line) for line in lines]


def losses(run: Path) -> list[float]:
    return [r["loss"] for r in metrics_lines(run) if "loss" in r]
