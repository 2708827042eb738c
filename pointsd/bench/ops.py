"""``pointsd bench ops``: point ops, op × size × implementation → median ms, speed-up, exactness.

Every implementation's output is compared with the naive reference (``torch.equal`` on indices
and distances). Fast backends run through the public :mod:`pointsd.ops` (validation included)
and are called once untimed first (numba / Triton compilation); then each repeat times one call
of every implementation in turn, and the median is reported. The reference runs in batch chunks
of at most ``2**26`` point pairs so that its broadcasts fit in memory (the same work, split).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch

from pointsd import ops
from pointsd.cli._args import positive_int
from pointsd.errors import PointSDError
from pointsd.ops import reference
from pointsd.utils.run_info import run_metadata

PAIR_BUDGET = 2**26
FULL_BATCH = 32
# Speed-up over the naive reference the fast CPU path must reach at batch 32 (the targets).
CPU_TARGETS = {("fps", "8192->1024"): 40.0, ("knn", "2048->128 k=32"): 4.0,
               ("chamfer", "1024x1024"): 8.0, ("three_nn", "2048x128"): 10.0}
SEED = 0


@dataclass
class Case:
    """One op at one size: ``run(impl_ops, batch_slice)`` maps an ops namespace to the outputs."""

    op: str
    size: str
    pairs_per_item: int
    run: Callable[..., tuple[torch.Tensor, ...]]


@dataclass
class Row:
    """One table line."""

    op: str
    size: str
    batch: int
    impl: str
    median_ms: float
    speedup: float
    exact: bool
    target: float | None


class _Reference:
    """The naive reference with the public ops' call shapes."""

    furthest_point_sample = staticmethod(reference.furthest_point_sample)
    knn_with_dist = staticmethod(reference.knn_with_dist)
    three_nn = staticmethod(reference.three_nn)
    chamfer_distance = staticmethod(reference.chamfer_distance)


