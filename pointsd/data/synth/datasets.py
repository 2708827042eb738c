"""Generate every synthetic dataset into the SPEC §5 tree, with the public file names and layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pointsd.data import paths
from pointsd.data.fewshot import SETTINGS
from pointsd.data.modelnet40 import build_cache
from pointsd.data.scanobjectnn import VARIANT_FILES
from pointsd.data.shapenetpart import SEG_CLASSES, SYNSETS
from pointsd.data.synth import shapes
from pointsd.data.synth import writers as w
from pointsd.data.synth.sizes import SynthSizes
from pointsd.utils import json_io

MODELNET40_CLASSES = (
    "airplane bathtub bed bench bookshelf bottle bowl car chair cone cup curtain desk door dresser "
    "flower_pot glass_box guitar keyboard lamp laptop mantel monitor night_stand person piano plant radio "
    "range_hood sink sofa stairs stool table tent toilet tv_stand vase wardrobe xbox").split()
SHAPENET55_SYNSETS = (
    ("02691156", "airplane"), ("02747177", "trash bin"), ("02773838", "bag"), ("02801938", "basket"),
    ("02808440", "bathtub"), ("02818832", "bed"), ("02828884", "bench"), ("02843684", "birdhouse"),
    ("02871439", "bookshelf"), ("02876657", "bottle"), ("02880940", "bowl"), ("02924116", "bus"),
    ("02933112", "cabinet"), ("02942699", "camera"), ("02946921", "can"), ("02954340", "cap"),
    ("02958343", "car"), ("02992529", "cellphone"), ("03001627", "chair"), ("03046257", "clock"),
    ("03085013", "keyboard"), ("03207941", "dishwasher"), ("03211117", "display"), ("03261776", "earphone"),
    ("03325088", "faucet"), ("03337140", "file cabinet"), ("03467517", "guitar"), ("03513137", "helmet"),
    ("03593526", "jar"), ("03624134", "knife"),
)


def _model_id(rng: np.random.Generator) -> str:
    """A ShapeNet-like 32-hex model id."""
    return rng.bytes(16).hex()


def _split_counts(total: int, parts: int) -> list[int]:
    """``total`` spread as evenly as possible over ``parts``."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def write_shapenet55(root: Path, sizes: SynthSizes, rng: np.random.Generator) -> None:
    """``ShapeNet55-34/shapenet_pc/{synset}-{model}.npy`` (N,3) float32, split lists and taxonomy."""
    base = root / paths.SHAPENET55
    synsets = SHAPENET55_SYNSETS[: sizes.shapenet_synsets]
    recipes = shapes.family_recipes(rng, len(synsets))
    train_counts = _split_counts(sizes.shapenet_train, len(synsets))
    test_counts = _split_counts(sizes.shapenet_test, len(synsets))
    lists: dict[str, list[str]] = {"train": [], "test": []}
    for (synset, _), recipe, n_train, n_test in zip(synsets, recipes, train_counts, test_counts):
        for split, count in (("train", n_train), ("test", n_test)):
            for _ in range(count):
                name = f"{synset}-{_model_id(rng)}.npy"
                xyz, _, _ = shapes.instance(recipe, sizes.shapenet_points, rng)
                w.write_npy(base / "shapenet_pc" / name, xyz)
                lists[split].append(name)
    for split, names in lists.items():
        w.write_lines(base / "ShapeNet-55" / f"{split}.txt", names)
    counts = {s: sum(n.startswith(s) for n in lists["train"] + lists["test"]) for s, _ in synsets}
    json_io.write_json(base / "shapenet-55_taxonomy.json",
                       [{"synsetId": s, "name": n, "children": [], "numInstances": counts[s]} for s, n in synsets],
                       compact=True)


