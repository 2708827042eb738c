"""``pointsd bench ops``: point ops, op × size × implementation → median ms, speed-up, exactness.

Every implementation's output is compared with the naive reference (``torch.equal`` on indices
and distances). Fast backends run through the public :mod:`pointsd.ops` (validation included,
``median_ms``) and, apart, straight on the backend with validation skipped (``kernel_ms``); both
are called once untimed first (numba / Triton compilation); then each repeat times one call of
every implementation in turn, and the median is reported. The reference runs in batch chunks of at
most ``2**26`` point pairs so that its broadcasts fit in memory (the same work, split).
On CUDA, calls are timed with CUDA events, and two baselines join: ``cdist+topk`` for KNN (torch's
``cdist`` then ``topk``, not exact by design) and the upstream ``pointnet2_ops`` when importable.
Only the project's own backends must be exact for the command to exit 0. :data:`TARGETS` are the
issue's speed targets, evaluated at the full batch as ``ops.<op>.<size>.vs_<baseline>``, on calls that
validate nothing on either side (``kernel_ms`` where a backend has one; the reference and ``cdist+topk``
validate nothing): the cost of the public ops' input checks is the difference of the two columns.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

import torch

from pointsd import ops
from pointsd.errors import PointSDError
from pointsd.ops import reference
from pointsd.ops.backends import resolve
from pointsd.utils import json_io
from pointsd.utils.arg_types import positive_int
from pointsd.utils.run_info import run_metadata

PAIR_BUDGET = 2**26
FULL_BATCH = 32
_KNN_SIZES = ("1024->64 k=32", "2048->128 k=32", "8192->1024 k=32")
# (op, size) → [(implementation, baseline, factor)]: impl must run ≥ factor × faster than baseline at
# batch 32. CPU: the fast path against the naive reference; CUDA: issue #10's table.
TARGETS: dict[str, dict[tuple[str, str], list[tuple[str, str, float]]]] = {
    "cpu": {("fps", "2048->128"): [("cpu", "reference", 40.0)],
            ("fps", "8192->1024"): [("cpu", "reference", 40.0)],
            ("knn", "2048->128 k=32"): [("cpu", "reference", 4.0)],
            ("chamfer", "1024x1024"): [("cpu", "reference", 8.0)],
            ("three_nn", "2048x128"): [("cpu", "reference", 10.0)]},
    "cuda": {**{("fps", size): [("triton", "pointnet2_ops", 1.5)] for size in ("1024->64", "2048->128", "8192->1024")},
             **{("knn", size): [("triton", "reference", 3.0), ("triton", "cdist+topk", 2.0)] for size in _KNN_SIZES},
             ("three_nn", "2048x128"): [("triton", "pointnet2_ops", 1.0)],
             ("chamfer", "1024x1024"): [("triton", "reference", 3.0)]},
}
BASELINES = ("reference", "cdist+topk", "pointnet2_ops")  # compared with, never required to be exact
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
    kernel_ms: float | None
    speedup: float
    exact: bool


class _Reference:
    """The naive reference with the public ops' call shapes."""

    furthest_point_sample = staticmethod(reference.furthest_point_sample)
    knn_with_dist = staticmethod(reference.knn_with_dist)
    three_nn = staticmethod(reference.three_nn)
    chamfer_distance = staticmethod(reference.chamfer_distance)


