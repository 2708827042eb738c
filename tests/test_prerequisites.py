"""A SLURM, multi-process or container test whose prerequisite is missing skips on a laptop, fails in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.prerequisites import missing_prerequisite

ROOT = Path(__file__).resolve().parents[1]


def test_a_missing_prerequisite_skips_locally_and_fails_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"slurm-wlm missing \(CI=true: this test may not skip\)"):
        missing_prerequisite("slurm-wlm missing")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="slurm-wlm missing"):
        missing_prerequisite("slurm-wlm missing")


def test_ci_entry_point_runs_strict_unless_told_otherwise():
    """``.ci/run`` sets CI=true when its caller did not: the project's CI cannot pass on skipped tests."""
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert 'export CI="${CI:-true}"' in lines and lines.index('export CI="${CI:-true}"') < lines.index("make test")
