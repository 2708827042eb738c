"""docker/project_requirements.py: the dependency list the image installs before the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11, as in the image
ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("project_requirements", ROOT / "docker" / "project_requirements.py")
project_requirements = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(project_requirements)


def test_extras_are_added_and_self_references_expanded():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    image = project_requirements.requirements(ROOT / "pyproject.toml", ["gpu", "pipeline"])
    assert image == [*project["dependencies"], *optional["gpu"], *optional["pipeline"]]
    dev = project_requirements.requirements(ROOT / "pyproject.toml", ["dev"])
    assert set(image) < set(dev) and not any(req.startswith("pointsd") for req in dev)


def test_an_unknown_extra_is_refused():
    with pytest.raises(SystemExit, match="cuda"):
        project_requirements.requirements(ROOT / "pyproject.toml", ["cuda"])
