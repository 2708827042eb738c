"""The project's source files a stage runs: the import closure of its ``pointsd`` command module.

A stage of workflow/stages.yaml names the CLI module of its command (``code: pointsd/cli/finetune.py``);
its code is that module, ``pointsd/cli/__init__.py`` (the entry point every command runs through) and
every project module they import, transitively: ``import`` statements anywhere in a file (the CLI
imports its heavy modules inside handlers), package ``__init__`` files on the way, and module names
written as strings (``"pointsd.ops.cpu"``: the ops backends are imported by name). Only files of this
repository count (``pointsd/`` and ``kernels/pointsd_kernels/``); third-party code is the lock's.

Read with :mod:`ast`, without importing anything: the Snakefile and ``make dvc.yaml`` call it before
the package need be importable.
"""

from __future__ import annotations

import ast
import hashlib
import re
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"pointsd": Path("pointsd"), "pointsd_kernels": Path("kernels") / "pointsd_kernels"}
COMMON_ENTRY = "pointsd/cli/__init__.py"
MODULE_NAME = re.compile(r"^(?:pointsd|pointsd_kernels)(?:\.[A-Za-z_]\w*)*$")


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """``pointsd.train.loop`` → ``pointsd/train/loop.py`` (or a package's ``__init__.py``), relative to
    ``root``; None for a name outside this repository or with no file."""
    top, *rest = name.split(".")
    if top not in PACKAGES:
        return None
    base = PACKAGES[top].joinpath(*rest)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if (root / candidate).is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    """``pointsd/train/loop.py`` → ``pointsd.train.loop`` (a package's ``__init__.py`` → the package)."""
    for top, folder in PACKAGES.items():
        if path.is_relative_to(folder):
            parts = [top, *path.relative_to(folder).with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise ValueError(f"{path} is not in {', '.join(map(str, PACKAGES.values()))}")


def imported_names(path: Path, root: Path = ROOT) -> set[str]:
    """Every module name ``path`` may import: ``import a.b``, ``from a import b`` (``a`` and ``a.b``),
    relative imports resolved, and string constants that are project module names."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse((root / path).read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_NAME.match(node.value):
            names.add(node.value)
    return names


def _with_parents(name: str) -> list[str]:
    """``a.b.c`` → ``[a, a.b, a.b.c]``: importing a module runs its packages' ``__init__`` first."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@lru_cache(maxsize=None)
def closure(entry: str, root: Path = ROOT) -> tuple[str, ...]:
    """The sorted repository-relative files that run when command module ``entry`` runs."""
    todo = [Path(COMMON_ENTRY), Path(entry)]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        if not (root / path).is_file():
            raise FileNotFoundError(f"workflow/stages.yaml: code {path} does not exist")
        seen.add(path)
        for name in imported_names(path, root):
            todo += [f for f in map(lambda n: module_file(n, root), _with_parents(name)) if f is not None]
    return tuple(sorted(p.as_posix() for p in seen))


def fingerprint(files: tuple[str, ...], root: Path = ROOT) -> str:
    """A short content hash of ``files`` (paths and bytes): what Snakemake compares between runs."""
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]
