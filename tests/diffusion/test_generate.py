"""``pointsd generate`` samples images from clouds with the tiny SD and writes a grid beside the renders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pointsd.cli import main
from pointsd.diffusion.generate import generate_images, load_point_pipeline
from pointsd.diffusion.stable_diffusion import load_stable_diffusion
from pointsd.diffusion.stage_models import Stage1Model, save_stage1
from pointsd.models.config import BackboneConfig

TINY = BackboneConfig(trans_dim=32, depth=1, num_heads=2, group_size=8, num_group=8, encoder_dims=32,
                      drop_path_rate=0.0)


def _stage1(tiny_sd: Path, out: Path) -> Path:
    torch.manual_seed(0)
    model = Stage1Model(TINY, load_stable_diffusion(tiny_sd).unet)
    with torch.no_grad():  # make the point tokens matter visibly
        model.global_proj.proj.weight.mul_(50)
    save_stage1(out, model, TINY)
    return out


def test_generate_writes_grid_with_renders(tiny_sd: Path, tmp_path: Path) -> None:
    stage1 = _stage1(tiny_sd, tmp_path / "s1")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "chair.npy", rng.random((200, 3), dtype=np.float32))
    np.save(tmp_path / "lamp.npy", rng.random((200, 3), dtype=np.float32) ** 3)
    (tmp_path / "renders" / "chair").mkdir(parents=True)
    Image.new("RGBA", (40, 40), (255, 0, 0, 255)).save(tmp_path / "renders" / "chair" / "chair_r_000.png")
    code = main(["generate", "--stage1", str(stage1), "--sd", str(tiny_sd), "--points", str(tmp_path / "chair.npy"),
                 str(tmp_path / "lamp.npy"), "--renders", str(tmp_path / "renders"), "--out", str(tmp_path / "gen"),
                 "--npoints", "64", "--image-size", "32", "--steps", "4", "--device", "cpu"])
    assert code == 0
    grid = np.asarray(Image.open(tmp_path / "gen" / "grid.png"))
    assert grid.shape == (64, 64, 3)  # renders row + samples row, two columns
    assert (grid[:32, :32] == [255, 0, 0]).all() and (grid[:32, 32:] == 255).all()  # render; missing → white


def test_point_clouds_condition_the_samples(tiny_sd: Path, tmp_path: Path) -> None:
    pipe, stage1 = load_point_pipeline(tiny_sd, _stage1(tiny_sd, tmp_path / "s1"), TINY)
    torch.manual_seed(0)
    clouds = torch.stack([torch.rand(64, 3), torch.rand(64, 3) ** 3])
    a, b = generate_images(pipe, stage1, clouds, image_size=32, steps=4, seed=0)
    assert a.size == (32, 32)
    assert np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).max() > 0
