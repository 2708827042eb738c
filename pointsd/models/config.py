"""The backbone's constructor arguments as one dataclass, shared by pre-training, fine-tuning and
part segmentation (and written next to every pre-trained checkpoint as ``backbone_config.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pointsd.errors import PointSDError

if TYPE_CHECKING:
    from pointsd.models.backbone import PointTransformer


@dataclass
class BackboneConfig:
    """``PointTransformer`` arguments; the defaults are SPEC §1 (ViT-S: 384 wide, 12 blocks, 6 heads).

    ``patch_width`` is the patch embedding's first width (SPEC: 128, then 256 and 512); the embedded
    default narrows it, as it narrows ``trans_dim``, to fit a CPU budget.
    ``reduce_dim=False`` is Point-MAE's layout: the patch embedding outputs ``trans_dim`` channels
    directly (``encoder_dims == trans_dim``, 384 in Point-MAE) and there is no ``reduce_dim`` layer.
    """

    trans_dim: int = 384
    depth: int = 12
    num_heads: int = 6
    group_size: int = 32
    num_group: int = 64
    encoder_dims: int = 256
    drop_path_rate: float = 0.1
    reduce_dim: bool = True
    patch_width: int = 128

    def validate(self, npoints: int | None = None) -> None:
        """Raise :class:`PointSDError` naming the first inconsistent field (grouping checked against
        ``npoints`` when given)."""
        if npoints is not None and (self.group_size > npoints or self.num_group > npoints):
            raise PointSDError(f"num_group {self.num_group} / group_size {self.group_size} exceed npoints {npoints}")
        if self.trans_dim % self.num_heads:
            raise PointSDError(f"trans_dim {self.trans_dim} is not divisible by num_heads {self.num_heads}")
        if not self.reduce_dim and self.encoder_dims != self.trans_dim:
            raise PointSDError(f"reduce_dim=False (Point-MAE layout) needs encoder_dims == trans_dim, "
                               f"got encoder_dims {self.encoder_dims} and trans_dim {self.trans_dim}")

    def build(self) -> PointTransformer:
        """A fresh :class:`~pointsd.models.backbone.PointTransformer` of this size."""
        from pointsd.models.backbone import PointTransformer

        return PointTransformer(self)
