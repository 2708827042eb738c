"""Timing a training step as the benchmarks report it: steady state apart from start-up and compilation.

On CUDA each timed step is bracketed by CUDA events (no host synchronisation between steps); on the
CPU by ``time.perf_counter``. The warm-up steps are timed as a whole: their time minus as many
steady-state steps is the start-up cost (``torch.compile``'s compilation, autotuning, allocator
growth). Recompilations are counted from dynamo's counters over the timed steps; peak memory is
CUDA's allocator peak, or the process's peak RSS on the CPU.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class StepTiming:
    """What :func:`time_steps` measured."""

    steps: int
    median_ms: float  # per timed step
    mean_ms: float
    startup_s: float  # warm-up time minus as many steady-state steps (compilation)
    recompiles: int  # graphs compiled during the timed steps (0 in a steady state)
    graphs: int  # graphs dynamo compiled in all (warm-up included)
    peak_mem_mb: float

    @property
    def steps_per_s(self) -> float:
        return 1000.0 / self.median_ms


def _compiled_graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA memory since the last reset, or the process's peak RSS on the CPU (MiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Callable[[], object], device: torch.device, warmup: int, steps: int) -> StepTiming:
    """Run ``step`` ``warmup`` times untimed, then ``steps`` times timed, on ``device``."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    graphs_before = _compiled_graphs()
    _sync(device)
    start = time.perf_counter()
    for _ in range(warmup):
        step()
    _sync(device)
    warm_s = time.perf_counter() - start
    graphs_warm = _compiled_graphs()
    per_step = _cuda_event_times(step, device, steps) if device.type == "cuda" else _wall_times(step, steps)
    median = statistics.median(per_step)
    graphs_end = _compiled_graphs()
    return StepTiming(
        steps=steps, median_ms=median, mean_ms=statistics.fmean(per_step),
        startup_s=max(0.0, warm_s - warmup * median / 1000.0), recompiles=graphs_end - graphs_warm,
        graphs=graphs_end - graphs_before, peak_mem_mb=peak_memory_mb(device),
    )


def _wall_times(step: Callable[[], object], steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def _cuda_event_times(step: Callable[[], object], device: torch.device, steps: int) -> list[float]:
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(steps)]
    for begin, end in events:
        begin.record()
        step()
        end.record()
    torch.cuda.synchronize(device)
    return [begin.elapsed_time(end) for begin, end in events]


def profile_table(step: Callable[[], object], device: torch.device, steps: int, rows: int = 20) -> str:
    """``torch.profiler``'s table of the ``rows`` most expensive operators over ``steps`` more steps
    (self time on the device, or on the CPU without CUDA): where a step's time goes."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        _sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)
