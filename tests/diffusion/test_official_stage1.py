"""Stage-1 folders in the official layout (``train_pointsd.py``): plain state dicts ``ckpt-stage1.pt``,
``global_proj_model.pt``, ``adapter_modules.pt`` with keys ``{i}.to_k_ip.weight`` / ``{i}.to_v_ip.weight``
and nothing else. This project writes that key layout, reads it back, still reads its older
``{i}.to_k_ip.0.weight`` files, and an official folder trains stage 2 and generates an image."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from pointsd.cli import main
from pointsd.diffusion.resampler import ResamplerConfig
from pointsd.diffusion.stable_diffusion import load_stable_diffusion
from pointsd.diffusion.stage_models import Stage1Model, load_stage1, save_stage1
from pointsd.models.config import BackboneConfig
from pointsd.train.pretrain import NoiseConfig, PretrainConfig, run_pretrain
from pointsd.train.probe import ProbeConfig

TINY = BackboneConfig(trans_dim=32, depth=1, num_heads=2, group_size=8, num_group=8, encoder_dims=32,
                      drop_path_rate=0.0)


class _OfficialIPLayer(nn.Module):
    """The parameters of an official cross-attention IP processor: plain ``to_k_ip`` / ``to_v_ip`` Linears."""

    def __init__(self, to_k: nn.Linear) -> None:
        super().__init__()
        self.to_k_ip = nn.Linear(to_k.in_features, to_k.out_features, bias=False)
        self.to_v_ip = nn.Linear(to_k.in_features, to_k.out_features, bias=False)


def official_adapter_modules(unet) -> nn.ModuleList:
    """An ``adapter_modules`` ModuleList as the official script builds it: one entry per attention processor,
    IP layers on the cross-attention ones, parameter-free entries elsewhere (random weights)."""
    layers = dict(unet.named_modules())
    entries = []
    for name in unet.attn_processors:
        layer = layers[name.removesuffix(".processor")]
        entries.append(_OfficialIPLayer(layer.to_k) if name.endswith("attn2.processor") else nn.Identity())
    return nn.ModuleList(entries)


def official_keys(unet) -> list[str]:
    return [f"{i}.{w}.weight" for i, name in enumerate(unet.attn_processors) if name.endswith("attn2.processor")
            for w in ("to_k_ip", "to_v_ip")]


def write_official_folder(tiny_sd: Path, folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Three plain state dicts with official key names, no safetensors twins, no backbone config."""
    torch.manual_seed(7)
    unet = load_stable_diffusion(tiny_sd).unet
    model = Stage1Model(TINY, load_stable_diffusion(tiny_sd).unet)
    with torch.no_grad():
        model.global_proj.proj.weight.mul_(50)  # make the point tokens matter visibly
    states = {"ckpt-stage1.pt": model.backbone.state_dict(), "global_proj_model.pt": model.global_proj.state_dict(),
              "adapter_modules.pt": official_adapter_modules(unet).state_dict()}
    folder.mkdir(parents=True)
    for name, state in states.items():
        torch.save(state, folder / name)
    return states


def test_stage1_files_have_the_official_adapter_keys_and_round_trip(tiny_sd: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Stage1Model(TINY, load_stable_diffusion(tiny_sd).unet)
    save_stage1(tmp_path / "s1", model, TINY)
    unet = load_stable_diffusion(tiny_sd).unet
    expected = official_keys(unet)
    written = torch.load(tmp_path / "s1" / "adapter_modules.pt", map_location="cpu", weights_only=True)
    assert list(written) == expected  # the official keys, in the official order, nothing else
    assert set(load_file(str(tmp_path / "s1" / "adapter_modules.safetensors"))) == set(expected)
    reference = official_adapter_modules(unet).state_dict()
    assert all(written[k].shape == reference[k].shape and written[k].dtype == reference[k].dtype for k in expected)
    official = official_adapter_modules(unet)
    official.load_state_dict(written)  # strict: the official ModuleList takes the file as is
    loaded = load_stage1(tmp_path / "s1", load_stable_diffusion(tiny_sd).unet, TINY)
    for key, value in model.adapter_modules().state_dict().items():
        assert torch.equal(loaded.adapter_modules().state_dict()[key], value)


def test_older_diffusers_keyed_folders_still_load(tiny_sd: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Stage1Model(TINY, load_stable_diffusion(tiny_sd).unet)
    save_stage1(tmp_path / "s1", model, TINY)
    old = model.adapter_modules().state_dict()
    assert any(".to_k_ip.0.weight" in k for k in old)
    torch.save(old, tmp_path / "s1" / "adapter_modules.pt")
    loaded = load_stage1(tmp_path / "s1", load_stable_diffusion(tiny_sd).unet, TINY)
    assert all(torch.equal(loaded.adapter_modules().state_dict()[k], v) for k, v in old.items())


def test_official_folder_loads_trains_stage2_and_generates(tiny_sd: Path, tmp_path: Path) -> None:
    folder = tmp_path / "official"
    states = write_official_folder(tiny_sd, folder)
    loaded = load_stage1(folder, load_stable_diffusion(tiny_sd).unet, TINY)
    assert all(torch.equal(loaded.backbone.state_dict()[k], v) for k, v in states["ckpt-stage1.pt"].items())
    assert all(torch.equal(loaded.global_proj.state_dict()[k], v) for k, v in states["global_proj_model.pt"].items())
    ip = loaded.adapter_modules().state_dict()
    assert all(torch.equal(ip[k.replace("_ip.weight", "_ip.0.weight")], v) for k, v in states["adapter_modules.pt"].items())

    g = torch.Generator().manual_seed(0)
    data = [{"points": torch.rand(64, 3, generator=g) - 0.5, "image": torch.rand(3, 32, 32, generator=g) * 2 - 1,
             "id": f"s{i}"} for i in range(4)]
    cfg = PretrainConfig(stage=2, sd_dir=tiny_sd, out_dir=tmp_path / "s2", stage1_dir=folder, epochs=1, batch_size=2,
                         lr=1e-3, warmup_epochs=0, weight_decay=0.01, grad_clip=1.0, noise=NoiseConfig(), npoints=64,
                         image_size=32, backbone=TINY, resampler=ResamplerConfig(dim=32, depth=1, dim_head=16, heads=2,
                                                                                 ff_mult=2),
                         probe=ProbeConfig(num_points=64), probe_every=None, device="cpu", log_every=1, progress=False)
    summary = run_pretrain(cfg, data)
    assert summary["steps"] == 2 and np.isfinite(summary["final_loss"])
    assert (tmp_path / "s2" / "ckpt-stage2.pt").is_file()

    np.save(tmp_path / "chair.npy", np.random.default_rng(0).random((200, 3), dtype=np.float32))
    (tmp_path / "tiny.json").write_text(json.dumps(asdict(TINY)))
    code = main(["generate", "--stage1", str(folder), "--sd", str(tiny_sd), "--points", str(tmp_path / "chair.npy"),
                 "--backbone-config", str(tmp_path / "tiny.json"), "--out", str(tmp_path / "gen"), "--npoints", "64",
                 "--image-size", "32", "--steps", "2", "--device", "cpu"])
    assert code == 0
    grid = np.asarray(Image.open(tmp_path / "gen" / "grid.png"))
    assert grid.shape == (32, 32, 3) and grid.std() > 0
