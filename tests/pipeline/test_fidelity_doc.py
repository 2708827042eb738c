"""docs/FIDELITY.md: every test it names exists, so each "identical" row is backed by a real test."""

from __future__ import annotations

import re

from conftest import ROOT


def test_every_named_test_exists():
    text = (ROOT / "docs" / "FIDELITY.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| §")]
    assert len(rows) >= 20
    for row in rows:
        assert "`tests/" in row, f"row without a test: {row[:80]}"
    file = None
    for match in re.finditer(r"`(tests/[\w/]+\.py)?::(test_\w+)`", text):
        file = match.group(1) or file  # `::name` continues the file named before it
        source = (ROOT / file).read_text()
        assert re.search(rf"^def {match.group(2)}\(", source, re.MULTILINE), f"{file}::{match.group(2)} does not exist"
    assert "docs/FIDELITY.md" in (ROOT / "README.md").read_text()
