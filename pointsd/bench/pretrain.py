"""``pointsd bench pretrain``: pre-training speed with the REAL SD v1.5 UNet and VAE architectures
(random weights from the inline configs, nothing downloaded), 64 px images, 1024 points, ViT-S.

Two measurements, each in both speed modes (:mod:`pointsd.train.speed`):
- ``step``: one training step on a fixed batch (:func:`pointsd.train.pretrain.stage1_loss` /
  ``stage2_loss``, backward, clipping, AdamW) built as ``pointsd pretrain`` builds it
  (:func:`~pointsd.train.pretrain.build_models`); ``reference`` = ``--speed exact --teacher full``
  (fp32, eager, the stage-2 target from a full UNet forward, as the official code), ``fast`` =
  ``--speed fast --teacher down``;
- ``loop``: ``pointsd pretrain``'s own loop (:func:`~pointsd.train.pretrain.run_pretrain`) over a
  synthetic ULIP-layout render folder: its data loader, augmentation, patch mix, checkpoints and
  probe, stage 1 then stage 2 (from that stage 1). Steady state = the median time between optimiser
  steps; epoch ends (checkpoint, probe) are reported apart.
Timing (:mod:`pointsd.bench.timing`): CUDA events, compilation and recompilations apart, peak memory.
The paper-schedule projection (2 stages × 300 epochs × 52,470 shapes) is made from the steps' rates
(``projection_hours_step_*``: steps alone) and from the loop (``projection_hours_loop_fast``: its steady
rate plus its epoch ends × 300, the ``pretrain.paper_schedule_hours`` target). On CUDA the report carries
issue #11's targets (``pretrain.*``). ``--out FILE`` rewrites the report after every row, so a run cut
short keeps what it measured; ``--work DIR`` keeps the loop's data and stage 1 for a later invocation.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import itertools
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from pointsd.bench.timing import peak_memory_mb, profile_table, time_steps
from pointsd.errors import PointSDError
from pointsd.ops.validate import values_unchecked
from pointsd.utils import json_io
from pointsd.utils.arg_types import positive_int
from pointsd.utils.run_info import run_metadata

MODES = ("reference", "fast")
PAPER_SHAPES = 52_470
PAPER_EPOCHS = 300
SPEEDUP_TARGETS = {1: 3.0, 2: 5.0}  # on one CUDA GPU: fast / reference step rate, per stage
TARGET_HOURS = 3.0  # the paper schedule from the fast loop
LOOP_STEPS_PER_EPOCH = 8  # the loop's synthetic set (rendering it is the slow part): epoch ends are timed apart


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench pretrain``."""
    p = bench_subparsers.add_parser("pretrain", help="stage 1 / stage 2 speed: step and loop, SD1.5 UNet+VAE")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch-size", type=positive_int, default=None, help="default: 64 on CUDA, 2 on CPU")
    p.add_argument("--steps", type=positive_int, default=None, help="timed steps (default: 50 CUDA, 2 CPU)")
    p.add_argument("--warmup", type=positive_int, default=None, help="untimed steps (default: 5 CUDA, 1 CPU)")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--stages", nargs="+", type=int, choices=(1, 2), default=[1, 2],
                   help="stage 2 alone uses a random SPEC-size stage 1 as its teacher")
    p.add_argument("--loop-steps", type=int, default=None,
                   help="optimiser steps of the fast loop per stage (default: 60 CUDA, 0 CPU; 0: no loop)")
    p.add_argument("--profile-steps", type=int, default=0,
                   help="after timing, profile this many steps of each row (top operators in the row)")
    p.add_argument("--work", type=Path, default=None,
                   help="folder for the loop's data and runs (default: a temporary one); reused when present")
    p.add_argument("--out", type=Path, default=None, help="write the report here after every row")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_bench)


def random_sd15() -> Any:
    """A fresh copy of :func:`_random_sd15` (built once per process: a random init takes seconds)."""
    return copy.deepcopy(_random_sd15())


