"""The one training loop (accelerate): resume, atomic checkpoints, metrics lines, progress bar.

A task supplies plain functions: ``step_fn(batch) -> loss`` (models already captured) and an
optional ``eval_fn() -> dict`` run every ``eval_every`` optimiser steps and after the last one
(``eval_every=0``: at the end of every epoch). The loop owns devices, mixed precision, clipping,
gradient accumulation, the LR schedule, checkpoints and logs.

Several processes (``accelerate launch --num_processes N``): each process iterates its own shard of
the data (accelerate's sampler shards), gradients are averaged, only the main process writes files,
and a logged loss is the mean over processes. The random draws of ``step_fn`` (noise, patch mix,
drop path, augmentation) come from one RNG stream per *shard* of the global batch (process ×
accumulation micro-batch, :class:`ShardStreams`), so N processes × batch B and one process × batch
B × N accumulation steps draw the same numbers for the same samples and follow the same loss
trajectory (BatchNorm normalises over each micro-batch in both). A single process without
accumulation draws from the global RNG as before.

Files under ``out_dir``:
- ``state/last.pt``: everything needed to resume (written atomically after every epoch, and when a stop
  is asked for: SIGTERM or SIGUSR1, :mod:`pointsd.train.stop`; the loop then raises
  :class:`pointsd.errors.RunStopped` after the step in progress). A run resumed from a state written
  mid-epoch skips the batches that epoch already trained (without reading them: the samples' draws
  follow from the order's generator, :mod:`pointsd.train.batches`) and continues as if it had never
  stopped: on the CPU its weights equal an uninterrupted run's bit for bit;
- ``metrics.jsonl``: one JSON object per logged step / evaluation;
- ``best`` is reported through ``on_best()``, which the task uses to save its own best weights.
"""

from __future__ import annotations

import functools
import json
import math
import random
import sys
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.data_loader import skip_first_batches
from accelerate.utils import DataLoaderConfiguration, broadcast, gather_object
from tqdm.auto import tqdm

from pointsd.errors import PointSDError, RunStopped, first_line
from pointsd.models.checkpoints import load_state_file
from pointsd.ops.validate import values_unchecked
from pointsd.train.speed import SpeedPlan
from pointsd.train.stop import StopRequest
from pointsd.utils import atomic, json_io
from pointsd.utils.run_info import set_seed


@dataclass
class LoopConfig:
    """How long to train and how often to log, evaluate and checkpoint."""

    out_dir: Path
    epochs: int
    grad_clip: float | None = None
    log_every: int = 10
    eval_every: int = 0
    select_metric: str | None = None  # the metric that picks the best evaluation; ties: the later one
    progress: bool = True
    max_steps_per_epoch: int | None = None
    seed: int = 0
    check_every_step: bool = True  # False: a non-finite loss is found when it is logged, and the point ops
    # read no values (pointsd.ops.validate.values_unchecked): no host synchronisation inside a step


@dataclass
class LoopState:
    """What survives a restart."""

    epoch: int = 0
    step: int = 0
    batch: int = 0  # batches of epoch ``epoch`` already trained (0 at an epoch's start)
    logged: int = 0  # the last step with a loss line
    best_score: float = -math.inf
    best: dict[str, Any] = field(default_factory=dict)


