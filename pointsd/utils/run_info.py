"""Run metadata written into every metrics file: profile, protocol, seed, device, commit."""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import random
import subprocess
from pathlib import Path
from typing import Any


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch (all devices) once per run."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@functools.cache
def git_commit(start: str | os.PathLike | None = None) -> str:
    """The git commit of the project (``+dirty`` when the tree has changes), or ``unknown``.

    Read once per process (cached), so a long run records the code it started with even when the
    checkout moves on meanwhile; the CLI reads it before dispatching a command.
    """
    cwd = Path(start) if start else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("POINTSD_COMMIT", "unknown")
    return sha + ("+dirty" if dirty else "")


def device_name(device: Any = None) -> str:
    """A human-readable name for the device a run used (GPU model or CPU)."""
    import torch

    dev = torch.device(device) if device is not None else None
    if dev is not None and dev.type == "cuda" and torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name(dev)}"
    return f"cpu:{platform.processor() or platform.machine()} x{os.cpu_count()}"


def run_metadata(*, profile: str, protocol: str, seed: int, device: Any = None, **extra: Any) -> dict[str, Any]:
    """The header every metrics JSON carries."""
    import torch

    meta = {
        "profile": profile,
        "protocol": protocol,
        "seed": seed,
        "device": device_name(device),
        "commit": git_commit(),
        "torch": torch.__version__,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    meta.update(extra)
    return meta
