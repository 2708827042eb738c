"""Session-wide test settings, applied before any test module imports the package, and the fixtures
that tests in several folders share.

Without a GPU the Triton kernels can only run in Triton's CPU interpreter, and ``TRITON_INTERPRET``
is read when a kernel is decorated: it is set here, before anything imports ``pointsd_kernels``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from pointsd.data.synth import sizes_for, synthesize  # noqa: E402 - after TRITON_INTERPRET is set

MICRO = dict(shapenet_synsets=3, shapenet_train=3, shapenet_test=2, shapenet_points=512,
             modelnet_train_per_class=2, modelnet_test_per_class=1, modelnet_points=96,
             fewshot_points=64, fewshot_test_per_class=3, fewshot_folds=2,
             scan_train_per_class=2, scan_test_per_class=1, scan_points=128, scan_hardest_copies=1,
             part_train_per_category=1, part_val_per_category=1, part_test_per_category=1, part_points=128)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One very small synthetic data root (every SPEC §5 format) per test session."""
    root = tmp_path_factory.mktemp("synth")
    synthesize(root, sizes_for("tiny", **MICRO), seed=3)
    return root


ROOT = Path(__file__).resolve().parents[1]


def _copy_checkout(dest: Path) -> Path:
    """Copy the checkout's tracked and untracked-not-ignored files into ``dest`` (no outputs, no .git)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for rel in files:
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest


@pytest.fixture(scope="session")
def copy_checkout() -> Callable[[Path], Path]:
    """``copy_checkout(dest)``: the repository as a user's clone has it, for tests that run the DAG."""
    return _copy_checkout


class StepClock:
    """A ``time`` stand-in for timed code: each ``(start, stop)`` pair of ``perf_counter`` calls measures the
    next of ``seconds`` (cyclically), so a benchmark's numbers can be checked against values worked out by hand."""

    def __init__(self, seconds: list[float]) -> None:
        self.durations = itertools.cycle(seconds)
        self.now, self.running = 0.0, False

    def perf_counter(self) -> float:
        if self.running:
            self.now += next(self.durations)
        self.running = not self.running
        return self.now


@pytest.fixture
def step_clock() -> type[StepClock]:
    """:class:`StepClock`, to monkeypatch over a module's ``time``."""
    return StepClock