@functools.cache
def _random_sd15() -> Any:
    """The SD v1.5 UNet, VAE and DDPM scheduler with random weights, frozen (as :func:`load_stable_diffusion`)."""
    from diffusers import DDPMScheduler

    from pointsd.diffusion.stable_diffusion import (
        SD15_SCHEDULER_CONFIG,
        SD15_UNET_CONFIG,
        SD15_VAE_CONFIG,
        StableDiffusionParts,
        build_unet,
        build_vae,
    )

    unet, vae = build_unet(SD15_UNET_CONFIG), build_vae(SD15_VAE_CONFIG)
    for model in (unet, vae):
        model.requires_grad_(False).eval()
    return StableDiffusionParts(unet=unet, vae=vae, noise_scheduler=DDPMScheduler.from_config(SD15_SCHEDULER_CONFIG))


def bench_config(stage: int, mode: str, batch_size: int, out: Path, device: torch.device,
                 data_root: Path | None = None) -> Any:
    """The :class:`PretrainConfig` of a benchmark run on ``device`` (SPEC sizes; stage 2 reads ``out/stage1``)."""
    from pointsd.models.config import BackboneConfig
    from pointsd.train.pretrain import NoiseConfig, PretrainConfig
    from pointsd.train.probe import ProbeConfig

    return PretrainConfig(
        stage=stage, sd_dir=out / "sd-not-read", data_root=data_root, stage1_dir=out / "stage1",
        out_dir=out / f"stage{stage}", epochs=1, batch_size=batch_size, lr=1.25e-4, weight_decay=1e-2,
        warmup_epochs=0, grad_clip=1.0, npoints=1024, image_size=64, noise=NoiseConfig(),
        backbone=BackboneConfig(), probe=ProbeConfig(), probe_every=0, progress=False,
        teacher_mode="down" if mode == "fast" else "full", speed="fast" if mode == "fast" else "exact",
        profile="bench", data_profile="synthetic", device=device.type,
    )


def _stage1_folder(out: Path) -> None:
    """A random stage-1 model of SPEC size saved under ``out/stage1`` (the stage-2 teacher)."""
    from pointsd.diffusion.stage_models import Stage1Model, save_stage1
    from pointsd.models.config import BackboneConfig

    if not (out / "stage1" / "adapter_modules.pt").is_file():
        save_stage1(out / "stage1", Stage1Model(BackboneConfig(), random_sd15().unet), BackboneConfig())