class CdistTopk:
    """KNN as torch users write it: ``cdist`` then ``topk`` (squared distances, sorted)."""

    @staticmethod
    def knn_with_dist(query: torch.Tensor, points: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        d, idx = torch.cdist(query, points).topk(k, dim=-1, largest=False, sorted=True)
        return d * d, idx


class _Direct:
    """A backend module with the public ops' call shapes and no validation (inputs are already
    contiguous float32 here), to time the kernels apart from :mod:`pointsd.ops.validate`."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.knn_with_dist = module.knn_with_dist
        self.three_nn = module.three_nn

    def furthest_point_sample(self, xyz: torch.Tensor, n: int) -> torch.Tensor:
        return self.module.furthest_point_sample(xyz, n, 0)

    def chamfer_distance(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d1, _, d2, _ = self.module.chamfer_nearest(x, y)
        return d1, d2


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
    """Time (ms) of one call of ``fn`` and its output: CUDA events on CUDA, wall clock otherwise."""
    if device.type != "cuda":
        start = time.perf_counter()
        out = fn()
        return (time.perf_counter() - start) * 1e3, out
    torch.cuda.synchronize(device)
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    out = fn()
    end.record()
    end.synchronize()
    return begin.elapsed_time(end), out


def _with_backend(name: str, case: Case) -> Callable[[], tuple[torch.Tensor, ...]]:
    """``case`` run through the public ops with backend ``name``."""

    def call() -> tuple[torch.Tensor, ...]:
        with ops.use_backend(name):
            return case.run(ops)

    return call


def fast_backends(device: torch.device) -> list[str]:
    """The :mod:`pointsd.ops` backends timed on ``device`` (the upstream one when importable)."""
    if device.type == "cpu":
        return ["cpu"]
    names = ["triton"]
    if importlib.util.find_spec("pointnet2_ops") is not None:
        names.append("pointnet2_ops")
    return names


def _implementations(case: Case, device: torch.device, batch: int) -> tuple[dict, dict]:
    """``(public, direct)``: name → call through the public ops (validated), and name → the same
    backend called without validation. Backends without the op are left out."""
    public: dict[str, Callable[[], tuple[torch.Tensor, ...]]] = {"reference": _chunked(case, batch)}
    direct: dict[str, Callable[[], tuple[torch.Tensor, ...]]] = {}
    if device.type == "cuda" and case.op == "knn":
        public["cdist+topk"] = lambda: case.run(CdistTopk)
        public["cdist+topk"]()  # warm-up, as for every implementation but the reference
    for name in fast_backends(device):
        try:
            _with_backend(name, case)()  # warm-up: numba / Triton compilation is not timed
        except PointSDError:
            continue  # this backend does not provide the op
        public[name] = _with_backend(name, case)
        with ops.use_backend(name):
            module = resolve(device)[1]
        direct[name] = functools.partial(case.run, _Direct(module))
        direct[name]()
    return public, direct


def benchmark(device: torch.device, batch: int, repeats: int) -> list[Row]:
    """Time every case with the reference, the baselines and each fast backend; check exactness.

    Calls are interleaved (reference, fast, reference, fast, …) so that a change of machine load
    during the run affects both sides of each speed-up alike.
    """
    rows: list[Row] = []
    for case in cases(batch, device):
        public, direct = _implementations(case, device, batch)
        calls = {**{(name, False): f for name, f in public.items()}, **{(n, True): f for n, f in direct.items()}}
        times: dict[tuple[str, bool], list[float]] = {key: [] for key in calls}
        outputs: dict[str, tuple[torch.Tensor, ...]] = {}
        for _ in range(repeats):
            for key, call in calls.items():
                ms, out = _time_once(call, device)
                times[key].append(ms)
                if not key[1]:
                    outputs.setdefault(key[0], out)
        ref_ms = statistics.median(times[("reference", False)])
        for name in public:
            ms = statistics.median(times[(name, False)])
            kernel = statistics.median(times[(name, True)]) if name in direct else None
            exact = all(torch.equal(a, b) for a, b in zip(outputs[name], outputs["reference"]))
            rows.append(Row(case.op, case.size, batch, name, round(ms, 3),
                            None if kernel is None else round(kernel, 3), round(ref_ms / ms, 2), exact))
    return rows


def evaluate_targets(rows: Sequence[Row], device: torch.device) -> list[dict[str, Any]]:
    """The speed targets of ``device`` (:data:`TARGETS`) against ``rows`` measured at batch 32:
    ``[{"name", "measured", "target", "met"}]``, measured = baseline ms / impl ms, each the time
    without input validation (``None`` and unmet where a row is missing, e.g. ``pointnet2_ops`` not
    installed). Empty at another batch."""
    ms = {(r.op, r.size, r.impl): r.median_ms if r.kernel_ms is None else r.kernel_ms
          for r in rows if r.batch == FULL_BATCH}
    out = []
    for (op, size), goals in TARGETS[device.type].items():
        for impl, baseline, factor in goals:
            if not any(key[:2] == (op, size) for key in ms):
                continue
            a, b = ms.get((op, size, impl)), ms.get((op, size, baseline))
            measured = None if a is None or b is None else round(b / a, 2)
            out.append({"name": f"ops.{op}.{size.replace(' ', '_')}.vs_{baseline}", "measured": measured,
                        "target": factor, "met": measured is not None and measured >= factor})
    return out


def format_table(rows: Sequence[Row], targets: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of ``rows``, then one line per target."""
    lines = ["| op | size | B | impl | median ms | kernel ms (no validation) | speed-up vs reference | exact |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        kernel = "" if r.kernel_ms is None else f"{r.kernel_ms:.2f}"
        lines.append(f"| {r.op} | {r.size} | {r.batch} | {r.impl} | {r.median_ms:.2f} | {kernel} "
                     f"| {r.speedup:.1f}× | {'yes' if r.exact else 'NO'} |")
    for t in targets:
        got = "n/a" if t["measured"] is None else f"{t['measured']:g}×"
        lines.append(f"- {t['name']}: {got} (target ≥ {t['target']:g}×) {'met' if t['met'] else 'MISSED'}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Handler of ``pointsd bench ops``."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PointSDError("--device cuda: no CUDA device is available")
    batch = 1 if args.quick else FULL_BATCH
    with torch.no_grad():
        rows = benchmark(device, batch, args.repeats)
    targets = evaluate_targets(rows, device)
    meta = run_metadata(profile="quick" if args.quick else "full", protocol="bench-ops", seed=SEED,
                        device=device, torch_threads=torch.get_num_threads())
    if args.json:
        print(json_io.dumps({"bench": "ops", "meta": meta, "rows": [asdict(r) for r in rows], "targets": targets}))
    else:
        print(f"# pointsd bench ops — {meta['device']}, torch threads {meta['torch_threads']}, {meta['date']}")
        print(format_table(rows, targets))
    return 0 if all(r.exact for r in rows if r.impl not in BASELINES) else 1


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    """Add ``pointsd bench ops``."""
    p = bench_subparsers.add_parser("ops", help="point ops: naive reference vs fast backends")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    p.add_argument("--repeats", type=positive_int, default=5, help="timed calls per cell (median)")
    p.add_argument("--quick", action="store_true", help="batch 1 instead of 32: a smoke test")
    p.set_defaults(func=run)
