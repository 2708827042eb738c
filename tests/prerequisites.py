"""What a test does when something it needs is missing: skip on a developer's machine, fail in CI.

``.ci/run`` sets ``CI=true`` (unless its caller set ``CI``); there a SLURM, multi-process or container test whose prerequisite is
missing (not root, slurm-wlm or podman absent, daemons that do not come up) fails, so a green CI run
proves that these tests ran.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    """Whether this is a CI run (``CI=true``, as .ci/run and the common CI services set it)."""
    return os.environ.get("CI", "").lower() == "true"


def missing_prerequisite(reason: str) -> None:
    """Skip the test with ``reason``, or under CI fail it with ``reason``."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: this test may not skip)", pytrace=False)
    pytest.skip(reason)
