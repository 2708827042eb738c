"""Procedural, parametric shapes: primitives sampled on their surface with normals, composed into classes.

A class is a :class:`Recipe` (a few primitive parts with nominal sizes, placements and part labels);
an instance perturbs every proportion and placement, rotates slightly about the up (y) axis, and adds
noise, so classes are learnable but not trivial. Classes of one *family* share a base recipe and differ
in proportions and one extra part. Everything is driven by a ``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

KINDS = ("box", "cylinder", "cone", "ellipsoid", "torus")


@dataclass(frozen=True)
class Part:
    """One primitive: ``kind``, half-extents ``size (3,)``, ``center (3,)``, Euler ``angles (3,)`` rad, ``label``."""

    kind: str
    size: tuple[float, float, float]
    center: tuple[float, float, float]
    angles: tuple[float, float, float]
    label: int = 0


@dataclass(frozen=True)
class Recipe:
    """A class template: its parts, in part-label order."""

    parts: tuple[Part, ...]


def _euler(angles: np.ndarray) -> np.ndarray:
    """Rotation ``Rz @ Ry @ Rx`` for ``angles (3,)`` → ``(3,3)``."""
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _canonical(kind: str, n: int, size: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` surface points of a primitive with half-extents ``size`` → ``(xyz (n,3), normals (n,3))``."""
    u = rng.random((n, 3))
    if kind == "box":
        areas = np.array([size[1] * size[2], size[0] * size[2], size[0] * size[1]]).repeat(2)
        face = rng.choice(6, size=n, p=areas / areas.sum())
        axis, sign = face // 2, np.where(face % 2 == 0, 1.0, -1.0)
        p = (u * 2 - 1) * size
        p[np.arange(n), axis] = sign * size[axis]
        nrm = np.zeros((n, 3))
        nrm[np.arange(n), axis] = sign
        return p, nrm
    if kind in ("cylinder", "cone"):
        theta = 2 * np.pi * u[:, 0]
        cap = u[:, 1] < (0.3 if kind == "cylinder" else 0.25)
        top = (u[:, 2] < 0.5) & (kind == "cylinder")
        y = np.where(cap, np.where(top, 1.0, -1.0), u[:, 2] * 2 - 1)
        radius = np.where(cap, np.sqrt(rng.random(n)), 1.0 if kind == "cylinder" else (1 - y) / 2)
        p = np.stack([radius * np.cos(theta), y, radius * np.sin(theta)], 1)
        side = np.stack([np.cos(theta), np.full(n, 0.0 if kind == "cylinder" else 0.5), np.sin(theta)], 1)
        nrm = np.where(cap[:, None], np.stack([np.zeros(n), y, np.zeros(n)], 1), side)
        return p * size, nrm / size
    if kind == "ellipsoid":
        d = rng.normal(size=(n, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        return d * size, d / size
    if kind == "torus":
        minor = 0.3
        theta = 2 * np.pi * u[:, 0]
        phi = 2 * np.pi * u[:, 1]
        ring = 1 - minor + minor * np.cos(phi)
        p = np.stack([ring * np.cos(theta), minor * np.sin(phi), ring * np.sin(theta)], 1)
        nrm = np.stack([np.cos(phi) * np.cos(theta), np.sin(phi), np.cos(phi) * np.sin(theta)], 1)
        return p * size, nrm / size
    raise ValueError(f"unknown primitive kind {kind!r}")


def _area(part: Part) -> float:
    """Rough surface area of a part, used to share points between parts."""
    a, b, c = part.size
    return float(4 * np.pi * ((a * b) ** 1.6 / 3 + (a * c) ** 1.6 / 3 + (b * c) ** 1.6 / 3) ** (1 / 1.6)) + 1e-6


def sample_recipe(recipe: Recipe, n_points: int, rng: np.random.Generator,
                  noise: float = 0.006) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Surface samples of one instance → ``(xyz (n,3) float32, normals (n,3) float32, labels (n,) int64)``."""
    parts = recipe.parts
    areas = np.array([_area(p) for p in parts])
    counts = rng.multinomial(n_points, areas / areas.sum())
    xyz, nrm, lab = [], [], []
    for part, count in zip(parts, counts):
        if count == 0:
            continue
        p, n = _canonical(part.kind, int(count), np.asarray(part.size), rng)
        rot = _euler(np.asarray(part.angles))
        xyz.append(p @ rot.T + np.asarray(part.center))
        nrm.append(n @ rot.T)
        lab.append(np.full(int(count), part.label, dtype=np.int64))
    points = np.concatenate(xyz) + rng.normal(scale=noise, size=(n_points, 3))
    normals = np.concatenate(nrm)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    order = rng.permutation(n_points)
    return points[order].astype(np.float32), normals[order].astype(np.float32), np.concatenate(lab)[order]


def random_part(rng: np.random.Generator, label: int, anchor: np.ndarray | None) -> Part:
    """A random primitive; attached near ``anchor``'s surface when given, else at the origin."""
    kind = KINDS[rng.integers(len(KINDS))]
    size = rng.uniform(0.08, 0.5, 3)
    if kind in ("cylinder", "cone", "torus"):
        size[2] = size[0]
    if anchor is None:
        center = np.zeros(3)
    else:
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        center = anchor + direction * rng.uniform(0.3, 0.7)
    angles = rng.choice([0.0, np.pi / 2], size=3) + rng.normal(scale=0.15, size=3)
    return Part(kind, tuple(size), tuple(center), tuple(angles), label)


def random_recipe(rng: np.random.Generator, labels: list[int]) -> Recipe:
    """A class template with one part per entry of ``labels``, each attached to an earlier part."""
    parts: list[Part] = []
    for label in labels:
        anchor = None if not parts else np.asarray(parts[rng.integers(len(parts))].center)
        parts.append(random_part(rng, label, anchor))
    return Recipe(tuple(parts))


def family_recipes(rng: np.random.Generator, n_classes: int, classes_per_family: int = 4) -> list[Recipe]:
    """``n_classes`` templates in families: a shared base, re-proportioned, plus one class-specific part."""
    recipes: list[Recipe] = []
    base = random_recipe(rng, [0, 0, 0])
    for c in range(n_classes):
        if c % classes_per_family == 0:
            base = random_recipe(rng, [0] * int(rng.integers(2, 4)))
        parts = [replace(p, size=tuple(np.asarray(p.size) * rng.uniform(0.7, 1.4, 3))) for p in base.parts]
        parts.append(random_part(rng, 0, np.asarray(parts[rng.integers(len(parts))].center)))
        recipes.append(Recipe(tuple(parts)))
    return recipes


def vary(recipe: Recipe, rng: np.random.Generator, amount: float = 1.0) -> Recipe:
    """One instance's template: sizes ×U(0.8,1.25), placements ±0.05, part angles ±0.1 rad."""
    parts = []
    for p in recipe.parts:
        size = np.asarray(p.size) * rng.uniform(0.8, 1.25, 3) ** amount
        if p.kind in ("cylinder", "cone", "torus"):
            size[2] = size[0]
        center = np.asarray(p.center) + rng.normal(scale=0.05 * amount, size=3)
        angles = np.asarray(p.angles) + rng.normal(scale=0.1 * amount, size=3)
        parts.append(Part(p.kind, tuple(size), tuple(center), tuple(angles), p.label))
    return Recipe(tuple(parts))


def instance(recipe: Recipe, n_points: int, rng: np.random.Generator,
             noise: float = 0.006) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A varied instance of ``recipe``, stretched ±10% per axis and turned ±0.25 rad about y.

    → ``(xyz (n,3) float32, unit normals (n,3) float32, part labels (n,) int64)``.
    """
    xyz, normals, labels = sample_recipe(vary(recipe, rng), n_points, rng, noise)
    linear = _euler(np.array([0.0, rng.uniform(-0.25, 0.25), 0.0])) * rng.uniform(0.9, 1.1, 3)
    normals = normals @ np.linalg.inv(linear)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    return (xyz @ linear.T).astype(np.float32), normals.astype(np.float32), labels
