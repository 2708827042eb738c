"""Pre-training pairs: a ShapeNet-55 cloud and one ULIP-layout rendered view of the same object (SPEC §2)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from pointsd.data.normalize import pc_normalize
from pointsd.data.paths import ULIP_RENDERS, dataset_dir
from pointsd.data.render import view_name
from pointsd.data.shapenet55 import load_cloud, npy_folder, read_split, split_file, subset_indices
from pointsd.data.transforms import pretrain_augment
from pointsd.errors import PointSDError
from pointsd.utils.data_record import Sources


def render_folder(render_root: str | os.PathLike) -> Path:
    """The folder holding ``{id}/`` view folders: ``render_root`` or its ``rgb_depth_rendered_images``."""
    return dataset_dir(render_root, ULIP_RENDERS)


def decode_view(path: Path, image_size: int) -> np.ndarray:
    """An RGBA (or RGB) PNG composited on white and bicubic-resized → ``(S,S,3)`` uint8."""
    try:
        with Image.open(path) as img:
            img.load()
            rgba = img.convert("RGBA")
    except (OSError, UnidentifiedImageError) as err:
        raise PointSDError(f"{path}: not a readable image ({err})") from err
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, rgba).convert("RGB").resize((image_size, image_size), Image.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8)


def view_tensor(rgb: np.ndarray, flip: bool = False) -> torch.Tensor:
    """``(S,S,3)`` uint8, optionally mirrored left-right → ``(3,S,S)`` float32 in [-1,1]."""
    arr = (rgb[:, ::-1] if flip else rgb).astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


class ShapeNet55Pretrain(Dataset):
    """→ dict ``points (npoints,3)`` float32 (unit sphere, augmented when ``augment``), ``image (3,S,S)``
    in [-1,1], ``index`` (int), ``flip`` (bool: the image is mirrored), ``id``.

    ``view`` is the ULIP view index (azimuth ``view*12`` degrees). ``subset``: which stored points a sample
    uses (:data:`pointsd.train.presets.POINT_SUBSETS`; official ``first``). Every listed shape must have its
    cloud and its view image; a missing one is reported at construction, naming the file. Decoded
    images are kept in memory (``(S,S,3)`` uint8 per shape): decoded on first use by each process, or
    all at once by :meth:`preload_views` before data-loader workers start (they then share them).
    """

    def __init__(self, pc_root: str | os.PathLike, render_root: str | os.PathLike, split: str,
                 npoints: int = 1024, image_size: int = 64, view: int = 0, augment: bool = True,
                 subset: str = "first") -> None:
        self.npy = npy_folder(pc_root)
        self.subset = subset
        self.renders = render_folder(render_root)
        self.ids = read_split(pc_root, split)
        self.split_file = split_file(pc_root, split)
        self.npoints, self.image_size, self.augment = npoints, image_size, augment
        self.azimuth = view * 12
        self.decoded: dict[int, np.ndarray] = {}
        for shape_id in self.ids:
            for path in (self.npy / f"{shape_id}.npy", self.image_path(shape_id)):
                if not path.is_file():
                    raise PointSDError(f"{path}: missing for shape {shape_id} listed in split '{split}'")

    def image_path(self, shape_id: str) -> Path:
        """The view image of ``shape_id``."""
        return self.renders / shape_id / view_name(shape_id, self.azimuth)

    def sources(self) -> Sources:
        """The split list, its clouds and their view images (:mod:`pointsd.utils.data_record`)."""
        clouds = tuple((self.npy, self.npy / f"{i}.npy") for i in self.ids)
        return Sources((self.split_file,), clouds + tuple((self.renders, self.image_path(i)) for i in self.ids))

    def preload_views(self, threads: int) -> None:
        """Decode every view now, on ``threads`` threads (PIL decodes without the GIL)."""
        missing = [i for i in range(len(self.ids)) if i not in self.decoded]
        paths = [self.image_path(self.ids[i]) for i in missing]
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            decoded = pool.map(decode_view, paths, [self.image_size] * len(paths))
            self.decoded.update(zip(missing, decoded))

    def view_image(self, index: int, flip: bool) -> torch.Tensor:
        """The view of shape ``index`` → ``(3,S,S)`` in [-1,1], mirrored when ``flip``."""
        if index not in self.decoded:
            self.decoded[index] = decode_view(self.image_path(self.ids[index]), self.image_size)
        return view_tensor(self.decoded[index], flip)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str | int | bool]:
        shape_id = self.ids[index]
        path = self.npy / f"{shape_id}.npy"
        cloud = load_cloud(path)
        try:
            choice = subset_indices(len(cloud), self.npoints, self.subset)
        except PointSDError as err:
            raise PointSDError(f"{path}: {err}") from err
        points = torch.from_numpy(pc_normalize(cloud[choice]))
        flip = False
        if self.augment:
            points = pretrain_augment(points.unsqueeze(0))[0]
            flip = bool(torch.rand(()) < 0.5)
        return {"points": points, "image": self.view_image(index, flip), "index": index, "flip": flip,
                "id": shape_id}
