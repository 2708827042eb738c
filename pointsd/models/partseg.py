"""Part segmentation model (SPEC §4, Point-MAE's segmentation network on the PointSD backbone).

Token set: like Point-MAE's segmentation model, the transformer runs on the G patch tokens only,
without a cls token; the model therefore has no ``cls_token`` / ``cls_pos`` parameters (a
pre-trained checkpoint's are reported as unexpected by ``load_pretrained``). Every other backbone
parameter (``encoder``, ``reduce_dim``, ``pos_embed``, ``blocks``, ``norm``) keeps its official name
and shape, so PointSD / Point-MAE backbones load unchanged.

Interpolation follows the official code (PointNet++ feature propagation as in Point-MAE): weights
``1 / (d² + 1e-8)`` of the *squared* distances to the 3 nearest centers, normalised to sum 1.
"""

from __future__ import annotations

import torch
from torch import nn

from pointsd import ops
from pointsd.models.backbone import PatchTransformer
from pointsd.models.config import BackboneConfig


class FeaturePropagation(nn.Module):
    """Inverse-distance interpolation of center features onto points, then a shared 1×1-conv MLP.

    Parameters are named as the official ``propagation_0``: ``mlp_convs.{i}``, ``mlp_bns.{i}``.
    """

    def __init__(self, in_channel: int, mlp: tuple[int, ...]) -> None:
        super().__init__()
        self.mlp_convs = nn.ModuleList()
        self.mlp_bns = nn.ModuleList()
        for out_channel in mlp:
            self.mlp_convs.append(nn.Conv1d(in_channel, out_channel, 1))
            self.mlp_bns.append(nn.BatchNorm1d(out_channel))
            in_channel = out_channel

    def forward(self, xyz: torch.Tensor, center: torch.Tensor, center_features: torch.Tensor) -> torch.Tensor:
        """``xyz (B,N,3)``, ``center (B,G,3)``, ``center_features (B,C,G)`` → ``(B,mlp[-1],N)``.

        The MLP input is ``concat[xyz, interpolated]`` (3 + C channels).
        """
        dist, idx = ops.three_nn(xyz.contiguous(), center.contiguous())
        recip = 1.0 / (dist.square() + 1e-8)
        weight = recip / recip.sum(dim=2, keepdim=True)
        interpolated = ops.three_interpolate(center_features.contiguous(), idx, weight)
        x = torch.cat([xyz.transpose(1, 2), interpolated], dim=1)
        for conv, bn in zip(self.mlp_convs, self.mlp_bns):
            x = torch.relu(bn(conv(x)))
        return x


class PointTransformerPartSeg(PatchTransformer):
    """Backbone trunk + feature propagation + per-point head.

    ``forward(points (B,N,3), category (B,) int64)`` → raw logits ``(B,N,num_parts)``.
    Features: the outputs of blocks ``return_layers`` (0-based; default the ends of each third of the
    depth, ``(3,7,11)`` for depth 12), each normed by ``norm`` → ``F = len(return_layers)*trans_dim``
    channels (1152 for the paper size). Head input: ``fp_dims[-1] + 2F + 64`` (3392 for the paper size).
    """

    def __init__(
        self,
        num_parts: int = 50,
        num_categories: int = 16,
        config: BackboneConfig | None = None,
        return_layers: tuple[int, ...] | None = None,
        fp_dims: tuple[int, ...] | None = None,
    ) -> None:
        """``config``: the trunk's sizes (default SPEC §1 with ``num_group`` 128, the part-segmentation value)."""
        super().__init__(config if config is not None else BackboneConfig(num_group=128))
        depth, trans_dim = self.depth, self.trans_dim
        if return_layers is None:
            if depth < 3:
                raise ValueError(f"depth {depth} < 3: pass return_layers explicitly")
            return_layers = (depth // 3 - 1, 2 * depth // 3 - 1, depth - 1)
        if not return_layers or list(return_layers) != sorted(set(return_layers)) or not (
            0 <= return_layers[0] and return_layers[-1] < depth
        ):
            raise ValueError(f"return_layers {return_layers} must be increasing block indices in [0, {depth})")
        self.num_parts = num_parts
        self.num_categories = num_categories
        self.return_layers = tuple(return_layers)
        feature_dim = len(self.return_layers) * trans_dim
        fp_dims = fp_dims if fp_dims is not None else (4 * trans_dim, 1024)
        self.propagation_0 = FeaturePropagation(feature_dim + 3, tuple(fp_dims))
        self.label_conv = nn.Sequential(
            nn.Conv1d(num_categories, 64, 1, bias=False), nn.BatchNorm1d(64), nn.LeakyReLU(0.2)
        )
        self.convs1 = nn.Conv1d(fp_dims[-1] + 2 * feature_dim + 64, 512, 1)
        self.bns1 = nn.BatchNorm1d(512)
        self.dp1 = nn.Dropout(0.5)
        self.convs2 = nn.Conv1d(512, 256, 1)
        self.bns2 = nn.BatchNorm1d(256)
        self.convs3 = nn.Conv1d(256, num_parts, 1)

    def patch_features(
        self, neighborhood: torch.Tensor, center: torch.Tensor
    ) -> torch.Tensor:
        """Patches → normed multi-level features ``(B,F,G)`` (blocks ``return_layers``, no cls token)."""
        tokens, pos = self.embed(neighborhood, center)
        _, taken = self.blocks(tokens, pos, self.return_layers)
        return torch.cat([self.norm(x) for x in taken], dim=-1).transpose(1, 2)

    def forward(self, points: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        B, N, _ = points.shape
        neighborhood, center = self.group(points)
        features = self.patch_features(neighborhood, center)
        one_hot = nn.functional.one_hot(category.long(), self.num_categories).to(features.dtype)
        global_feature = torch.cat(
            [features.max(dim=2).values.unsqueeze(-1), features.mean(dim=2).unsqueeze(-1),
             self.label_conv(one_hot.unsqueeze(-1))],
            dim=1,
        ).expand(-1, -1, N)
        x = torch.cat([self.propagation_0(points, center, features), global_feature], dim=1)
        x = self.dp1(torch.relu(self.bns1(self.convs1(x))))
        x = torch.relu(self.bns2(self.convs2(x)))
        return self.convs3(x).transpose(1, 2)
