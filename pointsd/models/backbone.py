"""The Point-MAE / Point-BERT point transformer ("ViT-S for points"), SPEC §1.

Parameter names match the public checkpoints (PointSD ``ckpt-stage2.pt``, Point-MAE), so they
load without renaming: ``encoder.*``, ``reduce_dim.*``, ``cls_token``, ``cls_pos``,
``pos_embed.*``, ``blocks.blocks.{i}.*``, ``norm.*``.

Every layer starts at PyTorch's default initialisation, ``cls_token`` at 0 and ``cls_pos`` ~ N(0, 1), as
in the official PointSD pre-training (``pointbert/point_encoder.py``) and Point-MAE's segmentation
trunk; the classifier applies Point-MAE's truncated-normal init itself (:func:`point_mae_init_`).
"""

from __future__ import annotations

import torch
from torch import nn

from pointsd import ops
from pointsd.errors import PointSDError
from pointsd.models.config import BackboneConfig


class Group(nn.Module):
    """FPS picks ``num_group`` centers; each center's ``group_size`` nearest points form a patch.

    ``xyz (B,N,3)`` → ``neighborhood (B,G,K,3)`` (relative to the center), ``center (B,G,3)``.
    """

    def __init__(self, num_group: int, group_size: int) -> None:
        super().__init__()
        self.num_group = num_group
        self.group_size = group_size

    def forward(self, xyz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        center = ops.gather(xyz, ops.furthest_point_sample(xyz, self.num_group))
        idx = ops.knn(center, xyz, self.group_size)
        neighborhood = ops.gather(xyz, idx) - center.unsqueeze(2)
        return neighborhood, center


class PatchEmbedding(nn.Module):
    """Mini-PointNet shared over patches: ``(B,G,K,3)`` → ``(B,G,C_enc)``.

    Widths ``3 → w → 2w``, then ``4w → 4w → C_enc``; SPEC §1 is ``w = 128`` (the official layout).
    """

    def __init__(self, encoder_channel: int, width: int = 128) -> None:
        super().__init__()
        self.encoder_channel = encoder_channel
        self.first_conv = nn.Sequential(
            nn.Conv1d(3, width, 1), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Conv1d(width, 2 * width, 1)
        )
        self.second_conv = nn.Sequential(
            nn.Conv1d(4 * width, 4 * width, 1), nn.BatchNorm1d(4 * width), nn.ReLU(inplace=True),
            nn.Conv1d(4 * width, encoder_channel, 1),
        )

    def forward(self, neighborhood: torch.Tensor) -> torch.Tensor:
        B, G, K, _ = neighborhood.shape
        feature = self.first_conv(neighborhood.reshape(B * G, K, 3).transpose(2, 1))
        pooled = feature.max(dim=2, keepdim=True).values
        feature = self.second_conv(torch.cat([pooled.expand(-1, -1, K), feature], dim=1))
        return feature.max(dim=2).values.reshape(B, G, self.encoder_channel)


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample with probability ``p``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep if keep > 0.0 else x * mask


class Mlp(nn.Module):
    """``fc1 → GELU → fc2``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention, qkv without bias, scale ``head_dim ** -0.5`` (SDPA kernel)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    """Pre-norm transformer block with stochastic depth."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class TransformerEncoder(nn.Module):
    """``depth`` blocks; the positional embedding is added before every block."""

    def __init__(self, dim: int, depth: int, num_heads: int, drop_path_rate: float) -> None:
        super().__init__()
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList([Block(dim, num_heads, drop_path=r) for r in rates])

    def forward(
        self, x: torch.Tensor, pos: torch.Tensor, return_layers: tuple[int, ...] = ()
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``x, pos (B,T,D)`` → final ``(B,T,D)`` and the outputs of blocks ``return_layers`` (0-based)."""
        taken: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            x = block(x + pos)
            if i in return_layers:
                taken.append(x)
        return x, taken


class PatchTransformer(nn.Module):
    """The shared trunk of SPEC §1 without the cls token: grouping, patch embedding, ``reduce_dim``,
    positional embedding, blocks and final ``norm``. Point-MAE's segmentation model uses it as is.
    ``config.reduce_dim=False`` drops the ``reduce_dim`` layer (Point-MAE's layout, ``encoder_dims == trans_dim``).
    """

    def __init__(self, config: BackboneConfig | None = None) -> None:
        """``config``: the sizes (validated; :class:`PointSDError` names a bad field); default SPEC §1."""
        super().__init__()
        config = config if config is not None else BackboneConfig()
        config.validate()
        self.config = config
        self.trans_dim = config.trans_dim
        self.depth = config.depth
        self.group_divider = Group(config.num_group, config.group_size)
        self.encoder = PatchEmbedding(config.encoder_dims, config.patch_width)
        self.reduce_dim = nn.Linear(config.encoder_dims, config.trans_dim) if config.reduce_dim else nn.Identity()
        self.pos_embed = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, config.trans_dim))
        self.blocks = TransformerEncoder(config.trans_dim, config.depth, config.num_heads, config.drop_path_rate)
        self.norm = nn.LayerNorm(config.trans_dim)

    def group(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``points (B,N,3)`` → ``neighborhood (B,G,K,3)``, ``center (B,G,3)``."""
        return self.group_divider(points)

    def embed(self, neighborhood: torch.Tensor, center: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Patches ``(B,G,K,3)``, centers ``(B,G,3)`` → patch tokens and positions, both ``(B,G,D)``."""
        return self.reduce_dim(self.encoder(neighborhood)), self.pos_embed(center)


class PointTransformer(PatchTransformer):
    """The backbone of SPEC §1: the trunk plus a cls token (``cls_token``, ``cls_pos``).

    ``forward(points (B,N,3))`` → ``(global_feature (B, 2*trans_dim), tokens (B, 1+G, trans_dim))``.
    Pass ``grouped=(neighborhood, center)`` to skip grouping (patch mix sits between the two).
    """

    def __init__(self, config: BackboneConfig | None = None) -> None:
        super().__init__(config)
        trans_dim = self.trans_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, trans_dim))
        self.cls_pos = nn.Parameter(torch.randn(1, 1, trans_dim))

    @property
    def global_dim(self) -> int:
        """Width of the global feature: ``2 * trans_dim``."""
        return 2 * self.trans_dim

    def encode(
        self, neighborhood: torch.Tensor, center: torch.Tensor, return_layers: tuple[int, ...] = ()
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Patches → normalised tokens ``(B,1+G,D)`` and the raw outputs of blocks ``return_layers``."""
        tokens, pos = self.embed(neighborhood, center)
        B = tokens.shape[0]
        x = torch.cat([self.cls_token.expand(B, -1, -1), tokens], dim=1)
        pos = torch.cat([self.cls_pos.expand(B, -1, -1), pos], dim=1)
        x, taken = self.blocks(x, pos, return_layers)
        return self.norm(x), taken

    def forward(
        self, points: torch.Tensor, grouped: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        neighborhood, center = grouped if grouped is not None else self.group(points)
        x, _ = self.encode(neighborhood, center)
        global_feature = torch.cat([x[:, 0], x[:, 1:].max(dim=1).values], dim=-1)
        return global_feature, x


def point_mae_init_(model: nn.Module) -> None:
    """Point-MAE's from-scratch initialisation of a trunk (its fine-tuning models): :func:`init_weights` on
    every layer and truncated normal (std 0.02) ``cls_token`` / ``cls_pos`` when present. PointSD's
    pre-training does not call it: its backbone starts at PyTorch's default (SPEC §1)."""
    model.apply(init_weights)
    for name in ("cls_token", "cls_pos"):
        if isinstance(getattr(model, name, None), nn.Parameter):
            nn.init.trunc_normal_(getattr(model, name), std=0.02)


def pytorch_default_init_(model: PointTransformer) -> None:
    """Put ``model``'s trunk back at the initialisation PointSD's pre-training starts from: the weights of a
    fresh :class:`PointTransformer` of the same config (drawn from the global RNG). Other modules of
    ``model`` (a classification head) keep theirs."""
    unexpected = model.load_state_dict(PointTransformer(model.config).state_dict(), strict=False).unexpected_keys
    if unexpected:
        raise PointSDError(f"{type(model).__name__} lacks trunk parameters {unexpected[:5]}")


def init_weights(module: nn.Module) -> None:
    """Point-MAE initialisation: truncated normal (std 0.02) for linear and conv weights, zero biases."""
    if isinstance(module, (nn.Linear, nn.Conv1d)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
