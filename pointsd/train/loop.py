"""The one training loop (accelerate): resume, atomic checkpoints, metrics lines, progress bar.

A task supplies plain functions: ``step_fn(batch) -> loss`` (models already captured) and an
optional ``eval_fn() -> dict`` run every ``eval_every`` optimiser steps and after the last one
(``eval_every=0``: at the end of every epoch). The loop owns devices, mixed precision, clipping,
the LR schedule, checkpoints and logs.

Files under ``out_dir``:
- ``state/last.pt``: everything needed to resume (written atomically after every epoch);
- ``metrics.jsonl``: one JSON object per logged step / evaluation;
- ``best`` is reported through ``on_best()``, which the task uses to save its own best weights.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from pointsd.errors import PointSDError, first_line
from pointsd.models.checkpoints import load_state_file
from pointsd.utils import atomic


@dataclass
class LoopConfig:
    """How long to train and how often to log, evaluate and checkpoint."""

    out_dir: Path
    epochs: int
    grad_clip: float | None = None
    log_every: int = 10
    eval_every: int = 0
    select_metric: str | None = None
    progress: bool = True
    max_steps_per_epoch: int | None = None


@dataclass
class LoopState:
    """What survives a restart."""

    epoch: int = 0
    step: int = 0
    best_score: float = -math.inf
    best: dict[str, Any] = field(default_factory=dict)


class MetricsLog:
    """Append-only JSON lines; on resume, lines written after the resumed step are dropped."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        kept: list[str] = []
        if resume_step is not None and path.exists():
            for line in path.read_text().splitlines():
                if line.strip() and json.loads(line).get("step", 0) <= resume_step:
                    kept.append(line)
        atomic.write_text(path, "".join(k + "\n" for k in kept))

    def write(self, record: Mapping[str, Any]) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record, default=atomic._json_default) + "\n")


def make_accelerator(device: str = "auto", mixed_precision: str = "no") -> Accelerator:
    """An Accelerator for ``device`` (auto|cpu|cuda) and ``mixed_precision`` (no|bf16|fp16)."""
    if mixed_precision not in ("no", "bf16", "fp16"):
        raise PointSDError(f"mixed_precision must be no|bf16|fp16, got {mixed_precision!r}")
    if device not in ("auto", "cpu", "cuda"):
        raise PointSDError(f"device must be auto|cpu|cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise PointSDError("device=cuda was asked for but no CUDA device is available")
    if mixed_precision == "fp16" and (device == "cpu" or not torch.cuda.is_available()):
        raise PointSDError("mixed_precision=fp16 needs a CUDA device; use bf16 or no on the CPU")
    return Accelerator(mixed_precision=mixed_precision, cpu=device == "cpu")


def _rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np.random.get_state()[1].tolist(), int(np.random.get_state()[2])],
        "python": random.getstate()[1],
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    keys, pos = state["numpy"]
    np.random.set_state(("MT19937", np.asarray(keys, dtype=np.uint32), int(pos), 0, 0.0))
    random.setstate((3, tuple(state["python"]), None))


