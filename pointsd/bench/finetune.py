"""``pointsd bench finetune``: fine-tuning training samples/s, the paper's step against the fast path.

Workloads (SPEC §4, paper backbone 384×12): ScanObjectNN hardest (2048 points, 128 groups of 32,
15 classes, scale + rotation) and ModelNet40 (8192-point clouds → FPS 1.2× → 1024, 64 groups,
40 classes, scale/translate). One timed step = point sampling + augmentation + forward + backward
+ clipping + SGD step, the training step of :mod:`pointsd.train.finetune`.

- ``reference``: fp32, naive torch point ops (``pointsd.ops`` backend ``reference``), eager, the FPS
  of every training cloud recomputed every step (what the official code does);
- ``fast``: what ``pointsd finetune --speed fast`` runs on the device (:mod:`pointsd.train.speed`):
  the fast ops backend, each cloud's FPS pool computed once, on CUDA bf16 autocast, TF32 and
  ``torch.compile`` of the whole model (grouping included: the point ops are custom ops), random
  draws on the device.
Timing (:mod:`pointsd.bench.timing`): CUDA events per step, compilation reported apart. On CUDA the
rows carry issue #11's targets (``finetune.<task>.*``).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from pointsd import ops
from pointsd.bench.timing import time_steps
from pointsd.data import transforms
from pointsd.errors import PointSDError
from pointsd.models.classifier import PointTransformerClassifier
from pointsd.models.config import BackboneConfig
from pointsd.ops.validate import values_unchecked
from pointsd.train.finetune import augment_batch, fps_pool, training_points
from pointsd.train.speed import SpeedPlan, plan_for
from pointsd.utils import json_io
from pointsd.utils.arg_types import positive_int
from pointsd.utils.run_info import run_metadata

MODES = ("reference", "fast")
# issue #11 on CUDA, batch 32: (task, what, target); what: fast/reference speed-up or fast samples/s
TARGETS = (("scan_hardest", "speedup", 3.0), ("scan_hardest", "samples_per_s", 3000.0),
           ("modelnet40", "speedup", 4.0))


@dataclass(frozen=True)
class Workload:
    """One benchmarked task: input cloud size, sampled points, grouping, classes, augmentation."""

    name: str
    input_points: int
    npoints: int
    num_group: int
    classes: int
    augment: str


WORKLOADS = {
    "scan_hardest": Workload("scan_hardest", 2048, 2048, 128, 15, "scale_rotate"),
    "modelnet40": Workload("modelnet40", 8192, 1024, 64, 40, "scale_translate"),
}


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench finetune``."""
    p = bench_subparsers.add_parser("finetune", help="fine-tuning samples/s: the paper's step vs the fast path")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch-size", type=positive_int, default=None, help="default: 32 on CUDA, 4 on CPU")
    p.add_argument("--steps", type=positive_int, default=None, help="timed steps (default: 50 CUDA, 2 CPU)")
    p.add_argument("--warmup", type=positive_int, default=None, help="untimed steps (default: 5 CUDA, 1 CPU)")
    p.add_argument("--tasks", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--trans-dim", type=positive_int, default=384)
    p.add_argument("--depth", type=positive_int, default=12)
    p.add_argument("--num-heads", type=positive_int, default=6)
    p.add_argument("--out", type=Path, default=None, help="write the report here after every row")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_bench)


