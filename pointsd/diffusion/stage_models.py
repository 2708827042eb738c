"""The pre-training models and their checkpoint files (official layout).

- :class:`Stage1Model`: point backbone → :class:`GlobalProjection` → IP-adapter UNet (SPEC §2).
- :class:`Stage2Student`: fresh backbone → Perceiver resampler (SPEC §3).
- :class:`Stage2Teacher`: a frozen :class:`Stage1Model` whose target is the UNet's last down block.

Files in a pre-training folder: ``ckpt-stage{1,2}.pt`` (backbone state dict), ``global_proj_model.pt``,
``adapter_modules.pt`` (stage 1), ``resampler.pt`` (stage 2), each with a ``.safetensors`` twin, and
``backbone_config.json`` (the backbone's constructor arguments).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file
from torch import nn

from pointsd.diffusion.point_conditioning import (
    GlobalProjection,
    install_ip_adapter,
    perceiver_resampler,
    point_encoder_states,
)
from pointsd.diffusion.teacher import down_path_feature, pool_feature
from pointsd.errors import PointSDError
from pointsd.models.backbone import PointTransformer
from pointsd.models.checkpoints import load_pretrained, load_state_file, save_backbone
from pointsd.models.config import BackboneConfig
from pointsd.utils import atomic, json_io

STAGE1_FILES = ("ckpt-stage1.pt", "global_proj_model.pt", "adapter_modules.pt")
BACKBONE_CONFIG = "backbone_config.json"
TEACHER_MODES = ("down", "full")


@dataclass
class ResamplerConfig:
    """Perceiver resampler widths (SPEC §3: dim 768, depth 3, head dim 64, 12 heads, FF ×4)."""

    dim: int = 768
    depth: int = 3
    dim_head: int = 64
    heads: int = 12
    ff_mult: int = 4


class Stage1Model(nn.Module):
    """Backbone + global projection + UNet with IP layers; only the UNet's IP layers are trainable in it."""

    def __init__(self, backbone: PointTransformer, unet: UNet2DConditionModel, sdpa: bool = True) -> None:
        super().__init__()
        self.backbone = backbone
        self.global_proj = GlobalProjection(backbone.global_dim, unet.config.cross_attention_dim)
        unet.requires_grad_(False)
        install_ip_adapter(unet, sdpa=sdpa)
        self.unet = unet

    def adapter_modules(self) -> nn.ModuleList:
        """The IP-adapter processors in ``unet.attn_processors`` order (official ``adapter_modules`` layout)."""
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

    def __init__(self, backbone: PointTransformer, target_dim: int, cfg: ResamplerConfig) -> None:
        super().__init__()
        self.backbone = backbone
        self.resampler = perceiver_resampler(
            backbone.global_dim, target_dim, cfg.dim, cfg.depth, cfg.dim_head, cfg.heads, cfg.ff_mult
        )

    def forward(self, neighborhood: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
        global_feature, _ = self.backbone(None, grouped=(neighborhood, center))
        return self.resampler(global_feature.unsqueeze(1)).squeeze(1)


class Stage2Teacher(nn.Module):
    """Frozen stage-1 model; :meth:`forward` gives the last-down-block feature of clean latents at t = 0."""

    def __init__(self, stage1: Stage1Model, mode: str = "down") -> None:
        super().__init__()
        if mode not in TEACHER_MODES:
            raise PointSDError(f"teacher mode must be one of {TEACHER_MODES}, got {mode!r}")
        self.stage1 = stage1.requires_grad_(False).eval()
        self.mode = mode

    @property
    def target_dim(self) -> int:
        return self.stage1.unet.config.block_out_channels[-1]

    def train(self, mode: bool = True) -> Stage2Teacher:
        """The teacher stays in eval mode."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, neighborhood: torch.Tensor, center: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """Clean ``latents (B,4,h,w)`` → target ``(B, C)``; ``full`` runs the whole UNet and hooks the block."""
        states = point_encoder_states(self.stage1.point_tokens(neighborhood, center))
        timesteps = torch.zeros(latents.shape[0], dtype=torch.long, device=latents.device)
        unet = self.stage1.unet
        if self.mode == "down":
            return down_path_feature(unet, latents, timesteps, states)
        return full_forward_feature(unet, latents, timesteps, states)


def full_forward_feature(
    unet: UNet2DConditionModel, latents: torch.Tensor, timesteps: torch.Tensor, encoder_hidden_states: Any
) -> torch.Tensor:
    """The last down block's output captured by a hook during a full UNet forward, pooled to ``(B, C)``."""
    captured: list[torch.Tensor] = []
    handle = unet.down_blocks[-1].register_forward_hook(lambda _m, _i, out: captured.append(out[0]))
    try:
        unet(latents, timesteps, encoder_hidden_states=encoder_hidden_states)
    finally:
        handle.remove()
    return pool_feature(captured[0])


def save_safetensors(path: Path, state: dict[str, torch.Tensor]) -> None:
    """``torch.save`` to ``path`` and a ``.safetensors`` twin, both atomically."""
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    atomic.torch_save(path, state)
    with atomic.atomic_path(path.with_suffix(".safetensors")) as tmp:
        save_file(state, str(tmp))


def save_stage1(out_dir: Path, model: Stage1Model, backbone_cfg: BackboneConfig) -> None:
    """Write ``ckpt-stage1.pt``, ``global_proj_model.pt``, ``adapter_modules.pt`` (+ safetensors) and the config."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_backbone(model.backbone, out_dir / "ckpt-stage1.pt")
    save_safetensors(out_dir / "global_proj_model.pt", model.global_proj.state_dict())
    save_safetensors(out_dir / "adapter_modules.pt", model.adapter_modules().state_dict())
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
    try:
        raw = json_io.read_json(path, "backbone config")
        names = {f.name for f in fields(BackboneConfig)}
        return BackboneConfig(**{k: v for k, v in raw.items() if k in names})
    except (AttributeError, TypeError) as err:
        raise PointSDError(f"{path}: not a backbone config: {err}") from err


def load_stage1(stage1_dir: str | os.PathLike, unet: UNet2DConditionModel, backbone_cfg: BackboneConfig) -> Stage1Model:
    """Rebuild a :class:`Stage1Model` on ``unet`` from the official stage-1 files in ``stage1_dir``."""
    root = Path(stage1_dir)
    for name in STAGE1_FILES:
        if not (root / name).is_file():
            raise PointSDError(f"stage-1 checkpoint missing: {root / name}")
    model = Stage1Model(backbone_cfg.build(), unet)
    report = load_pretrained(model.backbone, root / "ckpt-stage1.pt")
    if report.missing:
        raise PointSDError(f"{root / 'ckpt-stage1.pt'} lacks backbone keys: {report.missing[:5]}")
    for name, module in (("global_proj_model.pt", model.global_proj), ("adapter_modules.pt", model.adapter_modules())):
        path = root / name
        try:
            module.load_state_dict(load_state_file(path))
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise PointSDError(f"{path} does not fit the stage-1 model: {first}") from err
    return model
