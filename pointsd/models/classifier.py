"""Classification fine-tuning model (SPEC §4): the backbone plus Point-MAE's ``cls_head_finetune``.

The classifier *is* a :class:`PointTransformer` (subclass, not a wrapper), so its state-dict keys
are exactly the official Point-MAE / PointSD fine-tuning keys: the backbone's at top level
(``encoder.*``, ``reduce_dim.*``, ``cls_token``, ``cls_pos``, ``pos_embed.*``, ``blocks.blocks.{i}.*``,
``norm.*``) plus ``cls_head_finetune.{0,1,4,5,8}.*``. The backbone's own forward is ``features``.
"""

from __future__ import annotations

import torch
from torch import nn

from pointsd.models.backbone import PointTransformer, init_weights, point_mae_init_
from pointsd.models.config import BackboneConfig


def classification_head(in_dim: int, cls_dim: int, hidden: int = 256, dropout: float = 0.5) -> nn.Sequential:
    """``Linear → BN → ReLU → Dropout → Linear → BN → ReLU → Dropout → Linear``: ``(B,in_dim)`` → ``(B,cls_dim)``.

    Layer indices 0, 1, 4, 5, 8 carry parameters, as in the official checkpoints.
    """
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, cls_dim),
    )


class PointTransformerClassifier(PointTransformer):
    """Backbone + ``cls_head_finetune``. ``forward(points (B,N,3))`` → logits ``(B,cls_dim)``."""

    def __init__(self, cls_dim: int, config: BackboneConfig | None = None) -> None:
        """``cls_dim`` classes on a backbone of ``config`` (default SPEC §1)."""
        super().__init__(config)
        point_mae_init_(self)  # Point-MAE's fine-tuning model (the backbone weights of a checkpoint replace it)
        self.cls_dim = cls_dim
        self.cls_head_finetune = classification_head(self.global_dim, cls_dim)
        self.cls_head_finetune.apply(init_weights)

    def features(
        self, points: torch.Tensor, grouped: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The backbone's forward: ``(global (B,2D), tokens (B,1+G,D))``."""
        return super().forward(points, grouped)

    def forward(
        self, points: torch.Tensor, grouped: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        global_feature, _ = self.features(points, grouped)
        return self.cls_head_finetune(global_feature)
