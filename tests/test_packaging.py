"""Packaging: every package folder is listed in pyproject, and the console script works."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(tool["packages"])
    mapping = tool["package-dir"]
    found = set()
    for name, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    missing = found - listed
    assert not missing, f"package folders not in pyproject [tool.setuptools] packages: {sorted(missing)}"
    assert listed <= found, f"listed but no such folder: {sorted(listed - found)}"


def test_console_script_runs():
    exe = shutil.which("pointsd")
    assert exe, "the `pointsd` console script is not installed"
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "report" in proc.stdout
    proc = subprocess.run([exe, "report", "table", "--metrics", "/nonexistent.json", "--out", "x.md"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "/nonexistent.json" in proc.stderr
