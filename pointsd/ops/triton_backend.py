"""The ``triton`` backend: the kernels of ``pointsd_kernels`` (CUDA tensors, or CPU tensors under
``TRITON_INTERPRET=1``). Imported only when selected, so triton stays optional."""

from __future__ import annotations

from pointsd_kernels.chamfer import chamfer_nearest
from pointsd_kernels.fps import furthest_point_sample
from pointsd_kernels.interpolate import three_interpolate, three_nn
from pointsd_kernels.knn import knn_with_dist

__all__ = ["chamfer_nearest", "furthest_point_sample", "knn_with_dist", "three_interpolate", "three_nn"]