def _training_step(work: Workload, plan: SpeedPlan, model: torch.nn.Module, clouds: torch.Tensor,
                   labels: torch.Tensor, fast: bool) -> Callable[[], None]:
    """One training step of ``model`` on ``clouds (B, input_points, 3)``, as ``mode`` runs it."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    autocast = (torch.autocast(clouds.device.type, dtype=torch.bfloat16) if plan.mixed_precision == "bf16"
                else contextlib.nullcontext())
    if fast:  # each cloud's pool once, as pointsd finetune builds it
        pool = fps_pool(TensorDataset(clouds.cpu(), labels.cpu()), work.npoints, 1.2, clouds.device,
                        len(clouds), training=True)[0].to(clouds.device)

    def sample() -> torch.Tensor:
        if fast:
            return training_points(pool, work.npoints, work.augment)
        return augment_batch(transforms.fps_subsample(clouds, work.npoints, 1.2), work.augment)

    def step() -> None:  # the loop's step: no value checks in the point ops on the fast path
        with values_unchecked(plan.deferred_checks):
            x = sample()
            with autocast:
                logits = model(x)
        loss = F.cross_entropy(logits.float(), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def measure(work: Workload, mode: str, device: torch.device, batch_size: int, warmup: int, steps: int,
            backbone: BackboneConfig) -> dict[str, Any]:
    """Training samples/s of ``work`` in ``mode`` on ``device`` (a :mod:`pointsd.bench.timing` row)."""
    fast = mode == "fast"
    plan = plan_for("fast" if fast else "exact", device)
    plan.apply_matmul_precision()
    torch.manual_seed(0)
    model = PointTransformerClassifier(work.classes, replace(backbone, num_group=work.num_group)).to(device).train()
    if plan.compile:
        model.compile()
    clouds = (torch.rand(batch_size, work.input_points, 3) * 2 - 1).to(device)
    labels = torch.randint(work.classes, (batch_size,)).to(device)
    with ops.use_backend("auto" if fast else "reference"):
        timing = time_steps(_training_step(work, plan, model, clouds, labels, fast), device, warmup, steps)
    return {"task": work.name, "mode": mode, "batch_size": batch_size,
            "ops_backend": ops.backends.resolve(device)[0] if fast else "reference",
            "compiled": plan.compile, "mixed_precision": plan.mixed_precision,
            "samples_per_s": batch_size * timing.steps_per_s, **asdict(timing)}


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue #11's fine-tuning targets judged on ``rows`` (those whose rows are present)."""
    rate = {(r["task"], r["mode"]): r["samples_per_s"] for r in rows}
    found = []
    for task, what, target in TARGETS:
        if (task, "fast") not in rate or (what == "speedup" and (task, "reference") not in rate):
            continue
        measured = rate[task, "fast"] / rate[task, "reference"] if what == "speedup" else rate[task, "fast"]
        found.append({"name": f"finetune.{task}.{what}", "measured": measured, "target": target,
                      "met": measured >= target})
    return found


def _report(rows: list[dict[str, Any]], device: torch.device, backbone: BackboneConfig, gpu: bool) -> dict[str, Any]:
    """The bench's JSON document for the ``rows`` measured so far."""
    speedups = {}
    for task in dict.fromkeys(r["task"] for r in rows):
        rate = {r["mode"]: r["samples_per_s"] for r in rows if r["task"] == task}
        if set(rate) == set(MODES):
            speedups[task] = rate["fast"] / rate["reference"]
    return {"meta": run_metadata(profile="bench", protocol="n/a", seed=0, device=device),
            "backbone": asdict(backbone), "rows": rows, "speedup_fast_over_reference": speedups,
            "targets": targets(rows) if gpu else []}


def _bench(args: argparse.Namespace) -> int:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PointSDError("--device cuda was asked for but no CUDA device is available")
    gpu = device.type == "cuda"
    batch, steps, warmup = args.batch_size or (32 if gpu else 4), args.steps or (50 if gpu else 2), \
        args.warmup or (5 if gpu else 1)
    backbone = BackboneConfig(trans_dim=args.trans_dim, depth=args.depth, num_heads=args.num_heads)
    rows: list[dict[str, Any]] = []
    for t in args.tasks:
        for mode in args.modes:
            rows.append(measure(WORKLOADS[t], mode, device, batch, warmup, steps, backbone))
            report = _report(rows, device, backbone, gpu)
            if args.out is not None:  # after every row: a run cut short keeps what it measured
                json_io.write_json(args.out, report)
    speedups = report["speedup_fast_over_reference"]
    if args.json:
        print(json_io.dumps(report))
        return 0
    print(f"fine-tuning training throughput on {report['meta']['device']} (batch {batch}, {steps} timed steps)")
    print(f"{'task':<14}{'mode':<11}{'ops':<11}{'compiled':<10}{'samples/s':>10}{'start-up s':>11}{'peak MiB':>9}")
    for r in rows:
        print(f"{r['task']:<14}{r['mode']:<11}{r['ops_backend']:<11}{r['compiled']!s:<10}{r['samples_per_s']:>10.2f}"
              f"{r['startup_s']:>11.2f}{r['peak_mem_mb']:>9.0f}")
    for t, s in speedups.items():
        print(f"{t}: fast / reference = {s:.2f}×")
    return 0