def write_modelnet40(root: Path, sizes: SynthSizes, rng: np.random.Generator) -> list[shapes.Recipe]:
    """``modelnet40_normal_resampled``: per-class comma txt with normals, lists, names, and the FPS ``.dat``."""
    folder = root / paths.MODELNET40
    recipes = shapes.family_recipes(rng, len(MODELNET40_CLASSES))
    lists: dict[str, list[str]] = {"train": [], "test": []}
    for cls, recipe in zip(MODELNET40_CLASSES, recipes):
        n_train = sizes.modelnet_train_per_class
        for k in range(n_train + sizes.modelnet_test_per_class):
            shape_id = f"{cls}_{k + 1:04d}"
            xyz, normals, _ = shapes.instance(recipe, sizes.modelnet_points, rng)
            w.write_modelnet_txt(folder / cls / f"{shape_id}.txt", xyz, normals)
            lists["train" if k < n_train else "test"].append(shape_id)
    w.write_lines(folder / "modelnet40_shape_names.txt", MODELNET40_CLASSES)
    for split, ids in lists.items():
        w.write_lines(folder / f"modelnet40_{split}.txt", ids)
        build_cache(folder, split, sizes.modelnet_points)
    return recipes


def write_fewshot(root: Path, sizes: SynthSizes, recipes: list[shapes.Recipe], rng: np.random.Generator) -> None:
    """``ModelNetFewshot/{w}way_{s}shot/{fold}.pkl``: way classes drawn, shot train + test per class, labels 0..way-1."""
    max_shot = max(s for _, s in SETTINGS)
    n_test = sizes.fewshot_test_per_class
    pool = [[shapes.instance(r, sizes.fewshot_points, rng)[0] for _ in range(max_shot + n_test)] for r in recipes]
    for way, shot in SETTINGS:
        for fold in range(sizes.fewshot_folds):
            classes = rng.choice(len(recipes), size=way, replace=False)
            train, test = [], []
            for new_label, cls in enumerate(classes):
                train_idx = rng.choice(max_shot, size=shot, replace=False)
                test_idx = max_shot + rng.choice(n_test, size=n_test, replace=False)
                train += [(pool[cls][i], new_label, int(cls)) for i in train_idx]
                test += [(pool[cls][i], new_label, int(cls)) for i in test_idx]
            w.write_pickle(root / paths.MODELNET_FEWSHOT / f"{way}way_{shot}shot" / f"{fold}.pkl",
                           {"train": train, "test": test})