def train(
    accelerator: Accelerator,
    cfg: LoopConfig,
    *,
    modules: Mapping[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader: Iterable[Any],
    step_fn: Callable[[Any], torch.Tensor],
    eval_fn: Callable[[], dict[str, float]] | None = None,
    on_best: Callable[[dict[str, Any]], None] | None = None,
) -> LoopState:
    """Run (or resume) training; returns the final state. ``modules`` are the trained ones."""
    state_path = cfg.out_dir / "state" / "last.pt"
    state = LoopState()
    if state_path.exists():
        state = _load_state(state_path, modules, optimizer, scheduler, accelerator)
    log = MetricsLog(cfg.out_dir / "metrics.jsonl", state.step if state_path.exists() else None)
    params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]

    def evaluate() -> None:
        if eval_fn is None:
            return
        for m in modules.values():
            m.eval()
        metrics = eval_fn()
        for m in modules.values():
            m.train()
        record = {"step": state.step, "epoch": state.epoch, **metrics}
        score = metrics.get(cfg.select_metric) if cfg.select_metric else None
        if score is not None and score > state.best_score:
            state.best_score = float(score)
            state.best = record
            if on_best is not None:
                on_best(record)
        log.write({**record, "best": state.best_score})

    last_logged = state.step

    def log_loss(loss: torch.Tensor) -> None:
        nonlocal last_logged
        lr = optimizer.param_groups[0]["lr"]
        log.write({"step": state.step, "epoch": state.epoch, "loss": loss.item(), "lr": lr})
        bar.set_postfix(loss=f"{loss.item():.4f}")
        last_logged = state.step

    steps_per_epoch = _len_or_none(loader, cfg.max_steps_per_epoch)
    bar = tqdm(
        total=cfg.epochs * steps_per_epoch if steps_per_epoch else None,
        initial=state.step, disable=not cfg.progress or not accelerator.is_main_process,
        desc=cfg.out_dir.name, dynamic_ncols=True,
    )
    for m in modules.values():
        m.train()
    while state.epoch < cfg.epochs:
        for i, batch in enumerate(loader):
            if cfg.max_steps_per_epoch is not None and i >= cfg.max_steps_per_epoch:
                break
            with accelerator.accumulate(*modules.values()):
                loss = step_fn(batch)
                if not torch.isfinite(loss):
                    raise PointSDError(f"loss became {loss.item()} at step {state.step} in {cfg.out_dir}")
                accelerator.backward(loss)
                if cfg.grad_clip and accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            state.step += 1
            bar.update(1)
            if state.step % cfg.log_every == 0:
                log_loss(loss)
            if cfg.eval_every and state.step % cfg.eval_every == 0:
                evaluate()
        if state.step != last_logged:
            log_loss(loss)
        state.epoch += 1
        if not cfg.eval_every or (state.epoch == cfg.epochs and state.step % cfg.eval_every):
            evaluate()
        _save_state(state_path, state, modules, optimizer, scheduler, accelerator)
    bar.close()
    return state


def best_weights_saver(
    path: Path, accelerator: Accelerator, model: torch.nn.Module, select_key: str
) -> Callable[[dict[str, Any]], None]:
    """An ``on_best`` callback: atomically saves ``{"model", "epoch", select_key}`` to ``path``."""

    def save(record: dict[str, Any]) -> None:
        atomic.torch_save(path, {"model": accelerator.unwrap_model(model).state_dict(),
                                 "epoch": record["epoch"], select_key: record[select_key]})

    return save


def load_best_weights(path: Path, accelerator: Accelerator, model: torch.nn.Module) -> dict[str, Any]:
    """Load the weights saved by :func:`best_weights_saver` into ``model`` (left in eval mode); returns the blob."""
    best = load_state_file(path)
    accelerator.unwrap_model(model).load_state_dict(best["model"])
    model.eval()
    return best


def _len_or_none(loader: Iterable[Any], cap: int | None) -> int | None:
    try:
        n = len(loader)  # type: ignore[arg-type]
    except TypeError:
        return cap
    return min(n, cap) if cap is not None else n


def _save_state(path: Path, state: LoopState, modules, optimizer, scheduler, accelerator) -> None:
    if not accelerator.is_main_process:
        return
    atomic.torch_save(path, {
        "modules": {k: accelerator.unwrap_model(m).state_dict() for k, m in modules.items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "loop": {"epoch": state.epoch, "step": state.step, "best_score": state.best_score},
        "best": json.dumps(state.best, default=atomic._json_default),
        "rng": _rng_state(),
    })


def _load_state(path: Path, modules, optimizer, scheduler, accelerator) -> LoopState:
    how = "rerun with --overwrite (or a new --out) to start over"
    try:
        blob = load_state_file(path)
    except PointSDError as err:
        raise PointSDError(f"cannot resume: {err}; {how}") from err
    try:
        for name, module in modules.items():
            accelerator.unwrap_model(module).load_state_dict(blob["modules"][name])
        optimizer.load_state_dict(blob["optimizer"])
        scheduler.load_state_dict(blob["scheduler"])
        _set_rng_state(blob["rng"])
        loop = blob["loop"]
        return LoopState(
            epoch=int(loop["epoch"]), step=int(loop["step"]), best_score=float(loop["best_score"]),
            best=json.loads(blob["best"]),
        )
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise PointSDError(f"cannot resume from {path}: it does not fit this run ({first_line(err)}); {how}"
                           ) from err
