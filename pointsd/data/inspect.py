"""``pointsd data inspect``: validate a dataset folder and count shapes per split and class.

Every format is read through its reader's own validation (files present, shapes, label ranges,
finite coordinates), so a folder that passes here loads in training.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from pointsd.data import fewshot, modelnet40, scanobjectnn, shapenet55, shapenetpart
from pointsd.data.labelled_h5 import read_labelled_h5, read_names
from pointsd.data.paths import dataset_dir
from pointsd.data.render import depth_name
from pointsd.errors import PointSDError


def _split_entry(labels: list[int] | np.ndarray, names: list[str] | None) -> dict[str, Any]:
    """``{"count": n, "per_class": {name: n}}`` for one split."""
    counts = Counter(int(l) for l in labels)
    key = (lambda l: names[l]) if names else str
    return {"count": int(len(labels)), "per_class": {key(l): counts[l] for l in sorted(counts)}}


def inspect_modelnet40(root: Path) -> dict[str, Any]:
    """Lists, class names, txt files present; every ``*_fps.dat`` cache validated."""
    folder = dataset_dir(root, modelnet40.MODELNET40)
    names = modelnet40._class_names(folder)
    splits: dict[str, Any] = {}
    for split in modelnet40.SPLITS:
        ids = modelnet40._split_ids(folder, split)
        for shape_id in ids:
            path = modelnet40.shape_path(folder, shape_id)
            if not path.is_file():
                raise PointSDError(f"{path}: listed in modelnet40_{split}.txt but missing")
        labels = [names.index(i.rsplit("_", 1)[0]) for i in ids]
        splits[split] = _split_entry(labels, names)
        caches = sorted(folder.glob(f"modelnet40_{split}_*pts_fps.dat"))
        for cache in caches:
            n = int(cache.name.split("_")[2].removesuffix("pts"))
            _, cache_labels = modelnet40.read_cache(cache, n, len(names))
            if len(cache_labels) != len(ids):
                raise PointSDError(f"{cache}: {len(cache_labels)} shapes but modelnet40_{split}.txt lists {len(ids)}")
        if not caches:
            modelnet40.read_txt_cloud(modelnet40.shape_path(folder, ids[0]))
        splits[split]["caches"] = [c.name for c in caches]
    return {"classes": len(names), "splits": splits}


def inspect_fewshot(root: Path) -> dict[str, Any]:
    """Every ``{w}way_{s}shot/{fold}.pkl`` present and valid."""
    splits: dict[str, Any] = {}
    for way, shot in fewshot.SETTINGS:
        for fold in range(fewshot.NUM_FOLDS):
            path = fewshot.fold_path(root, way, shot, fold)
            if not path.is_file():
                raise PointSDError(f"{path}: few-shot fold file is missing")
            for split in ("train", "test"):
                _, labels = fewshot.read_fold(path, way, split)
                splits[f"{way}way_{shot}shot/{fold}/{split}"] = _split_entry(labels, None)
    return {"splits": splits}


def inspect_scanobjectnn(root: Path) -> dict[str, Any]:
    """The three variants' train and test h5 files."""
    splits = {}
    for variant in scanobjectnn.VARIANT_FILES:
        for split in ("train", "test"):
            ds = scanobjectnn.ScanObjectNN(root, variant, split)
            splits[f"{variant}/{split}"] = _split_entry(ds.labels, None)
    return {"classes": scanobjectnn.NUM_CLASSES, "splits": splits}


def inspect_shapenet55(root: Path) -> dict[str, Any]:
    """Split lists; every listed ``.npy`` loaded and checked; counts per synset."""
    folder = shapenet55.npy_folder(root)
    splits = {}
    for split in ("train", "test"):
        ids = shapenet55.read_split(root, split)
        for shape_id in ids:
            shapenet55.load_cloud(folder / f"{shape_id}.npy")
        synsets = Counter(i.split("-")[0] for i in ids)
        splits[split] = {"count": len(ids), "per_class": dict(sorted(synsets.items()))}
    return {"splits": splits}