class MetricsLog:
    """Append-only JSON lines; on resume, lines written after the resumed step are dropped.

    Only an ``enabled`` log (the main process's) touches the file."""

    def __init__(self, path: Path, resume_step: int | None, enabled: bool = True) -> None:
        self.path, self.enabled = path, enabled
        if not enabled:
            return
        kept: list[str] = []
        if resume_step is not None and path.exists():
            lines = [line for line in path.read_text().splitlines() if line.strip()]
            records = json_io.parse_json_lines("\n".join(lines), path)
            kept = [line for line, record in zip(lines, records) if record.get("step", 0) <= resume_step]
        atomic.write_text(path, "".join(k + "\n" for k in kept))

    def write(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as fh:
            fh.write(json_io.dumps(record, compact=True) + "\n")


def make_accelerator(device: str = "auto", mixed_precision: str = "no", grad_accum: int = 1,
                     non_blocking: bool = False) -> Accelerator:
    """An Accelerator for ``device`` (auto|cpu|cuda), ``mixed_precision`` (no|bf16|fp16) and ``grad_accum``
    batches per optimiser step (global batch = batch × processes × grad_accum). ``non_blocking``: batches
    are copied to the device asynchronously (the loader must pin memory)."""
    if grad_accum < 1:
        raise PointSDError(f"grad_accum must be >= 1, got {grad_accum}")
    if mixed_precision not in ("no", "bf16", "fp16"):
        raise PointSDError(f"mixed_precision must be no|bf16|fp16, got {mixed_precision!r}")
    if device not in ("auto", "cpu", "cuda"):
        raise PointSDError(f"device must be auto|cpu|cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise PointSDError("device=cuda was asked for but no CUDA device is available")
    if mixed_precision == "fp16" and (device == "cpu" or not torch.cuda.is_available()):
        raise PointSDError("mixed_precision=fp16 needs a CUDA device; use bf16 or no on the CPU")
    return Accelerator(mixed_precision=mixed_precision, cpu=device == "cpu", gradient_accumulation_steps=grad_accum,
                       dataloader_config=DataLoaderConfiguration(non_blocking=non_blocking))


def accelerator_for(device: str, plan: SpeedPlan, grad_accum: int = 1) -> Accelerator:
    """The Accelerator of a run with speed ``plan`` on ``device`` (TF32 set as the plan says)."""
    accelerator = make_accelerator(device, plan.mixed_precision, grad_accum, non_blocking=plan.pin_memory)
    plan.apply_matmul_precision()
    return accelerator


def steps_per_epoch(loader: Iterable[Any], accelerator: Accelerator, cap: int | None) -> int:
    """Optimiser steps per epoch of a prepared ``loader`` (this process's shard), at most ``cap``."""
    steps = math.ceil(len(loader) / accelerator.gradient_accumulation_steps)  # type: ignore[arg-type]
    return steps if cap is None else min(steps, cap)


class ShardStreams:
    """One torch RNG stream (CPU + the accelerator's CUDA device) per shard of the global batch.

    Shard ``micro * num_processes + process_index`` is the position of this process's micro-batch in
    the global batch, so the draws for a sample do not depend on how the batch is spread over
    processes and accumulation steps. Inactive (global RNG) for one process without accumulation.
    """

    def __init__(self, accelerator: Accelerator, seed: int) -> None:
        self.accelerator, self.seed = accelerator, seed
        self.active = accelerator.num_processes * accelerator.gradient_accumulation_steps > 1
        self.cuda = accelerator.device.type == "cuda"
        self.states: dict[int, list[torch.Tensor]] = {}

    def shard(self, micro: int) -> int:
        return micro * self.accelerator.num_processes + self.accelerator.process_index

    @contextmanager
    def use(self, micro: int) -> Iterator[None]:
        """Run the body on the stream of micro-batch ``micro`` (its state is kept for the next step)."""
        if not self.active:
            yield
            return
        key, devices = self.shard(micro), [self.accelerator.device] if self.cuda else []
        with torch.random.fork_rng(devices=devices, device_type="cuda"):
            if key in self.states:
                torch.set_rng_state(self.states[key][0])
                if self.cuda:
                    torch.cuda.set_rng_state(self.states[key][1], self.accelerator.device)
            else:
                torch.manual_seed(self.seed * 1_000_003 + 7919 * (key + 1))
            yield
            self.states[key] = [torch.get_rng_state()] + ([torch.cuda.get_rng_state(self.accelerator.device)]
                                                          if self.cuda else [])


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
    on_step: Callable[[int], None] | None = None,
) -> LoopState:
    """Run (or resume) training; returns the final state. ``modules`` are the trained ones (the
    prepared, possibly DDP-wrapped, model where there is one: accumulation skips its gradient sync).
    ``on_step(step)`` is called after every optimiser step (benchmarks time the loop with it)."""
    state_path = cfg.out_dir / "state" / "last.pt"
    state, streams = LoopState(), ShardStreams(accelerator, cfg.seed)
    if state_path.exists():
        state = _load_state(state_path, modules, optimizer, scheduler, accelerator, streams, loader)
    elif accelerator.process_index:
        set_seed(cfg.seed + accelerator.process_index)  # data-side draws differ between processes
    log = MetricsLog(cfg.out_dir / "metrics.jsonl", state.step if state_path.exists() else None,
                     enabled=accelerator.is_main_process)
    params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
    accum = accelerator.gradient_accumulation_steps
    save = functools.partial(_save_state, state_path, state, modules, optimizer, scheduler, accelerator, streams)

    losses = LossLog(accelerator, cfg, log, optimizer, state,
                     steps_per_epoch(loader, accelerator, cfg.max_steps_per_epoch) if hasattr(loader, "__len__")
                     else cfg.max_steps_per_epoch)

    def evaluate() -> None:
        if eval_fn is not None:
            losses.check(state)  # no evaluation (nor best weights) after a non-finite loss
            _evaluate(accelerator, cfg, modules, state, log, eval_fn, on_best)

    for m in modules.values():
        m.train()
    with StopRequest(accelerator) as stop:
        while state.epoch < cfg.epochs:
            epoch_start = _generator_state(loader)  # what a stop within this epoch saves for the order
            micro: list[torch.Tensor] = []
            for i, batch in _batches(accelerator, loader, state.batch):
                if cfg.max_steps_per_epoch is not None and i >= cfg.max_steps_per_epoch * accum:
                    break
                if i % accum == 0:  # between optimiser steps, never after an epoch's last: that ends the epoch
                    _stop_if_asked(stop, losses, state, functools.partial(save, epoch_start))
                with values_unchecked(not cfg.check_every_step):  # the point ops read no values either
                    loss = _backward(accelerator, modules, streams.use(i % accum), step_fn, batch)
                micro.append(losses.see(loss, state))
                if not accelerator.sync_gradients:
                    continue
                if cfg.grad_clip:
                    accelerator.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step_loss, micro = torch.stack(micro).mean(), []
                state.step, state.batch = state.step + 1, i + 1
                if on_step is not None:
                    on_step(state.step)
                losses.stepped(state, step_loss)
                if cfg.eval_every and state.step % cfg.eval_every == 0:
                    evaluate()
            losses.end_epoch(state, step_loss)
            state.epoch, state.batch = state.epoch + 1, 0
            if not cfg.eval_every or (state.epoch == cfg.epochs and state.step % cfg.eval_every):
                evaluate()
            save(_generator_state(loader))
            if state.epoch < cfg.epochs:
                _stop_if_asked(stop, losses, state, lambda: None)  # saved just now
    losses.bar.close()
    _sync_buffers(accelerator, modules)
    accelerator.wait_for_everyone()
    return state


def _stop_if_asked(stop: StopRequest, losses: LossLog, state: LoopState, save: Callable[[], None]) -> None:
    """If any process was asked to stop: check the losses, ``save()`` the state, raise :class:`RunStopped`."""
    asked = stop.agreed()
    if asked is not None:
        losses.check(state)  # a non-finite loss is not checkpointed
        save()
        raise RunStopped(asked, state.step, losses.cfg.out_dir / "state" / "last.pt")


def _batches(accelerator: Accelerator, loader: Iterable[Any], skip: int) -> Iterator[tuple[int, Any]]:
    """``(index in the epoch, batch)`` of one epoch of ``loader``, the first ``skip`` batches left out
    unread (a prepared loader's sampler skips them; ``loader`` itself is kept for the next epoch)."""
    if skip and hasattr(loader, "batch_sampler"):
        yield from enumerate(skip_first_batches(loader, skip), start=skip)
    else:
        yield from ((i, batch) for i, batch in enumerate(loader) if i >= skip)


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


class NonFiniteWatch:
    """Finds a non-finite loss: at once (``every_step``: one host synchronisation a step), or, without
    a synchronisation, when the losses are next logged (:meth:`check`, at least once an epoch)."""

    def __init__(self, every_step: bool, accelerator: Accelerator) -> None:
        self.every_step, self.accelerator = every_step, accelerator
        self.seen_bad = torch.zeros((), device=accelerator.device)

    def see(self, loss: torch.Tensor, where: str) -> torch.Tensor:
        """Record the scalar ``loss`` of ``where`` (raise now when checking every step); → ``loss``."""
        if self.every_step:
            if not torch.isfinite(loss):
                raise PointSDError(f"loss became {loss.item()} at {where}")
        else:
            self.seen_bad += (~torch.isfinite(loss)).float()
        return loss

    def check(self, where: str) -> None:
        """Raise on every process if a loss any process saw since the last check was not finite."""
        if self.every_step:
            return
        bad = self.accelerator.reduce(self.seen_bad, reduction="sum") if self.accelerator.num_processes > 1 \
            else self.seen_bad
        if bool(bad):
            raise PointSDError(f"loss became non-finite in {where}")


class LossLog:
    """The training losses: a metrics line and the progress bar every ``log_every`` optimiser steps and
    at an epoch's end, each after the :class:`NonFiniteWatch` check of the steps since the last line."""

    def __init__(self, accelerator: Accelerator, cfg: LoopConfig, log: MetricsLog,
                 optimizer: torch.optim.Optimizer, state: LoopState, steps_per_epoch: int | None) -> None:
        self.accelerator, self.cfg, self.log, self.optimizer = accelerator, cfg, log, optimizer
        self.watch = NonFiniteWatch(cfg.check_every_step, accelerator)
        self.bar = tqdm(total=cfg.epochs * steps_per_epoch if steps_per_epoch else None, initial=state.step,
                        disable=not cfg.progress or not accelerator.is_main_process, desc=cfg.out_dir.name,
                        dynamic_ncols=True)

    def see(self, loss: torch.Tensor, state: LoopState) -> torch.Tensor:
        """A micro-batch's ``loss`` (scalar) during optimiser step ``state.step + 1``; → ``loss``."""
        return self.watch.see(loss, f"step {state.step} in {self.cfg.out_dir}")

    def check(self, state: LoopState) -> None:
        """Raise if a loss since the last line was not finite."""
        self.watch.check(f"steps {state.logged + 1}-{state.step} in {self.cfg.out_dir}")

    def stepped(self, state: LoopState, loss: torch.Tensor) -> None:
        """After optimiser step ``state.step`` with mean loss ``loss``: the bar, and a line every ``log_every``."""
        self.bar.update(1)
        if state.step % self.cfg.log_every == 0:
            self.write(state, loss)

    def end_epoch(self, state: LoopState, loss: torch.Tensor) -> None:
        """The epoch's last step gets a line (if it has none yet)."""
        if state.step != state.logged:
            self.write(state, loss)

    def write(self, state: LoopState, loss: torch.Tensor) -> None:
        self.check(state)
        value = self.accelerator.reduce(loss, reduction="mean").item()
        self.log.write({"step": state.step, "epoch": state.epoch, "loss": value,
                        "lr": self.optimizer.param_groups[0]["lr"]})
        self.bar.set_postfix(loss=f"{value:.4f}")
        state.logged = state.step


def _backward(
    accelerator: Accelerator, modules: Mapping[str, torch.nn.Module], stream: AbstractContextManager[None],
    step_fn: Callable[[Any], torch.Tensor], batch: Any,
) -> torch.Tensor:
    """Loss of ``batch`` (drawn on its shard's RNG ``stream``), back-propagated (gradient sync skipped
    until the last micro-batch of an optimiser step); → the detached loss (a scalar)."""
    with accelerator.accumulate(*modules.values()):
        with stream:
            loss = step_fn(batch)
        accelerator.backward(loss)
    return loss.detach()


def _evaluate(accelerator: Accelerator, cfg: LoopConfig, modules: Mapping[str, torch.nn.Module], state: LoopState,
              log: MetricsLog, eval_fn: Callable[[], dict[str, float]],
              on_best: Callable[[dict[str, Any]], None] | None) -> None:
    """Run ``eval_fn`` on every process (with the main process's buffers), track and log the best."""
    _sync_buffers(accelerator, modules)
    for m in modules.values():
        m.eval()
    metrics = eval_fn()
    for m in modules.values():
        m.train()
    record = {"step": state.step, "epoch": state.epoch, **metrics}
    score = metrics.get(cfg.select_metric) if cfg.select_metric else None
    # Ties go to the later evaluation (more training): a small validation split ties often.
    if score is not None and score >= state.best_score:
        state.best_score = float(score)
        state.best = record
        if on_best is not None and accelerator.is_main_process:
            on_best(record)
    log.write({**record, "best": state.best_score})


def _sync_buffers(accelerator: Accelerator, modules: Mapping[str, torch.nn.Module]) -> None:
    """Give every process the main process's buffers (BatchNorm running statistics: DDP broadcasts them
    before each training forward, so the last step's update is still per-process)."""
    if accelerator.num_processes == 1:
        return
    for module in modules.values():
        for buffer in accelerator.unwrap_model(module).buffers():
            broadcast(buffer, from_process=0)


def _sampler_generator(loader: Iterable[Any]) -> torch.Generator | None:
    """The generator that shuffles ``loader``: its sampler's, under accelerate's sharding wrappers."""
    node = getattr(loader, "batch_sampler", None)
    while node is not None:
        if isinstance(getattr(node, "generator", None), torch.Generator):
            return node.generator
        node = getattr(node, "batch_sampler", None) or getattr(node, "sampler", None)
    return None


def _generator_state(loader: Iterable[Any]) -> torch.Tensor:
    """The state of the generator that orders ``loader``'s samples (empty when it has none)."""
    sampler = _sampler_generator(loader)
    return sampler.get_state() if sampler is not None else torch.empty(0, dtype=torch.uint8)


def _save_state(path: Path, state: LoopState, modules, optimizer, scheduler, accelerator, streams,
                order: torch.Tensor) -> None:
    """Write the resume state (main process); ``order``: the sampler's generator at the start of the epoch
    that ``state.batch`` counts in."""
    rng = gather_object([{"global": _rng_state(), "streams": streams.states}])  # every process's draws
    if not accelerator.is_main_process:
        return
    atomic.torch_save(path, {
        "modules": {k: accelerator.unwrap_model(m).state_dict() for k, m in modules.items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "loop": {"epoch": state.epoch, "step": state.step, "batch": state.batch, "logged": state.logged,
                 "best_score": state.best_score},
        "best": json_io.dumps(state.best, compact=True),
        "rng": rng,
        "sampler": order,
    })


def _load_state(path: Path, modules, optimizer, scheduler, accelerator, streams, loader) -> LoopState:
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
        rngs = blob["rng"] if isinstance(blob["rng"], list) else [{"global": blob["rng"], "streams": {}}]
        # Same number of processes: each resumes its own draws; otherwise every process restarts from the main's.
        same = len(rngs) == accelerator.num_processes
        mine = rngs[accelerator.process_index] if same else rngs[0]
        _set_rng_state(mine["global"])
        streams.states = {int(k): v for k, v in mine["streams"].items()} if same else {}
        sampler = _sampler_generator(loader)
        if sampler is not None and blob.get("sampler") is not None and blob["sampler"].numel():
            sampler.set_state(blob["sampler"])
        loop = blob["loop"]
        state = LoopState(
            epoch=int(loop["epoch"]), step=int(loop["step"]), batch=int(loop.get("batch", 0)),
            logged=int(loop.get("logged", loop["step"])),
            best_score=float(loop["best_score"]),
            best=json.loads(blob["best"]),
        )
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise PointSDError(f"cannot resume from {path}: it does not fit this run ({first_line(err)}); {how}"
                           ) from err
    where = f"epoch {state.epoch}, step {state.step}" + (f" (batch {state.batch} of the epoch)" if state.batch else "")
    if accelerator.num_processes > 1:  # which processes resumed
        print(f"[process {accelerator.process_index}/{accelerator.num_processes}] resumed from {path}: {where}",
              file=sys.stderr, flush=True)
    else:  # on stdout: stderr holds only failures
        print(f"resumed from {path}: {where}", flush=True)
    return state
