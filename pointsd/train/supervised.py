"""The supervised runner shared by classification fine-tuning and part segmentation (SPEC §4).

A task builds its data and model (:class:`SupervisedTask`) once the run folder is checked (read only)
and the seed and the accelerator are ready. The runner then loads ``--init`` into the model, records
the run in its folder (validate, then record: :mod:`pointsd.utils.run_config`), trains it through the one
loop (:mod:`pointsd.train.loop`) under a cosine schedule with warm-up, keeps the best weights by the
task's selection metric, evaluates the last epoch's and the best weights, and writes ``metrics.json``
(main process only; the other processes return ``{}``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate import Accelerator, PartialState
from diffusers.optimization import get_cosine_schedule_with_warmup
from torch.utils.data import DataLoader, Dataset

from pointsd.errors import PointSDError
from pointsd.models.backbone import pytorch_default_init_
from pointsd.models.config import BackboneConfig
from pointsd.train.batches import SEED_RANGE, shuffled_loader
from pointsd.train.loop import (
    LoopConfig,
    accelerator_for,
    best_weights_saver,
    load_best_weights,
    steps_per_epoch,
    train,
)
from pointsd.train.presets import PROTOCOLS, SCRATCH_INITS
from pointsd.train.speed import SpeedPlan
from pointsd.train.training_config import TrainingConfig
from pointsd.utils import data_record, json_io, staging
from pointsd.utils.run_config import check_run_folder, record_run
from pointsd.utils.run_info import run_metadata, set_seed

METRICS = "metrics.json"


@dataclass(kw_only=True)
class SupervisedConfig(TrainingConfig):
    """A supervised run: the training settings, the initial weights, the protocol that picks the epoch."""

    init: str = "scratch"  # a checkpoint path, or "scratch"
    scratch_init: str | None = None  # with init "scratch": one of SCRATCH_INITS (None: the model as built)
    protocol: str
    eval_batch_size: int = 64
    augment: str
    command: list[str] = field(default_factory=list)
    backbone: BackboneConfig

    def validate(self) -> None:
        """Raise :class:`PointSDError` naming the first bad field."""
        if self.scratch_init not in (None, *SCRATCH_INITS):
            raise PointSDError(f"scratch_init must be one of {'|'.join(SCRATCH_INITS)}, got {self.scratch_init!r}")
        if self.protocol not in PROTOCOLS:
            raise PointSDError(f"protocol must be one of {'|'.join(PROTOCOLS)}, got {self.protocol!r}")
        self.backbone.validate(self.npoints)


@dataclass
class SupervisedTask:
    """What one task hands the runner. Every callable gets the prepared (possibly wrapped) model.

    ``loss(model, batch)`` → scalar loss; ``select(model)`` → the metrics that pick the epoch (among
    them ``select_key``); ``last_epoch(model)`` → result keys of the last epoch's weights;
    ``best(model, saved)`` → result keys of the best weights (``"test"``, ``"chance"``, counts, …),
    ``saved`` being the blob :func:`~pointsd.train.loop.best_weights_saver` wrote. ``name`` and
    ``selection`` (how the epoch is picked, in words) go into the metrics file as ``task`` and
    ``selection``, ``meta`` into its ``meta``. ``shuffle_seed`` seeds the training batches' order (None:
    the global RNG).
    """

    name: str
    model: torch.nn.Module
    make_optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer]
    train_set: Dataset
    loss: Callable[[torch.nn.Module, Any], torch.Tensor]
    select: Callable[[torch.nn.Module], dict[str, float]]
    select_key: str
    selection: str
    last_epoch: Callable[[torch.nn.Module], dict[str, Any]]
    best: Callable[[torch.nn.Module, dict[str, Any]], dict[str, Any]]
    shuffle_seed: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def initialise(model: torch.nn.Module, init: str, scratch_init: str | None = None) -> dict[str, Any]:
    """Load a pre-trained checkpoint into ``model``; ``init == "scratch"`` leaves it as built, or with
    ``scratch_init="pytorch"`` puts its trunk at PyTorch's default initialisation, where pre-training starts.

    Returns what was loaded: ``{"init", "missing", "unexpected", "mismatched"}`` key counts.
    A checkpoint whose shapes do not fit raises :class:`PointSDError` (from ``load_pretrained``).
    """
    if init == "scratch":
        if scratch_init == "pytorch":
            pytorch_default_init_(model)
        return {"init": "scratch", "scratch_init": scratch_init or "as built"}
    from pointsd.models.checkpoints import load_pretrained

    path = Path(init)
    if not path.is_file():
        raise PointSDError(f"--init {init}: checkpoint file does not exist")
    report = load_pretrained(model, path)
    counts = {k: len(getattr(report, k)) for k in ("missing", "unexpected", "mismatched")}
    PartialState().print(f"loaded {path}: {report.loaded} tensors; missing {counts['missing']}, "
                         f"unexpected {counts['unexpected']}, mismatched {counts['mismatched']}")
    return {"init": str(path), "loaded": report.loaded, **counts,
            "missing_keys": sorted(report.missing)[:50], "unexpected_keys": sorted(report.unexpected)[:50]}


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Point-MAE's rule: no weight decay for biases, norms (1-d tensors) and the cls token / pos."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        plain = p.ndim <= 1 or name.endswith(("cls_token", "cls_pos"))
        (no_decay if plain else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train_loader(dataset: Dataset, batch_size: int, plan: SpeedPlan, seed: int | None, too_small: str
                 ) -> DataLoader:
    """Shuffled, ``drop_last`` batches of ``dataset``; fewer than 2 samples raise ``too_small`` with ``{n}`` the count.

    The order and the samples' draws follow from ``seed`` (None: a seed drawn from the global RNG), through
    one generator the loop checkpoints (:mod:`pointsd.train.batches`): a resumed run sees the same batches
    as an uninterrupted one, and every process (accelerate shares rank 0's) the same order.
    """
    if len(dataset) < 2:
        raise PointSDError(too_small.replace("{n}", str(len(dataset))))
    if seed is None:
        seed = int(torch.randint(SEED_RANGE, ()).item())
    return shuffled_loader(dataset, min(batch_size, len(dataset)), seed, plan, drop_last=True)


def run_supervised(cfg: SupervisedConfig, build: Callable[[Accelerator], SupervisedTask], *,
                   data: Mapping[str, Dataset], grad_accum: int = 1,
                   too_small: str = "the training set has {n} samples; need at least 2",
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train the task ``build(accelerator)`` makes, pick its epoch, evaluate; write and return ``metrics.json``.

    ``cfg`` is validated first. ``data`` (role → dataset) is what the run reads, recorded by content. The run
    trains in ``out_dir``'s work folder and is published as ``out_dir`` when finished (:mod:`pointsd.utils.staging`);
    it resumes from the work folder's ``state/last.pt`` when present; a finished run (same configuration and data, see
    :mod:`pointsd.utils.run_config`) returns its metrics unchanged. Nothing is written into the folder before
    the task, its data and ``--init`` passed their checks. ``extra`` is part of the recorded
    configuration and is merged into the metrics; ``too_small`` is the error for a training set of fewer
    than 2 samples (``{n}``: its size).
    """
    cfg.validate()
    out, config, read = Path(cfg.out_dir), {**asdict(cfg), **(extra or {})}, data_record.fingerprint(data)
    finished = check_run_folder(out, config, read, result=METRICS, overwrite=cfg.overwrite)
    if finished is not None:
        return finished
    work = staging.work_folder(out, config, read)
    set_seed(cfg.seed)
    plan = cfg.speed_plan()
    accelerator = accelerator_for(cfg.device, plan, grad_accum)
    task = build(accelerator)
    init_report = initialise(task.model, cfg.init, cfg.scratch_init)
    optimizer = task.make_optimizer(task.model)
    loader = train_loader(task.train_set, cfg.batch_size, plan, task.shuffle_seed, too_small)
    if accelerator.is_main_process:
        record_run(work, config, read, result=METRICS, overwrite=cfg.overwrite)
    accelerator.wait_for_everyone()
    model, optimizer, loader = accelerator.prepare(task.model, optimizer, loader)
    steps = steps_per_epoch(loader, accelerator, cfg.max_steps_per_epoch)
    scheduler = get_cosine_schedule_with_warmup(optimizer, cfg.warmup_epochs * steps, cfg.epochs * steps)
    if plan.compile:
        accelerator.unwrap_model(model).compile()  # in place: state-dict keys kept; grouping traced (custom ops)

    loop_cfg = LoopConfig(out_dir=work, epochs=cfg.epochs, grad_clip=cfg.grad_clip or None,
                          log_every=max(1, min(10, steps)), select_metric=task.select_key, progress=cfg.progress,
                          max_steps_per_epoch=cfg.max_steps_per_epoch, seed=cfg.seed,
                          check_every_step=not plan.deferred_checks)
    started = time.perf_counter()
    state = train(accelerator, loop_cfg, modules={"model": model}, optimizer=optimizer, scheduler=scheduler,
                  loader=loader, step_fn=lambda batch: task.loss(model, batch), eval_fn=lambda: task.select(model),
                  on_best=best_weights_saver(work / "best.pt", accelerator, model, task.select_key))
    train_seconds = time.perf_counter() - started

    model.eval()
    last = task.last_epoch(model)
    saved = load_best_weights(work / "best.pt", accelerator, model)
    result: dict[str, Any] = {
        "task": task.name,
        "init": cfg.init,
        "init_report": init_report,
        "protocol": cfg.protocol,
        "selection": task.selection,
        "meta": run_metadata(profile=cfg.profile, protocol=cfg.protocol, seed=cfg.seed, device=accelerator.device,
                             data_profile=cfg.data_profile, speed=plan.record(), **task.meta),
        **task.best(model, saved),
        "selected_epoch": int(saved["epoch"]),
        "last_epoch": state.epoch,
        **last,
        "num_train": len(task.train_set),
        "train_seconds_this_invocation": train_seconds,
        "config": json_io.plain(asdict(cfg)),
        "command": cfg.command,
        **(extra or {}),
    }
    if not accelerator.is_main_process:
        return {}
    json_io.write_json(work / METRICS, result)
    staging.publish(work, out)
    return result
