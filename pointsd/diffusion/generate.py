"""Point-to-image generation with the stage-1 model (a point-cloud-conditioned SD).

The SD folder's own pipeline (text encoder + tokenizer for the empty prompt, VAE, UNet) samples with
a DDIM or DPM-Solver scheduler; the stage-1 backbone's global feature is passed as the IP-adapter
image embedding, and the stage-1 global projection is installed as the UNet's ``encoder_hid_proj``
(diffusers' ``ip_image_proj`` route), so the point tokens reach every cross-attention layer.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, StableDiffusionPipeline
from diffusers.models.embeddings import MultiIPAdapterImageProjection
from PIL import Image

from pointsd.diffusion.stable_diffusion import check_sd_folder
from pointsd.diffusion.stage_models import Stage1Model, load_stage1
from pointsd.errors import PointSDError, first_line
from pointsd.models.config import BackboneConfig

SCHEDULERS = {"ddim": DDIMScheduler, "dpm": DPMSolverMultistepScheduler}


def load_point_pipeline(
    sd_dir: str | os.PathLike, stage1_dir: str | os.PathLike, backbone_cfg: BackboneConfig, scheduler: str = "ddim",
) -> tuple[StableDiffusionPipeline, Stage1Model]:
    """The SD pipeline with the stage-1 IP layers and point projection installed on its UNet."""
    if scheduler not in SCHEDULERS:
        raise PointSDError(f"scheduler must be one of {sorted(SCHEDULERS)}, got {scheduler!r}")
    root = check_sd_folder(sd_dir, ("unet", "vae", "scheduler", "text_encoder", "tokenizer"))
    try:
        pipe = StableDiffusionPipeline.from_pretrained(root, safety_checker=None, requires_safety_checker=False)
    except Exception as err:  # noqa: BLE001 - any broken part is the same user error
        raise PointSDError(f"cannot load the Stable Diffusion pipeline from {root}: {first_line(err)}") from err
    stage1 = load_stage1(stage1_dir, pipe.unet, backbone_cfg).eval()
    pipe.unet.encoder_hid_proj = MultiIPAdapterImageProjection([stage1.global_proj])
    pipe.unet.register_to_config(encoder_hid_dim_type="ip_image_proj")
    pipe.scheduler = SCHEDULERS[scheduler].from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe, stage1


@torch.no_grad()
def generate_images(
    pipe: StableDiffusionPipeline, stage1: Stage1Model, points: torch.Tensor, *, image_size: int = 64,
    steps: int = 30, guidance_scale: float = 1.0, seed: int = 0,
) -> list[Image.Image]:
    """One image per cloud ``points (B,N,3)``; guidance > 1 contrasts with a zero point feature."""
    device = pipe.device
    global_feature, _ = stage1.backbone(points.to(device))
    embeds = global_feature.unsqueeze(1)  # (B, 1, G): one "image" per prompt
    if guidance_scale > 1.0:
        embeds = torch.cat([torch.zeros_like(embeds), embeds])
    out = pipe(
        prompt=[""] * points.shape[0], height=image_size, width=image_size, num_inference_steps=steps,
        guidance_scale=guidance_scale, ip_adapter_image_embeds=[embeds],
        generator=torch.Generator(device="cpu").manual_seed(seed), output_type="pil",
    )
    return list(out.images)


def image_grid(rows: list[list[Image.Image | None]], size: int) -> Image.Image:
    """Paste ``rows`` of images (``None`` = white cell) into one grid, each cell ``size × size``."""
    cols = max(len(r) for r in rows)
    grid = Image.new("RGB", (cols * size, len(rows) * size), "white")
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            if img is not None:
                grid.paste(img.convert("RGB").resize((size, size), Image.BICUBIC), (c * size, r * size))
    return grid


def load_render(render_root: Path | None, shape_id: str, view: int) -> Image.Image | None:
    """The ULIP render ``{id}/{id}_r_{view*12:03d}.png`` composited on white, or None when absent."""
    if render_root is None:
        return None
    path = Path(render_root) / shape_id / f"{shape_id}_r_{view * 12:03d}.png"
    if not path.is_file():
        return None
    rgba = Image.open(path).convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def read_points_file(path: str | os.PathLike) -> np.ndarray:
    """A ``.npy`` cloud ``(N,3+)`` or batch ``(B,N,3+)`` → float32 ``(B,N,3)``."""
    path = Path(path)
    if not path.is_file():
        raise PointSDError(f"{path}: points file is missing")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise PointSDError(f"{path}: not a .npy array ({err})") from err
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[-1] < 3 or not np.isfinite(arr[..., :3]).all():
        raise PointSDError(f"{path}: expected finite points (N,3) or (B,N,3), got shape {arr.shape}")
    return arr[..., :3].astype(np.float32)
