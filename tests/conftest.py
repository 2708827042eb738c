"""Session-wide test settings, applied before any test module imports the package.

Without a GPU the Triton kernels can only run in Triton's CPU interpreter, and ``TRITON_INTERPRET``
is read when a kernel is decorated: it is set here, before anything imports ``pointsd_kernels``.
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
