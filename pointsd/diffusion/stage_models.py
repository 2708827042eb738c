"""The pre-training models and their checkpoint files.

- :class:`Stage1Model`: point backbone → :class:`GlobalProjection` → IP-adapter UNet (SPEC §2).
- :class:`Stage2Student`: fresh backbone → Perceiver resampler (SPEC §3); its teacher is
  :class:`pointsd.diffusion.teacher.Stage2Teacher`.

Stage-1 files as the official ``train_pointsd.py`` writes them (plain state dicts, same keys):
``ckpt-stage1.pt`` (backbone), ``global_proj_model.pt`` (``proj``, ``norm``) and ``adapter_modules.pt``
(``{i}.to_k_ip.weight``, ``{i}.to_v_ip.weight``, ``i`` the index in ``unet.attn_processors``); an official
stage-1 folder (those three files only) loads here, and so do this project's older folders, whose
adapter keys are diffusers' ``{i}.to_k_ip.0.weight``. This project adds a ``.safetensors`` twin of each
file and ``backbone_config.json`` (the backbone's constructor arguments). Stage 2 writes ``ckpt-stage2.pt``
(the official name and layout) and ``resampler.pt``, this project's own file: the official script does
not save its resampler.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, fields
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file
from torch import nn

from pointsd.diffusion.point_conditioning import GlobalProjection, install_ip_adapter, point_encoder_states
from pointsd.diffusion.resampler import ResamplerConfig, perceiver_resampler
from pointsd.errors import PointSDError
from pointsd.models.backbone import PointTransformer
from pointsd.models.checkpoints import load_pretrained, load_state_file, save_backbone
from pointsd.models.config import BackboneConfig
from pointsd.utils import atomic, json_io

STAGE1_FILES = ("ckpt-stage1.pt", "global_proj_model.pt", "adapter_modules.pt")
BACKBONE_CONFIG = "backbone_config.json"
#: diffusers' IP-adapter processors hold ``to_k_ip``/``to_v_ip`` in a ModuleList (``.0.``); the official
#: processors hold a plain Linear.
_DIFFUSERS_IP_KEY = re.compile(r"^(\d+)\.(to_[kv]_ip)\.0\.weight$")
_OFFICIAL_IP_KEY = re.compile(r"^(\d+)\.(to_[kv]_ip)\.weight$")


class Stage1Model(nn.Module):
    """Backbone + global projection + UNet with IP layers; only the UNet's IP layers are trainable in it."""

    def __init__(self, backbone: BackboneConfig, unet: UNet2DConditionModel, sdpa: bool = True) -> None:
        """A fresh backbone of ``backbone``'s size on ``unet`` (frozen; IP-adapter processors installed)."""
        super().__init__()
        self.backbone = PointTransformer(backbone)
        self.global_proj = GlobalProjection(self.backbone.global_dim, unet.config.cross_attention_dim)
        unet.requires_grad_(False)
        install_ip_adapter(unet, sdpa=sdpa)
        self.unet = unet

    def adapter_modules(self) -> nn.ModuleList:
        """The IP-adapter processors in ``unet.attn_processors`` order (the official indices); their state
        dict has diffusers' keys, :func:`official_adapter_state` gives the official ones."""
        return nn.ModuleList(self.unet.attn_processors.values())

    def point_tokens(self, neighborhood: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
        """Grouped cloud ``(B,G,K,3)``, ``(B,G,3)`` → point tokens ``(B,4,X)``."""
        global_feature, _ = self.backbone(None, grouped=(neighborhood, center))
        return self.global_proj(global_feature)

    def forward(
        self, neighborhood: torch.Tensor, center: torch.Tensor, noisy_latents: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        """Predicted noise ``(B,4,h,w)`` for ``noisy_latents (B,4,h,w)`` at ``timesteps (B,)``."""
        states = point_encoder_states(self.point_tokens(neighborhood, center))
        return self.unet(noisy_latents, timesteps, encoder_hidden_states=states).sample


class Stage2Student(nn.Module):
    """Backbone global feature ``(B,1,2D)`` → Perceiver resampler → ``(B, C_target)``."""

    def __init__(self, backbone: BackboneConfig, target_dim: int, resampler: ResamplerConfig) -> None:
        """A fresh backbone of ``backbone``'s size and a resampler to the teacher's ``target_dim``."""
        super().__init__()
        self.backbone = PointTransformer(backbone)
        self.resampler = perceiver_resampler(self.backbone.global_dim, target_dim, resampler)

    def forward(self, neighborhood: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
        global_feature, _ = self.backbone(None, grouped=(neighborhood, center))
        return self.resampler(global_feature.unsqueeze(1)).squeeze(1)


def save_safetensors(path: Path, state: dict[str, torch.Tensor]) -> None:
    """``torch.save`` to ``path`` and a ``.safetensors`` twin, both atomically."""
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    atomic.torch_save(path, state)
    with atomic.atomic_path(path.with_suffix(".safetensors")) as tmp:
        save_file(state, str(tmp))


def official_adapter_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``adapter_modules`` state dict, diffusers' keys ``{i}.to_k_ip.0.weight`` → official ``{i}.to_k_ip.weight``
    (order kept; other keys unchanged)."""
    return {_DIFFUSERS_IP_KEY.sub(r"\1.\2.weight", key): value for key, value in state.items()}


def diffusers_adapter_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An ``adapter_modules.pt`` in either layout (official, or this project's older diffusers keys) → the keys
    of :meth:`Stage1Model.adapter_modules`."""
    return {_OFFICIAL_IP_KEY.sub(r"\1.\2.0.weight", key): value for key, value in state.items()}


def save_stage1(out_dir: Path, model: Stage1Model, backbone_cfg: BackboneConfig) -> None:
    """Write ``ckpt-stage1.pt``, ``global_proj_model.pt``, ``adapter_modules.pt`` in the official key layout
    (+ safetensors twins) and the backbone config."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_backbone(model.backbone, out_dir / "ckpt-stage1.pt")
    save_safetensors(out_dir / "global_proj_model.pt", model.global_proj.state_dict())
    save_safetensors(out_dir / "adapter_modules.pt", official_adapter_state(model.adapter_modules().state_dict()))
    json_io.write_json(out_dir / BACKBONE_CONFIG, asdict(backbone_cfg))


def save_stage2(out_dir: Path, student: Stage2Student, backbone_cfg: BackboneConfig) -> None:
    """Write ``ckpt-stage2.pt``, ``resampler.pt`` (+ safetensors) and the backbone config."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_backbone(student.backbone, out_dir / "ckpt-stage2.pt")
    save_safetensors(out_dir / "resampler.pt", student.resampler.state_dict())
    json_io.write_json(out_dir / BACKBONE_CONFIG, asdict(backbone_cfg))


def read_backbone_config(stage_dir: str | os.PathLike, default: BackboneConfig | None = None) -> BackboneConfig:
    """The ``backbone_config.json`` of a pre-training folder, or ``default`` when absent (official folders)."""
    path = Path(stage_dir) / BACKBONE_CONFIG
    if not path.is_file():
        if default is None:
            raise PointSDError(f"{path} is missing; give the backbone sizes explicitly")
        return default
    return read_backbone_config_file(path)


def read_backbone_config_file(path: str | os.PathLike) -> BackboneConfig:
    """A ``backbone_config.json`` file → :class:`BackboneConfig` (unknown keys ignored)."""
    path = Path(path)
    try:
        raw = json_io.read_json(path, "backbone config")
        names = {f.name for f in fields(BackboneConfig)}
        return BackboneConfig(**{k: v for k, v in raw.items() if k in names})
    except (AttributeError, TypeError) as err:
        raise PointSDError(f"{path}: not a backbone config: {err}") from err


def load_stage1(stage1_dir: str | os.PathLike, unet: UNet2DConditionModel, backbone_cfg: BackboneConfig) -> Stage1Model:
    """Rebuild a :class:`Stage1Model` on ``unet`` from the stage-1 files in ``stage1_dir`` (official or ours)."""
    root = Path(stage1_dir)
    for name in STAGE1_FILES:
        if not (root / name).is_file():
            raise PointSDError(f"stage-1 checkpoint missing: {root / name}")
    model = Stage1Model(backbone_cfg, unet)
    report = load_pretrained(model.backbone, root / "ckpt-stage1.pt")
    if report.missing:
        raise PointSDError(f"{root / 'ckpt-stage1.pt'} lacks backbone keys: {report.missing[:5]}")
    for name, module in (("global_proj_model.pt", model.global_proj), ("adapter_modules.pt", model.adapter_modules())):
        path = root / name
        try:
            state = load_state_file(path)
            module.load_state_dict(diffusers_adapter_state(state) if name == "adapter_modules.pt" else state)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise PointSDError(f"{path} does not fit the stage-1 model: {first}") from err
    return model
