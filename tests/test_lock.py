"""The locks (requirements/*.lock, `make lock`): consistent with pyproject.toml, with each other, and
with this environment, which `make install` built from requirements/dev.lock."""

from __future__ import annotations

import importlib.metadata as md
import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCKS = {"dev.lock": ["dev"], "cpu.lock": ["pipeline"], "cuda.lock": ["pipeline"]}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")
TORCH = Version(next(line.split("==")[1] for line in (ROOT / "constraints.txt").read_text().splitlines()
                     if line.startswith("torch==")))


def read_lock(name: str) -> dict[str, Version]:
    """``{canonical name: pinned version}``; every requirement line must be an exact pin."""
    pins = {}
    for line in (ROOT / "requirements" / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"requirements/{name}: not an exact pin: {line!r}"
        pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


def project_requirements(extras: list[str]) -> list[Requirement]:
    """pyproject's dependencies plus those of ``extras``, self-references (``pointsd[a,b]``) expanded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out, todo, seen = [Requirement(r) for r in project["dependencies"]], list(extras), set()
    while todo:
        extra = todo.pop()
        seen.add(extra)
        for req in map(Requirement, project["optional-dependencies"][extra]):
            if canonicalize_name(req.name) == "pointsd":
                todo += [e for e in req.extras if e not in seen]
            else:
                out.append(req)
    return out


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_lock_pins_every_project_requirement_within_its_range(lock):
    pins = read_lock(lock)
    assert "torch" not in pins, "torch's version is constraints.txt's, installed before the lock"
    for req in project_requirements(LOCKS[lock]):
        name = canonicalize_name(req.name)
        if name == "torch":
            assert req.specifier.contains(TORCH), f"constraints.txt's torch {TORCH} is not in {req}"
            continue
        assert name in pins, f"requirements/{lock} lacks {req.name} (pyproject.toml); run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), f"{lock}: {name}=={pins[name]} not in {req}"


def test_a_package_has_one_version_in_every_lock():
    locks = {name: read_lock(name) for name in LOCKS}
    for a in locks:
        for b in locks:
            clash = {n: (locks[a][n], locks[b][n]) for n in set(locks[a]) & set(locks[b]) if locks[a][n] != locks[b][n]}
            assert not clash, f"{a} vs {b}: {clash}"
    assert set(locks["cpu.lock"]) <= set(locks["dev.lock"]) and set(locks["cpu.lock"]) <= set(locks["cuda.lock"])


def test_environment_is_the_dev_lock_and_the_lock_is_closed():
    """Every dev.lock package is installed at its pinned version, and what each one requires (its
    metadata, markers evaluated here) is in the lock, or torch, at a version that satisfies it."""
    pins = read_lock("dev.lock")
    env = default_environment()
    for name, version in pins.items():
        installed = Version(md.version(name))
        assert installed == version, f"{name} {installed} installed, dev.lock says {version}: run `make install`"
        for text in md.requires(name) or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
                continue
            dep = canonicalize_name(req.name)
            if dep == "torch":
                continue
            assert dep in pins, f"{name} requires {req}, which dev.lock does not hold"
            assert req.specifier.contains(pins[dep], prereleases=True), f"{name} requires {req}; dev.lock: {pins[dep]}"