def _chunked(case: Case, inputs_batch: int) -> Callable[[], tuple[torch.Tensor, ...]]:
    """The reference call of ``case``, split over the batch to stay under :data:`PAIR_BUDGET`."""
    step = max(1, PAIR_BUDGET // max(case.pairs_per_item, 1))

    def call() -> tuple[torch.Tensor, ...]:
        parts = [case.run(_Reference, slice(lo, lo + step)) for lo in range(0, inputs_batch, step)]
        return tuple(torch.cat(chunk) for chunk in zip(*parts))

    return call


def cases(batch: int, device: torch.device) -> list[Case]:
    """The issue's sizes: FPS and KNN (k=32, query = FPS centres), three_nn, chamfer."""
    gen = torch.Generator().manual_seed(SEED)
    out: list[Case] = []
    for N, n in [(1024, 64), (2048, 128), (8192, 1024)]:
        xyz = torch.randn(batch, N, 3, generator=gen).to(device)
        centres = reference.gather(xyz, ops.furthest_point_sample(xyz, n))
        out.append(Case("fps", f"{N}->{n}", N,
                        lambda o, s=slice(None), x=xyz, n=n: (o.furthest_point_sample(x[s], n),)))
        out.append(Case("knn", f"{N}->{n} k=32", N * n,
                        lambda o, s=slice(None), q=centres, x=xyz: o.knn_with_dist(q[s], x[s], 32)))
    pts = torch.randn(batch, 2048, 3, generator=gen).to(device)
    known = reference.gather(pts, ops.furthest_point_sample(pts, 128))
    out.append(Case("three_nn", "2048x128", 2048 * 128,
                    lambda o, s=slice(None): o.three_nn(pts[s], known[s])))
    x = torch.randn(batch, 1024, 3, generator=gen).to(device)
    y = torch.randn(batch, 1024, 3, generator=gen).to(device)
    out.append(Case("chamfer", "1024x1024", 1024 * 1024,
                    lambda o, s=slice(None): o.chamfer_distance(x[s], y[s])))
    return out


def _time_once(fn: Callable[[], tuple[torch.Tensor, ...]], device: torch.device
               ) -> tuple[float, tuple[torch.Tensor, ...]]:
    """Wall time (ms) of one call of ``fn`` and its output."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) * 1e3, out


def _with_backend(name: str, case: Case) -> Callable[[], tuple[torch.Tensor, ...]]:
    """``case`` run through the public ops with backend ``name``."""

    def call() -> tuple[torch.Tensor, ...]:
        with ops.use_backend(name):
            return case.run(ops)

    return call


def fast_backends(device: torch.device) -> list[str]:
    """The implementations compared with the reference on ``device``."""
    if device.type == "cpu":
        return ["cpu"]
    names = ["triton"]
    if importlib.util.find_spec("pointnet2_ops") is not None:
        names.append("pointnet2_ops")
    return names


def benchmark(device: torch.device, batch: int, repeats: int) -> list[Row]:
    """Time every case with the reference and each fast backend; check exactness.

    Calls are interleaved (reference, fast, reference, fast, …) so that a change of machine load
    during the run affects both sides of each speed-up alike.
    """
    rows: list[Row] = []
    for case in cases(batch, device):
        impls = {"reference": _chunked(case, batch)}
        for name in fast_backends(device):
            try:
                _with_backend(name, case)()  # warm-up: numba / Triton compilation is not timed
            except PointSDError:
                continue  # this backend does not provide the op
            impls[name] = _with_backend(name, case)
        times: dict[str, list[float]] = {name: [] for name in impls}
        outputs: dict[str, tuple[torch.Tensor, ...]] = {}
        for _ in range(repeats):
            for name, call in impls.items():
                ms, out = _time_once(call, device)
                times[name].append(ms)
                outputs.setdefault(name, out)
        ref_ms = statistics.median(times["reference"])
        for name in impls:
            ms = statistics.median(times[name])
            exact = all(torch.equal(a, b) for a, b in zip(outputs[name], outputs["reference"]))
            full_size = batch == FULL_BATCH
            target = CPU_TARGETS.get((case.op, case.size)) if name == "cpu" and full_size else None
            rows.append(Row(case.op, case.size, batch, name, round(ms, 3), round(ref_ms / ms, 2), exact, target))
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table of ``rows``."""
    lines = ["| op | size | B | impl | median ms | speed-up vs reference | exact | target |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        target = "" if r.target is None else f"≥{r.target:g}× {'met' if r.speedup >= r.target else 'MISSED'}"
        lines.append(f"| {r.op} | {r.size} | {r.batch} | {r.impl} | {r.median_ms:.2f} | {r.speedup:.1f}× "
                     f"| {'yes' if r.exact else 'NO'} | {target} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Handler of ``pointsd bench ops``."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PointSDError("--device cuda: no CUDA device is available")
    batch = 1 if args.quick else FULL_BATCH
    with torch.no_grad():
        rows = benchmark(device, batch, args.repeats)
    meta = run_metadata(profile="quick" if args.quick else "full", protocol="bench-ops", seed=SEED,
                        device=device, torch_threads=torch.get_num_threads())
    if args.json:
        print(json.dumps({"bench": "ops", "meta": meta, "rows": [asdict(r) for r in rows]}, indent=2))
    else:
        print(f"# pointsd bench ops — {meta['device']}, torch threads {meta['torch_threads']}, {meta['date']}")
        print(format_table(rows))
    return 0 if all(r.exact for r in rows) else 1


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    """Add ``pointsd bench ops``."""
    p = bench_subparsers.add_parser("ops", help="point ops: naive reference vs fast backends")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    p.add_argument("--repeats", type=positive_int, default=5, help="timed calls per cell (median)")
    p.add_argument("--quick", action="store_true", help="batch 1 instead of 32: a smoke test")
    p.set_defaults(func=run)
