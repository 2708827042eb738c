"""``pointsd bench finetune``: fine-tuning training samples/s, reference mode against fast mode.

Workloads (SPEC §4, paper backbone 384×12): ScanObjectNN hardest (2048 points, 128 groups of 32,
15 classes, scale + rotation) and ModelNet40 (8192-point clouds → FPS 1.2× → 1024, 64 groups,
40 classes, scale/translate). One timed step = point sampling + augmentation + forward + backward
+ clipping + SGD step, exactly the training step of :mod:`pointsd.train.finetune`.

- ``reference``: fp32, naive torch point ops (``pointsd.ops`` backend ``reference``), eager;
- ``fast``: bf16 autocast, the fast ops backend (``auto``: Triton on CUDA, numba on CPU),
  ``torch.compile`` of the whole model (on CUDA by default; ``--compile`` forces it on CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from pointsd import ops
from pointsd.data import transforms
from pointsd.errors import PointSDError
from pointsd.models.config import BackboneConfig
from pointsd.models.classifier import PointTransformerClassifier
from pointsd.train.finetune import augment_batch
from pointsd.train.supervised import compile_whole_model
from pointsd.utils import json_io
from pointsd.utils.arg_types import positive_int
from pointsd.utils.run_info import run_metadata

MODES = ("reference", "fast")


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
    p = bench_subparsers.add_parser("finetune", help="fine-tuning samples/s: reference vs fast (bf16, kernels)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch-size", type=positive_int, default=None, help="default: 32 on CUDA, 4 on CPU")
    p.add_argument("--steps", type=positive_int, default=None, help="timed steps (default: 10 CUDA, 2 CPU)")
    p.add_argument("--warmup", type=positive_int, default=None, help="untimed steps (default: 3 CUDA, 1 CPU)")
    p.add_argument("--tasks", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--compile", action="store_true", help="torch.compile in fast mode on the CPU too")
    p.add_argument("--trans-dim", type=positive_int, default=384)
    p.add_argument("--depth", type=positive_int, default=12)
    p.add_argument("--num-heads", type=positive_int, default=6)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_bench)


def measure(work: Workload, mode: str, device: torch.device, batch_size: int, warmup: int, steps: int,
            backbone: BackboneConfig, compile_model: bool) -> dict[str, Any]:
    """Training samples/s of ``work`` in ``mode`` on ``device``."""
    torch.manual_seed(0)
    model = PointTransformerClassifier(work.classes, replace(backbone, num_group=work.num_group)).to(device).train()
    if compile_model:
        compile_whole_model(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    points = (torch.rand(batch_size, work.input_points, 3) * 2 - 1).to(device)
    labels = torch.randint(work.classes, (batch_size,)).to(device)
    fast = mode == "fast"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if fast else contextlib.nullcontext()

    def step() -> None:
        x = augment_batch(transforms.fps_subsample(points, work.npoints, 1.2), work.augment)
        with autocast:
            logits = model(x)
        loss = F.cross_entropy(logits.float(), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    with ops.use_backend("auto" if fast else "reference"):
        for _ in range(warmup):
            step()
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        seconds = time.perf_counter() - start
    return {"task": work.name, "mode": mode, "batch_size": batch_size, "steps": steps,
            "ops_backend": ops.backends.resolve(device)[0] if fast else "reference",
            "compiled": compile_model, "samples_per_s": steps * batch_size / seconds}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _bench(args: argparse.Namespace) -> int:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PointSDError("--device cuda was asked for but no CUDA device is available")
    gpu = device.type == "cuda"
    batch, steps, warmup = args.batch_size or (32 if gpu else 4), args.steps or (10 if gpu else 2), \
        args.warmup or (3 if gpu else 1)
    backbone = BackboneConfig(trans_dim=args.trans_dim, depth=args.depth, num_heads=args.num_heads)
    rows = [measure(WORKLOADS[t], mode, device, batch, warmup, steps, backbone,
                    compile_model=mode == "fast" and (gpu or args.compile))
            for t in args.tasks for mode in args.modes]
    speedups = {}
    for t in args.tasks:
        rate = {r["mode"]: r["samples_per_s"] for r in rows if r["task"] == t}
        if set(rate) == set(MODES):
            speedups[t] = rate["fast"] / rate["reference"]
    report = {"meta": run_metadata(profile="bench", protocol="n/a", seed=0, device=device),
              "backbone": asdict(backbone), "rows": rows, "speedup_fast_over_reference": speedups}
    if args.json:
        print(json_io.dumps(report))
        return 0
    print(f"fine-tuning training throughput on {report['meta']['device']} (batch {batch}, {steps} timed steps)")
    print(f"{'task':<14}{'mode':<11}{'ops':<11}{'compiled':<10}{'samples/s':>10}")
    for r in rows:
        print(f"{r['task']:<14}{r['mode']:<11}{r['ops_backend']:<11}{r['compiled']!s:<10}{r['samples_per_s']:>10.2f}")
    for t, s in speedups.items():
        print(f"{t}: fast / reference = {s:.2f}×")
    return 0
