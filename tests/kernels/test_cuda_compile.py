"""The Triton kernels compile for a real GPU (sm_90 cubin, no GPU needed) without FMA contraction.

The interpreter tests check results; this checks what the interpreter cannot: that Triton's
compiler accepts the kernels, including launch-time specialisations, on the CUDA backend.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("cuda_compile_check.py")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton.backends.nvidia") is None,
                                reason="triton's CUDA backend is not installed")


def _run(*flags: str) -> list[str]:
    done = subprocess.run([sys.executable, str(SCRIPT), *flags], check=False, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith("ok ")]


def test_kernels_compile_for_sm90():
    assert len(_run()) == 7


@pytest.mark.slow
def test_kernels_compile_with_every_int_argument_specialised_to_one():
    assert len(_run("--all")) == 26
