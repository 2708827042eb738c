"""A vectorised point-splatting renderer producing ULIP-style RGBA views and depth maps.

Camera: orthographic, orbiting the up (y) axis; view ``i`` looks from azimuth ``i*360/views`` degrees.
At azimuth 0 the camera sits on +z looking at the origin, image right = +x, image up = +y.
Every point is splatted as a disc of ``radius_px`` pixels; a z-buffer keeps the nearest splat per pixel
(ties → lower point index). Shading is Lambert with ambient light from normals (estimated by local PCA
when absent, oriented away from the centroid). Alpha is coverage (255 where a splat lands).
Depth PNGs are 16-bit: ``(d + 1) / 2 * 65534`` with ``d`` the distance from the view plane through the
origin toward the camera axis (nearer = smaller), background 65535.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

FRAME = 0.9  # the unit sphere fills 90% of the image width


@dataclass(frozen=True)
class RenderSettings:
    """Image size, splat radius (pixels; ``None`` → from point density), colour and light."""

    size: int = 224
    radius_px: float | None = None
    color: tuple[float, float, float] = (0.72, 0.74, 0.80)
    ambient: float = 0.35
    light: tuple[float, float, float] = (-0.4, 0.6, 0.7)


def estimate_normals(xyz: np.ndarray, k: int = 12, max_reference: int = 2048, chunk: int = 4096) -> np.ndarray:
    """Unit normals by local PCA, oriented away from the centroid. ``xyz (N,3)`` → ``(N,3)`` float32.

    Neighbourhoods are the ``k`` nearest among an evenly strided subset of at most ``max_reference``
    points, which keeps dense clouds (8192 points) fast.
    """
    import torch

    pts = torch.from_numpy(np.ascontiguousarray(xyz, dtype=np.float32))
    ref = pts[:: max(1, math.ceil(len(pts) / max_reference))]
    k = min(k, len(ref))
    normals = []
    for start in range(0, len(pts), chunk):
        idx = torch.cdist(pts[start:start + chunk], ref).topk(k, largest=False).indices
        nb = ref[idx].double()
        nb = nb - nb.mean(1, keepdim=True)
        _, vecs = torch.linalg.eigh(nb.transpose(1, 2) @ nb)
        normals.append(vecs[:, :, 0])
    n = torch.cat(normals).numpy()
    outward = np.sign(((xyz - xyz.mean(0)) * n).sum(1, keepdims=True))
    n = n * np.where(outward == 0, 1.0, outward)
    return (n / (np.linalg.norm(n, axis=1, keepdims=True) + 1e-12)).astype(np.float32)


def auto_radius(n_points: int, size: int) -> float:
    """Splat radius in pixels so a unit-sphere surface of ``n_points`` samples renders without holes."""
    spacing = math.sqrt(4 * math.pi / max(n_points, 1))  # mean sample spacing on a unit sphere
    return max(0.75, 0.9 * spacing * FRAME * size / 2)


def _disc_offsets(radius: float) -> np.ndarray:
    """Integer pixel offsets ``(K,2)`` within ``radius``."""
    r = int(math.ceil(radius))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    keep = dx * dx + dy * dy <= radius * radius + 1e-9
    return np.stack([dx[keep], dy[keep]], 1)


def view_rotation(azimuth_deg: float) -> np.ndarray:
    """World → camera rotation for a camera orbiting the y axis by ``azimuth_deg``. → ``(3,3)``."""
    a = math.radians(azimuth_deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])


def render_view(xyz: np.ndarray, normals: np.ndarray, azimuth_deg: float,
                settings: RenderSettings = RenderSettings()) -> tuple[np.ndarray, np.ndarray]:
    """Render one view. ``xyz, normals (N,3)`` (unit sphere) → ``(rgba (S,S,4) uint8, depth (S,S) uint16)``."""
    S = settings.size
    rot = view_rotation(azimuth_deg)
    cam = xyz.astype(np.float64) @ rot.T
    ncam = normals.astype(np.float64) @ rot.T
    ncam = np.where(ncam[:, 2:3] < 0, -ncam, ncam)  # show the face toward the camera
    light = np.asarray(settings.light) / np.linalg.norm(settings.light)
    shade = settings.ambient + (1 - settings.ambient) * np.clip(ncam @ light, 0, 1)
    colors = np.clip(np.outer(shade, settings.color) * 255 + 0.5, 0, 255).astype(np.uint8)

    radius = settings.radius_px if settings.radius_px is not None else auto_radius(len(xyz), S)
    offsets = _disc_offsets(radius)
    px = (cam[:, 0] * FRAME + 1) * S / 2 - 0.5
    py = (1 - cam[:, 1] * FRAME) * S / 2 - 0.5
    cx = np.rint(px).astype(np.int64)[:, None] + offsets[None, :, 0]
    cy = np.rint(py).astype(np.int64)[:, None] + offsets[None, :, 1]
    depth = np.broadcast_to(-cam[:, 2:3], cx.shape)
    point = np.broadcast_to(np.arange(len(xyz))[:, None], cx.shape)
    inside = (cx >= 0) & (cx < S) & (cy >= 0) & (cy < S)
    pix, dep, pid = (cy * S + cx)[inside], depth[inside], point[inside]

    order = np.lexsort((pid, dep, pix))  # by pixel, then nearest, then lowest point index
    pix, dep, pid = pix[order], dep[order], pid[order]
    first = np.ones(len(pix), dtype=bool)
    first[1:] = pix[1:] != pix[:-1]
    pix, dep, pid = pix[first], dep[first], pid[first]

    rgba = np.zeros((S * S, 4), dtype=np.uint8)
    rgba[pix, :3] = colors[pid]
    rgba[pix, 3] = 255
    zbuf = np.full(S * S, 65535, dtype=np.uint16)
    zbuf[pix] = np.clip((dep + 1) / 2 * 65534, 0, 65534).astype(np.uint16)
    return rgba.reshape(S, S, 4), zbuf.reshape(S, S)


def png_bytes(image: np.ndarray) -> bytes:
    """PNG of an ``(S,S,4)`` uint8 RGBA or ``(S,S)`` uint16 depth array; no metadata, so bytes are reproducible."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def azimuths(views: int) -> list[int]:
    """View angles in whole degrees: ``views=30`` → 0, 12, ..., 348 (the ULIP names)."""
    return [round(i * 360 / views) for i in range(views)]


