"""``pointsd bench pretrain``: pre-training steps/s and peak memory with the REAL SD v1.5 UNet and VAE
architectures (random weights from the inline configs, nothing downloaded), 64 px images.

Two modes side by side:
- ``reference``: fp32, eager attention, stage-2 target from a full UNet forward (what the official code does);
- ``fast``: bf16 autocast, SDPA attention, down-path-only teacher, ``torch.compile`` of the UNet on CUDA.
The projection is the wall time of the paper schedule (2 stages × 300 epochs × 52,470 ShapeNet-55
shapes) at the measured samples/s on this device.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from pointsd.diffusion.resampler import ResamplerConfig
from pointsd.diffusion.stable_diffusion import (
    SD15_SCHEDULER_CONFIG,
    SD15_UNET_CONFIG,
    SD15_VAE_CONFIG,
    build_unet,
    build_vae,
)
from pointsd.diffusion.stage_models import Stage1Model, Stage2Student
from pointsd.diffusion.teacher import Stage2Teacher
from pointsd.models.config import BackboneConfig
from pointsd.train.pretrain import NoiseConfig, stage1_loss, stage2_loss
from pointsd.utils import json_io
from pointsd.utils.arg_types import positive_int
from pointsd.utils.run_info import run_metadata

MODES = ("reference", "fast")
PAPER_SHAPES = 52_470
PAPER_EPOCHS = 300


@dataclass
class BenchSettings:
    """What one measurement runs."""

    device: torch.device
    batch_size: int
    npoints: int = 1024
    image_size: int = 64
    warmup: int = 1
    steps: int = 3


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench pretrain``."""
    p = bench_subparsers.add_parser("pretrain", help="stage 1 / stage 2 steps/s, SD1.5 architectures, 64 px")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch-size", type=positive_int, default=None, help="default: 64 on CUDA, 2 on CPU")
    p.add_argument("--steps", type=positive_int, default=None, help="timed steps (default: 10 CUDA, 2 CPU)")
    p.add_argument("--warmup", type=positive_int, default=None, help="untimed steps (default: 3 CUDA, 1 CPU)")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_bench)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device: torch.device) -> float:
    """Peak CUDA memory since the last reset, or the process's peak RSS on CPU (MiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _batch(s: BenchSettings) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "points": (torch.rand(s.batch_size, s.npoints, 3, generator=g) - 0.5).to(s.device),
        "image": (torch.rand(s.batch_size, 3, s.image_size, s.image_size, generator=g) * 2 - 1).to(s.device),
    }


def _build(stage: int, mode: str, device: torch.device) -> tuple[torch.nn.Module, Callable[[dict], torch.Tensor]]:
    """Models for ``stage`` in ``mode`` and a loss function of a batch."""
    from diffusers import DDPMScheduler

    torch.manual_seed(0)
    fast = mode == "fast"
    unet = build_unet(SD15_UNET_CONFIG)
    vae = build_vae(SD15_VAE_CONFIG).requires_grad_(False).eval().to(device)
    stage1 = Stage1Model(BackboneConfig(), unet, sdpa=fast).to(device)
    if fast and device.type == "cuda":
        stage1.unet = torch.compile(stage1.unet)
    if stage == 1:
        scheduler = DDPMScheduler.from_config(SD15_SCHEDULER_CONFIG)
        return stage1, lambda batch: stage1_loss(stage1, vae, scheduler, batch, NoiseConfig())
    teacher = Stage2Teacher(stage1, "down" if fast else "full")
    student = Stage2Student(BackboneConfig(), teacher.target_dim, ResamplerConfig()).to(device)
    return student, lambda batch: stage2_loss(student, teacher, vae, batch, 0.5)


def measure(stage: int, mode: str, s: BenchSettings) -> dict[str, Any]:
    """Steps/s, samples/s and peak memory of ``stage`` in ``mode``: forward, backward and AdamW step."""
    trained, loss_fn = _build(stage, mode, s.device)
    params = [p for p in trained.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1.25e-4, weight_decay=1e-2)
    autocast = (torch.autocast(s.device.type, dtype=torch.bfloat16) if mode == "fast"
                else contextlib.nullcontext())
    batch = _batch(s)
    if s.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(s.device)

    def step() -> float:
        with autocast:
            loss = loss_fn(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(s.warmup):
        step()
    _sync(s.device)
    start = time.perf_counter()
    for _ in range(s.steps):
        step()
    _sync(s.device)
    seconds = time.perf_counter() - start
    sps = s.steps / seconds
    return {"stage": stage, "mode": mode, "batch_size": s.batch_size, "steps": s.steps,
            "steps_per_s": sps, "samples_per_s": sps * s.batch_size, "peak_mem_mb": _peak_mb(s.device)}


def projection_hours(samples_per_s_stage1: float, samples_per_s_stage2: float) -> float:
    """Hours for the paper schedule (300 epochs of 52,470 shapes per stage) at these rates."""
    samples = PAPER_EPOCHS * PAPER_SHAPES
    return (samples / samples_per_s_stage1 + samples / samples_per_s_stage2) / 3600


def _bench(args: argparse.Namespace) -> int:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        from pointsd.errors import PointSDError

        raise PointSDError("--device cuda was asked for but no CUDA device is available")
    gpu = device.type == "cuda"
    s = BenchSettings(device=device, batch_size=args.batch_size or (64 if gpu else 2),
                      warmup=args.warmup or (3 if gpu else 1), steps=args.steps or (10 if gpu else 2))
    rows = [measure(stage, mode, s) for stage in (1, 2) for mode in args.modes]
    by = {(r["stage"], r["mode"]): r for r in rows}
    summary: dict[str, Any] = {}
    for mode in args.modes:
        summary[f"projection_hours_{mode}"] = projection_hours(by[1, mode]["samples_per_s"],
                                                               by[2, mode]["samples_per_s"])
    if set(MODES) <= set(args.modes):
        for stage in (1, 2):
            summary[f"speedup_stage{stage}"] = by[stage, "fast"]["steps_per_s"] / by[stage, "reference"]["steps_per_s"]
    meta = run_metadata(profile="bench", protocol="pretrain", seed=0, device=device,
                        batch_size=s.batch_size, image_size=s.image_size, npoints=s.npoints)
    if args.json:
        print(json_io.dumps({"meta": meta, "rows": rows, "summary": summary}))
        return 0
    print(f"device {meta['device']}, batch {s.batch_size}, {s.image_size} px, {s.npoints} points, SD1.5 UNet+VAE")
    print(f"{'stage':>5} {'mode':>10} {'steps/s':>9} {'samples/s':>10} {'peak MiB':>9}")
    for r in rows:
        print(f"{r['stage']:>5} {r['mode']:>10} {r['steps_per_s']:>9.3f} {r['samples_per_s']:>10.2f} "
              f"{r['peak_mem_mb']:>9.0f}")
    for key, value in summary.items():
        print(f"{key}: {value:.2f}")
    return 0
