"""Print the project's requirements (dependencies + the given extras) from pyproject.toml.

The image installs these in a layer before the code is copied, so a code change does not reinstall
torch and the other dependencies:  python project_requirements.py pyproject.toml gpu,pipeline
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    """The dependencies plus those of ``extras``, self-references (``name[a,b]``) expanded."""
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    self_ref = re.compile(rf"^{re.escape(project['name'])}\[(.+)\]$")
    out: list[str] = list(project.get("dependencies", []))
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop(0)
        if extra in seen:
            continue
        seen.add(extra)
        if extra not in optional:
            raise SystemExit(f"{pyproject}: no optional-dependencies entry {extra!r}")
        for req in optional[extra]:
            match = self_ref.match(req.replace(" ", ""))
            if match:
                todo.extend(match.group(1).split(","))
            elif req not in out:
                out.append(req)
    return out


if __name__ == "__main__":
    extras = [e for e in sys.argv[2].split(",") if e] if len(sys.argv) > 2 else []
    print("\n".join(requirements(Path(sys.argv[1]), extras)))