def _scan_scene(xyz: np.ndarray, normals: np.ndarray, rng: np.random.Generator,
                background: bool, hardest: bool, n_points: int) -> np.ndarray:
    """One ScanObjectNN-like sample ``(n_points,3)`` float32 from an object's surface samples.

    Background adds a floor under the object, a wall fragment and clutter; the hardest variant takes a
    partial view, shifts the crop window by up to 50% of the box, rotates about y and rescales.
    """
    obj = xyz - xyz.mean(0)
    obj /= np.linalg.norm(obj, axis=1).max()
    if hardest:
        view = rng.normal(size=3)
        view[1] = abs(view[1]) * 0.5
        view /= np.linalg.norm(view)
        keep = normals @ view > -0.2
        obj = obj[keep] if keep.sum() > n_points // 8 else obj
    pieces = [obj]
    if background:
        lo, hi = obj.min(0), obj.max(0)
        half = (hi - lo) / 2 * 1.4 + 0.05
        centre = (hi + lo) / 2
        n_bg = int(len(obj) * rng.uniform(0.3, 0.6))
        floor = centre + rng.uniform(-1, 1, (n_bg // 2, 3)) * half
        floor[:, 1] = lo[1] + rng.normal(scale=0.01, size=len(floor))
        wall = centre + rng.uniform(-1, 1, (n_bg // 4, 3)) * half
        axis = int(rng.choice([0, 2]))
        wall[:, axis] = centre[axis] + half[axis] * rng.choice([-1, 1]) + rng.normal(scale=0.01, size=len(wall))
        clutter = centre + half * rng.uniform(-1, 1, 3) + rng.normal(scale=0.12, size=(n_bg - len(floor) - len(wall), 3))
        pieces += [floor, wall, clutter]
    scene = np.concatenate(pieces)
    if hardest:
        lo, hi = obj.min(0), obj.max(0)
        shift = (hi - lo) * rng.uniform(-0.5, 0.5, 3)
        inside = np.all(np.abs(scene - ((hi + lo) / 2 + shift)) <= (hi - lo) / 2 * 1.2, axis=1)
        scene = scene[inside] if inside.sum() > n_points // 8 else scene
        angle = rng.uniform(0, 2 * np.pi)
        c, s = np.cos(angle), np.sin(angle)
        scene = scene @ np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]]) * rng.uniform(0.75, 1.25)
    choice = rng.choice(len(scene), n_points, replace=len(scene) < n_points)
    return scene[choice].astype(np.float32)


def write_scanobjectnn(root: Path, sizes: SynthSizes, rng: np.random.Generator) -> None:
    """``ScanObjectNN/main_split{,_nobg}/..._objectdataset{,_augmentedrot_scale75}.h5`` with ``data``/``label``."""
    recipes = shapes.family_recipes(rng, 15, classes_per_family=3)
    base = root / paths.SCANOBJECTNN
    for split, per_class in (("training", sizes.scan_train_per_class), ("test", sizes.scan_test_per_class)):
        out: dict[str, tuple[list[np.ndarray], list[int]]] = {v: ([], []) for v in VARIANT_FILES}
        for label, recipe in enumerate(recipes):
            for _ in range(per_class):
                xyz, normals, _ = shapes.instance(recipe, sizes.scan_points, rng, noise=0.01)
                for variant, bg, copies in (("objonly", False, 1), ("objbg", True, 1),
                                            ("hardest", True, sizes.scan_hardest_copies)):
                    for _ in range(copies):
                        out[variant][0].append(_scan_scene(xyz, normals, rng, bg, variant == "hardest",
                                                           sizes.scan_points))
                        out[variant][1].append(label)
        for variant, (data, labels) in out.items():
            folder, pattern = VARIANT_FILES[variant]
            w.write_h5(base / folder / pattern.format(split=split),
                       {"data": np.stack(data), "label": np.asarray(labels, dtype=np.int64)})


def write_shapenetpart(root: Path, sizes: SynthSizes, rng: np.random.Generator) -> None:
    """ShapeNetPart normal set: ``{synset}/{model}.txt``, ``synsetoffset2category.txt``, split jsons."""
    folder = root / paths.SHAPENETPART
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for category in sorted(SEG_CLASSES):
        recipe = shapes.random_recipe(rng, SEG_CLASSES[category])
        synset = SYNSETS[category]
        for split, count in (("train", sizes.part_train_per_category), ("val", sizes.part_val_per_category),
                             ("test", sizes.part_test_per_category)):
            for _ in range(count):
                model = _model_id(rng)
                xyz, normals, parts = shapes.instance(recipe, sizes.part_points, rng)
                w.write_part_txt(folder / synset / f"{model}.txt", xyz, normals, parts)
                splits[split].append(f"shape_data/{synset}/{model}")
    w.write_lines(folder / "synsetoffset2category.txt", [f"{c}\t{SYNSETS[c]}" for c in sorted(SEG_CLASSES)])
    for split, entries in splits.items():
        order = rng.permutation(len(entries))
        json_io.write_json(folder / "train_test_split" / f"shuffled_{split}_file_list.json",
                           [entries[i] for i in order], compact=True)


def synthesize(out: Path, sizes: SynthSizes, seed: int) -> None:
    """Write every synthetic dataset under ``out`` (the data root). Same seed → same bytes."""
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)]
    write_shapenet55(out, sizes, streams[0])
    recipes = write_modelnet40(out, sizes, streams[1])
    write_fewshot(out, sizes, recipes, streams[2])
    write_scanobjectnn(out, sizes, streams[3])
    write_shapenetpart(out, sizes, streams[4])