class _FixedViews:
    """The views of one fixed batch, for the latent cache of the step benchmark."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images.cpu()

    def __len__(self) -> int:
        return len(self.images)

    def view_image(self, index: int, flip: bool) -> torch.Tensor:
        return self.images[index].flip(-1) if flip else self.images[index]


def _batch(batch_size: int, device: torch.device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"points": (torch.rand(batch_size, 1024, 3, generator=g) - 0.5).to(device),
            "image": (torch.rand(batch_size, 3, 64, 64, generator=g) * 2 - 1).to(device),
            "index": torch.arange(batch_size, device=device),
            "flip": torch.zeros(batch_size, dtype=torch.bool, device=device)}


def measure_step(stage: int, mode: str, device: torch.device, batch_size: int, warmup: int, steps: int,
                 work: Path, profile_steps: int = 0) -> dict[str, Any]:
    """One stage's training step in ``mode`` on a fixed batch → a row (steps/s, start-up, peak memory;
    with ``profile_steps``, the profiler's table of the top operators over that many more steps)."""
    from pointsd.train.latent_cache import LatentCache
    from pointsd.train.pretrain import build_models, make_step

    cfg = bench_config(stage, mode, batch_size, work, device)
    if stage == 2:
        _stage1_folder(work)
    plan = cfg.speed_plan()
    plan.apply_matmul_precision()
    torch.manual_seed(0)
    built = build_models(cfg, plan, device, random_sd15())
    built.model.to(device)
    params = [p for m in built.trained.values() for p in m.parameters()]
    optimizer = plan.adamw(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    batch = _batch(batch_size, device)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if plan.mixed_precision == "bf16"
                else contextlib.nullcontext())
    with autocast:
        cache = LatentCache(built.vae, _FixedViews(batch["image"]), batch_size) if plan.cache_latents else None

    loss_of = make_step(cfg, lambda: autocast, built.model, built, cache)

    def step() -> None:  # the loop's step: no value checks in the point ops on the fast path
        with values_unchecked(plan.deferred_checks):
            loss = loss_of(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    timing = time_steps(step, device, warmup, steps)
    row = {"kind": "step", "stage": stage, "mode": mode, "batch_size": batch_size, "speed": plan.record(),
           "samples_per_s": batch_size * timing.steps_per_s, **asdict(timing), "steps_per_s": timing.steps_per_s}
    if profile_steps:
        row["profile_top_ops"] = profile_table(step, device, profile_steps)
    return row


def _step_clock(device: torch.device) -> tuple[Callable[[int], None], Callable[[], list[float]]]:
    """``on_step`` marking each optimiser step (a CUDA event, or the wall clock) and the intervals (ms)."""
    marks: list[Any] = []

    def on_step(_step: int) -> None:
        if device.type == "cuda":
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            marks.append(event)
        else:
            marks.append(time.perf_counter())

    def intervals() -> list[float]:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            return [a.elapsed_time(b) for a, b in itertools.pairwise(marks)]
        return [(b - a) * 1000.0 for a, b in itertools.pairwise(marks)]

    return on_step, intervals


def loop_data(work: Path, shapes: int) -> Path:
    """Synthetic SPEC §5 data with ``shapes`` ShapeNet-55 training clouds and one 64-px view each → its
    root, ``work/data`` (kept: a complete one from an earlier invocation is used as it is)."""
    from pointsd.data.paths import SHAPENET55, ULIP_RENDERS
    from pointsd.data.render_dataset import render_dataset
    from pointsd.data.synth import synthesize
    from pointsd.data.synth.sizes import sizes_for

    root = work / "data"
    done = work / f"data-{shapes}-shapes.done"
    if done.is_file():
        return root
    shutil.rmtree(root, ignore_errors=True)
    synthesize(root, sizes_for("tiny", shapenet_train=shapes, shapenet_test=8, shapenet_points=2048), seed=0)
    pc = root / SHAPENET55
    render_dataset(pc / "shapenet_pc", root / ULIP_RENDERS, views=1, size=64, seed=0,
                   split_list=pc / "ShapeNet-55" / "train.txt")
    done.touch()
    return root


def measure_loop(stage: int, device: torch.device, batch_size: int, steps: int, data_root: Path,
                 work: Path) -> dict[str, Any]:
    """``run_pretrain`` of ``stage`` (fast) for about ``steps`` optimiser steps → a row; epoch ends apart."""
    from pointsd.train.pretrain import default_datasets, run_pretrain

    if stage == 2 and not (work / "stage1" / "ckpt-stage1.pt").is_file():
        _stage1_folder(work)
    cfg = replace(bench_config(stage, "fast", batch_size, work, device, data_root), overwrite=True)
    train_set, probe = default_datasets(cfg)
    per_epoch = len(train_set) // batch_size
    cfg.epochs = max(1, -(-steps // per_epoch))
    on_step, intervals = _step_clock(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    run_pretrain(cfg, train_set, probe, sd=random_sd15(), on_step=on_step)
    wall = time.perf_counter() - start
    gaps = intervals()
    boundary = {i for i in range(len(gaps)) if (i + 1) % per_epoch == 0}  # the gap after an epoch's last step
    inner = [g for i, g in enumerate(gaps) if i not in boundary] or gaps
    median = statistics.median(inner)
    epoch_end = [g - median for i, g in enumerate(gaps) if i in boundary]
    return {"kind": "loop", "stage": stage, "mode": "fast", "batch_size": batch_size,
            "steps": len(gaps) + 1, "epochs": cfg.epochs, "steps_per_epoch": per_epoch,
            "median_ms": median, "steps_per_s": 1000.0 / median, "samples_per_s": batch_size * 1000.0 / median,
            "epoch_end_s": statistics.fmean(epoch_end) / 1000.0 if epoch_end else None,
            "wall_s": wall, "startup_s": max(0.0, wall - sum(gaps) / 1000.0), "peak_mem_mb": peak_memory_mb(device),
            "speed": cfg.speed_plan().record()}


def projection_hours(samples_per_s_stage1: float, samples_per_s_stage2: float) -> float:
    """Hours for the paper schedule (300 epochs of 52,470 shapes per stage) at these rates."""
    samples = PAPER_EPOCHS * PAPER_SHAPES
    return (samples / samples_per_s_stage1 + samples / samples_per_s_stage2) / 3600


def summarise(rows: list[dict[str, Any]]) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Speed-ups, projections and issue #11's pre-training targets from ``rows``."""
    rate = {(r["kind"], r["stage"], r["mode"]): r["samples_per_s"] for r in rows}
    epoch_end = sum(r.get("epoch_end_s") or 0.0 for r in rows if r["kind"] == "loop")  # both stages'
    summary: dict[str, float] = {}
    for stage in (1, 2):
        if ("step", stage, "fast") in rate and ("step", stage, "reference") in rate:
            summary[f"speedup_stage{stage}"] = rate["step", stage, "fast"] / rate["step", stage, "reference"]
    for kind in ("step", "loop"):
        for mode in MODES:
            if (kind, 1, mode) in rate and (kind, 2, mode) in rate:
                hours = projection_hours(rate[kind, 1, mode], rate[kind, 2, mode])
                summary[f"projection_hours_{kind}_{mode}"] = hours + (
                    PAPER_EPOCHS * epoch_end / 3600 if kind == "loop" else 0.0)
    targets = [_target(f"pretrain.stage{stage}.speedup", summary[f"speedup_stage{stage}"], target, at_least=True)
               for stage, target in SPEEDUP_TARGETS.items() if f"speedup_stage{stage}" in summary]
    if "projection_hours_loop_fast" in summary:
        targets.append(_target("pretrain.paper_schedule_hours", summary["projection_hours_loop_fast"],
                               TARGET_HOURS, at_least=False))
    return summary, targets


def _target(name: str, measured: float, target: float, at_least: bool) -> dict[str, Any]:
    return {"name": name, "measured": measured, "target": target,
            "met": measured >= target if at_least else measured <= target}


def _bench(args: argparse.Namespace) -> int:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PointSDError("--device cuda was asked for but no CUDA device is available")
    gpu = device.type == "cuda"
    batch = args.batch_size or (64 if gpu else 2)
    warmup, steps = args.warmup or (5 if gpu else 1), args.steps or (50 if gpu else 2)
    loop_steps = args.loop_steps if args.loop_steps is not None else (60 if gpu else 0)
    meta = run_metadata(profile="bench", protocol="pretrain", seed=0, device=device, batch_size=batch,
                        image_size=64, npoints=1024)
    rows: list[dict[str, Any]] = []

    def report(row: dict[str, Any]) -> dict[str, Any]:
        rows.append(row)
        summary, targets = summarise(rows)
        doc = {"meta": meta, "rows": rows, "summary": summary, "targets": targets if gpu else []}
        if args.out is not None:
            json_io.write_json(args.out, doc)
        return doc

    doc = {"meta": meta, "rows": rows, "summary": {}, "targets": []}
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pointsd-bench-")))
        for stage in args.stages:
            for mode in args.modes:
                doc = report(measure_step(stage, mode, device, batch, warmup, steps, work / "step", args.profile_steps))
        if loop_steps > 0:
            root = loop_data(work, shapes=batch * LOOP_STEPS_PER_EPOCH)
            for stage in args.stages:
                doc = report(measure_loop(stage, device, batch, loop_steps, root, work / "loop"))
    if args.json:
        print(json_io.dumps(doc))
        return 0
    print(f"device {meta['device']}, batch {batch}, 64 px, 1024 points, SD1.5 UNet+VAE, ViT-S")
    print(f"{'kind':>5} {'stage':>5} {'mode':>10} {'steps/s':>9} {'samples/s':>10} {'start-up s':>10} {'peak MiB':>9}")
    for r in rows:
        print(f"{r['kind']:>5} {r['stage']:>5} {r['mode']:>10} {r['steps_per_s']:>9.3f} {r['samples_per_s']:>10.2f} "
              f"{r['startup_s']:>10.1f} {r['peak_mem_mb']:>9.0f}")
    for key, value in doc["summary"].items():
        print(f"{key}: {value:.2f}")
    return 0