def inspect_shapenetpart(root: Path) -> dict[str, Any]:
    """Category file, split jsons, every listed file parsed with its part range checked."""
    splits = {}
    for split in shapenetpart.SPLITS:
        ds = shapenetpart.ShapeNetPart(root, split)
        for path, category in ds.items:
            shapenetpart.read_part_file(path, category)
        counts = Counter(category for _, category in ds.items)
        splits[split] = {"count": len(ds), "per_class": dict(sorted(counts.items()))}
    return {"classes": len(shapenetpart.SEG_CLASSES), "parts": shapenetpart.NUM_PARTS, "splits": splits}


def inspect_h5(root: Path) -> dict[str, Any]:
    """One labelled h5 file, or every ``*.h5`` in a folder (names from ``shape_names.txt`` beside them)."""
    files = [root] if root.is_file() else sorted(root.glob("*.h5"))
    if not files:
        raise PointSDError(f"{root}: no .h5 files")
    names_file = files[0].parent / "shape_names.txt"
    names = read_names(names_file) if names_file.is_file() else None
    splits = {}
    for path in files:
        data, labels = read_labelled_h5(path)
        if names is not None and labels.size and labels.max() >= len(names):
            raise PointSDError(f"{path}: label {int(labels.max())} out of range for {len(names)} names in {names_file}")
        splits[path.stem] = {**_split_entry(labels, names), "points": int(data.shape[1])}
    return {"classes": len(names) if names else None, "splits": splits}


def inspect_renders(root: Path) -> dict[str, Any]:
    """ULIP folders: views per shape counted; every RGBA view and depth map opened."""
    from pointsd.data.ulip_renders import render_folder

    folder = render_folder(root)
    shapes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not shapes:
        raise PointSDError(f"{folder}: no rendered shape folders")
    views = Counter()
    for shape in shapes:
        pngs = sorted(p for p in shape.glob(f"{shape.name}_r_*.png") if not p.name.endswith("_depth0001.png"))
        if not pngs:
            raise PointSDError(f"{shape}: no views named {shape.name}_r_NNN.png")
        for png in pngs:
            azimuth = int(png.stem.rsplit("_", 1)[1])
            for path in (png, shape / depth_name(shape.name, azimuth)):
                try:
                    with Image.open(path) as img:
                        img.verify()
                except (OSError, UnidentifiedImageError) as err:
                    raise PointSDError(f"{path}: not a readable PNG ({err})") from err
        views[len(pngs)] += 1
    sheets = sorted(p.name for p in folder.glob("contact_sheet_*.png"))
    return {"splits": {"all": {"count": len(shapes), "per_class": {}}},
            "views_per_shape": {str(k): v for k, v in sorted(views.items())}, "contact_sheets": sheets}


INSPECTORS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "modelnet40": inspect_modelnet40, "fewshot": inspect_fewshot, "scanobjectnn": inspect_scanobjectnn,
    "shapenet55": inspect_shapenet55, "shapenetpart": inspect_shapenetpart, "h5": inspect_h5,
    "renders": inspect_renders,
}


def inspect(fmt: str, path: str | os.PathLike) -> dict[str, Any]:
    """Validate the dataset at ``path`` in format ``fmt`` → report dict (``format``, ``path``, ``splits``, ...)."""
    if fmt not in INSPECTORS:
        raise PointSDError(f"unknown format {fmt!r} (choose from {sorted(INSPECTORS)})")
    path = Path(path)
    if not path.exists():
        raise PointSDError(f"{path}: does not exist")
    return {"format": fmt, "path": str(path), **INSPECTORS[fmt](path)}


def format_report(report: dict[str, Any]) -> str:
    """Human-readable lines: one per split with its count, then its per-class counts."""
    lines = [f"{report['format']} at {report['path']}: OK"]
    for split, entry in report["splits"].items():
        per_class = ", ".join(f"{k}={v}" for k, v in entry["per_class"].items())
        lines.append(f"  {split}: {entry['count']}" + (f"  [{per_class}]" if per_class else ""))
    for key in ("views_per_shape", "contact_sheets"):
        if key in report:
            lines.append(f"  {key}: {report[key]}")
    return "\n".join(lines)
