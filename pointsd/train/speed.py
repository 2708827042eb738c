"""The one switch between the fast path and the paper's exact fp32 arithmetic: ``--speed fast|exact``.

``fast`` (params.yaml ``speed``, the default) on a CUDA device:
- bf16 autocast (accelerate ``mixed_precision``), TF32 matmuls and convolutions;
- the frozen Stable Diffusion weights (VAE, UNet outside the adapters, the stage-2 teacher) cast to
  bf16 once, so autocast does not re-cast every frozen weight on every step;
- fused AdamW; ``torch.compile`` of the UNet, the teacher and the point models (grouping included: the
  point ops are custom operators, :mod:`pointsd.ops.custom_ops`);
- VAE latent distributions of the unmixed views computed once (:mod:`pointsd.train.latent_cache`);
- no host synchronisation inside a step: the loss is checked for NaN when it is logged (and before
  an evaluation), and the point ops read no values (:func:`pointsd.ops.validate.values_unchecked`);
- data-loader worker processes (the view images decoded once, before they start) and pinned memory.

On the CPU ``fast`` keeps the exact arithmetic (bf16 autocast and compilation measured slower on
the 2-core CPU, benchmarks/RESULTS.md), so both modes give the same numbers there. ``exact``:
fp32, eager, no TF32, foreach AdamW, latents encoded every step — what the official code computes.
Exact, always on: decoded images kept in memory, fixed FPS pools computed once. In both modes a step's
random draws are made on the device of the tensors they apply to (no CPU numbers copied to a GPU).
``--mixed-precision`` and ``--num-workers`` override the plan's choice (``auto``: the plan's).
The plan is written into every metrics file (``meta.speed``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from pointsd.errors import PointSDError
from pointsd.train.presets import PRECISIONS, SPEEDS

MAX_AUTO_WORKERS = 8


@dataclass(frozen=True)
class SpeedPlan:
    """What one training run does for speed on its device (see the module docstring)."""

    speed: str
    mixed_precision: str  # no | bf16 | fp16 (accelerate)
    frozen_bf16: bool  # frozen SD weights cast to bf16 once
    compile: bool
    fused_adamw: bool
    tf32: bool
    cache_latents: bool
    deferred_checks: bool  # NaN check at logging time, not a host sync every step
    num_workers: int
    pin_memory: bool

    def __post_init__(self) -> None:
        if self.speed not in SPEEDS:
            raise PointSDError(f"speed must be one of {'|'.join(SPEEDS)}, got {self.speed!r}")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise PointSDError(f"mixed_precision must be no|bf16|fp16, got {self.mixed_precision!r}")
        if self.frozen_bf16 and self.mixed_precision != "bf16":
            raise PointSDError("frozen weights in bf16 need mixed_precision=bf16 (autocast)")
        if self.num_workers < 0:
            raise PointSDError(f"num_workers must be >= 0, got {self.num_workers}")

    def record(self) -> dict[str, Any]:
        """The plan as written into a metrics file."""
        return asdict(self)

    def adamw(self, params: Iterable[Any], **kwargs: Any) -> torch.optim.AdamW:
        """AdamW over ``params`` (tensors or param groups), fused when the plan says so."""
        if self.fused_adamw:
            return torch.optim.AdamW(params, fused=True, **kwargs)
        return torch.optim.AdamW(params, **kwargs)  # not fused=False: that would also turn foreach off

    def loader_options(self) -> dict[str, Any]:
        """The ``DataLoader`` keyword arguments of the plan: worker processes (kept across epochs), pinned memory."""
        return {"num_workers": self.num_workers, "pin_memory": self.pin_memory,
                "persistent_workers": self.num_workers > 0}

    def apply_matmul_precision(self) -> None:
        """TF32 on (fast) or off (exact) for CUDA matmuls and cuDNN convolutions of this process."""
        torch.backends.cuda.matmul.allow_tf32 = self.tf32
        torch.backends.cudnn.allow_tf32 = self.tf32


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask (a SLURM allocation, a container's cpuset,
    ``taskset``), not the node's count; ``os.cpu_count()`` where the platform has no mask."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def plan_for(speed: str, device: torch.device, mixed_precision: str = "auto",
             num_workers: int | None = None) -> SpeedPlan:
    """The plan of ``speed`` on ``device``; ``mixed_precision`` / ``num_workers`` override it unless
    ``auto`` / ``None``."""
    if mixed_precision not in PRECISIONS:
        raise PointSDError(f"mixed_precision must be one of {'|'.join(PRECISIONS)}, got {mixed_precision!r}")
    gpu_fast = speed == "fast" and device.type == "cuda"
    precision = ("bf16" if gpu_fast else "no") if mixed_precision == "auto" else mixed_precision
    if num_workers is None:  # half the usable cores, shared by the processes of this node
        local_processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
        num_workers = min(MAX_AUTO_WORKERS, usable_cpus() // 2 // local_processes) if gpu_fast else 0
    return SpeedPlan(
        speed=speed, mixed_precision=precision, frozen_bf16=gpu_fast and precision == "bf16",
        compile=gpu_fast, fused_adamw=gpu_fast, tf32=gpu_fast, cache_latents=gpu_fast,
        deferred_checks=gpu_fast, num_workers=num_workers, pin_memory=device.type == "cuda",
    )


def cast_frozen_(module: torch.nn.Module, dtype: torch.dtype) -> int:
    """Cast, in place, every parameter of ``module`` that does not require a gradient to ``dtype``;
    the trainable ones keep theirs. → how many tensors were cast."""
    cast = 0
    for param in module.parameters():
        if not param.requires_grad and param.dtype != dtype and param.is_floating_point():
            param.data = param.data.to(dtype)
            cast += 1
    return cast


def resolve_device(device: str) -> torch.device:
    """``auto|cpu|cuda`` → the device a run will use (accelerate's choice for ``auto``: CUDA when present)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
