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


def _python_at_root(code: str, **env: str) -> subprocess.CompletedProcess:
    """``python -c CODE`` from the repository root, which puts the root first on ``sys.path``."""
    import os
    import sys

    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_kernels_folder_is_not_a_top_level_package(tmp_path):
    """The root's kernels/ folder must not shadow another top-level ``kernels`` (Hugging Face's, which
    transformers 5 installs and diffusers imports): a stand-in regular package later on the path wins."""
    stand_in = tmp_path / "kernels"
    stand_in.mkdir()
    (stand_in / "__init__.py").write_text("WHO = 'stand-in'\n")
    proc = _python_at_root("import kernels; print(kernels.WHO)", PYTHONPATH=str(tmp_path))
    assert proc.returncode == 0 and proc.stdout.strip() == "stand-in", proc.stderr
    for module in ("fps", "knn", "chamfer", "interpolate", "_launch"):
        proc = _python_at_root(f"import kernels.{module}")
        assert proc.returncode != 0, f"kernels.{module} is importable from the repository root"


def test_hugging_face_kernels_and_diffusers_import_from_the_root():
    """With Hugging Face's ``kernels`` installed (the lock installs it: transformers 5 needs it), code run
    from the root gets that package, and diffusers imports beside our kernels."""
    proc = _python_at_root(
        "import importlib.metadata as md, kernels, diffusers, pointsd_kernels; "
        "print(md.version('kernels'), kernels.__file__, pointsd_kernels.__file__)")
    assert proc.returncode == 0, proc.stderr
    _version, hub_file, ours = proc.stdout.split()
    assert not Path(hub_file).is_relative_to(ROOT), hub_file
    assert Path(ours).is_relative_to(ROOT / "kernels" / "pointsd_kernels") or "site-packages" in ours, ours