def contact_sheet(images: list[np.ndarray], columns: int = 8, cell: int = 96) -> np.ndarray:
    """RGBA images composited on white in a grid → ``(rows*cell, columns*cell, 3)`` uint8."""
    rows = max(1, math.ceil(len(images) / columns))
    sheet = Image.new("RGB", (columns * cell, rows * cell), (255, 255, 255))
    for i, img in enumerate(images):
        tile = Image.new("RGB", (img.shape[1], img.shape[0]), (255, 255, 255))
        tile.paste(Image.fromarray(img), mask=Image.fromarray(np.ascontiguousarray(img[..., 3])))
        sheet.paste(tile.resize((cell, cell), Image.BICUBIC), ((i % columns) * cell, (i // columns) * cell))
    return np.asarray(sheet)


def view_name(shape_id: str, azimuth: int) -> str:
    """ULIP file name of one RGBA view: ``{id}_r_{azimuth:03d}.png``."""
    return f"{shape_id}_r_{azimuth:03d}.png"


def depth_name(shape_id: str, azimuth: int) -> str:
    """ULIP file name of one depth view: ``{id}_r_{azimuth:03d}_depth0001.png``."""
    return f"{shape_id}_r_{azimuth:03d}_depth0001.png"


def render_shape(xyz: np.ndarray, views: int, settings: RenderSettings) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """All views of one normalised cloud ``(N,3)`` → ``[(azimuth, rgba (S,S,4), depth (S,S))]``."""
    normals = estimate_normals(xyz)
    return [(a, *render_view(xyz, normals, a, settings)) for a in azimuths(views)]
