"""Triton kernels for point operations (installed as ``pointsd_kernels``).

``fps`` (farthest point sampling), ``knn`` (exact k nearest neighbours), ``chamfer`` (nearest
neighbour both ways), ``interpolate`` (three_nn, three_interpolate): each a kernel and a thin
launcher over contiguous float32 tensors, reached through :mod:`pointsd.ops` (backend
``triton``). Squared distances follow the written order of :mod:`pointsd.ops.reference`
(``(dx*dx + dy*dy) + dz*dz``, compiled without FMA contraction), so indices match it bit for bit. On CPU tensors they run in Triton's interpreter
(``TRITON_INTERPRET=1``, set before importing this package).
"""
