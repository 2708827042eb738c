"""Classification fine-tuning (SPEC §4): ScanObjectNN ×3, ModelNet40 (with voting), ModelNet10.

One run = backbone + ``cls_head_finetune`` trained with cross-entropy through the one training
loop (:mod:`pointsd.train.loop`), under one of two protocols:

- ``paper``: what the official code does: every epoch is evaluated on the *test* set and the best
  test epoch is reported (labelled as such in the metrics file);
- ``honest``: a stratified, seeded validation split carved from the training set picks the epoch;
  the test accuracy at that epoch and at the last epoch are reported.

Training points are drawn as FPS to 1.2× the point count then a random subset; evaluation uses
FPS to the point count (a fixed prefix of the cached 1.2× FPS pool). Test-time voting averages
the logits of ``votes`` fresh subsets of that pool, each with the run's own training augmentation
(``augment``; ``none``: the random subset only), as Point-MAE votes with its train transforms: votes
see inputs from the distribution the model was trained on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator, PartialState
from diffusers.optimization import get_cosine_schedule_with_warmup
from torch.utils.data import DataLoader, Dataset, Subset

from pointsd import ops
from pointsd.data import transforms
from pointsd.errors import PointSDError
from pointsd.models.config import BackboneConfig
from pointsd.train import metrics
from pointsd.train.loop import (
    LoopConfig,
    best_weights_saver,
    load_best_weights,
    make_accelerator,
    steps_per_epoch,
    train,
)
from pointsd.train.presets import AUGMENTS, OPTIMIZERS, PROTOCOLS, SCANOBJECTNN_NAMES, TASKS
from pointsd.train.splits import stratified_split
from pointsd.utils import atomic
from pointsd.utils.run_config import prepare_run_folder
from pointsd.utils.run_info import run_metadata, set_seed


@dataclass
class FinetuneConfig:
    """Everything one fine-tuning run needs; every value comes from a CLI flag."""

    task: str
    out_dir: Path
    init: str = "scratch"
    protocol: str = "paper"
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"
    mixed_precision: str = "no"
    epochs: int = 300
    batch_size: int = 32
    eval_batch_size: int = 64
    lr: float = 0.017
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: int = 10
    grad_clip: float = 10.0
    grad_accum: int = 1
    label_smoothing: float = 0.0
    npoints: int = 1024
    oversample: float = 1.2
    augment: str = "scale_translate"
    votes: int = 0
    num_workers: int = 0
    compile: bool = False
    max_steps_per_epoch: int | None = None
    profile: str = "default"
    data_profile: str = "synthetic"
    progress: bool = True
    command: list[str] = field(default_factory=list)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    overwrite: bool = False

    def validate(self) -> None:
        """Raise :class:`PointSDError` naming the first bad field."""
        choices = {"protocol": PROTOCOLS, "augment": AUGMENTS, "optimizer": OPTIMIZERS}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise PointSDError(f"{key} must be one of {'|'.join(allowed)}, got {getattr(self, key)!r}")
        if self.protocol == "honest" and not 0.0 < self.val_fraction < 1.0:
            raise PointSDError(f"val_fraction must be in (0,1) for the honest protocol, got {self.val_fraction}")
        self.backbone.validate(self.npoints)


@dataclass
class ClassificationData:
    """Train and test sets of one task and its class names (labels index into them)."""

    train: Dataset
    test: Dataset
    class_names: list[str]


def dataset_labels(dataset: Dataset) -> np.ndarray:
    """Labels ``(n,)`` of a ``(points, label)`` dataset (its ``labels`` attribute, else by iterating)."""
    labels = getattr(dataset, "labels", None)
    if labels is not None:
        return np.asarray(labels).reshape(-1)
    return np.asarray([int(dataset[i][1]) for i in range(len(dataset))])


def dataset_source(dataset: Dataset) -> str:
    """The file a dataset was read from (its ``path``, looked up through subsets), else its type name."""
    while not hasattr(dataset, "path") and hasattr(dataset, "dataset"):
        dataset = dataset.dataset
    return str(getattr(dataset, "path", type(dataset).__name__))


def build_classifier(num_classes: int, cfg: FinetuneConfig) -> torch.nn.Module:
    """``PointTransformerClassifier`` with the run's widths and grouping."""
    from pointsd.models.classifier import PointTransformerClassifier

    return PointTransformerClassifier(num_classes, **cfg.backbone.kwargs())


def initialise(model: torch.nn.Module, init: str) -> dict[str, Any]:
    """Load a pre-trained checkpoint into ``model`` (``init == "scratch"`` leaves it as is).

    Returns what was loaded: ``{"init", "missing", "unexpected", "mismatched"}`` key counts.
    A checkpoint whose shapes do not fit raises :class:`PointSDError` (from ``load_pretrained``).
    """
    if init == "scratch":
        return {"init": "scratch"}
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


def compile_dense_parts(model: torch.nn.Module) -> None:
    """``torch.compile`` the patch embedding and the transformer blocks in place (state-dict keys kept).

    Grouping (FPS / KNN through :mod:`pointsd.ops`) stays eager: its kernels are not traceable.
    """
    model.encoder.compile()
    model.blocks.compile()


def make_optimizer(model: torch.nn.Module, cfg: FinetuneConfig) -> torch.optim.Optimizer:
    """SGD (momentum) as SPEC §4, or AdamW when asked."""
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def augment_batch(points: torch.Tensor, kind: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Train-time augmentation ``kind`` of ``points (B,N,3)`` (SPEC §4 per task); ``none`` returns them as is.

    ``generator`` seeds the random draws (``None``: torch's global RNG).
    """
    if kind == "scale_translate":
        return transforms.scale_translate(points, generator=generator)
    if kind == "scale_rotate":
        return transforms.rotate_up(transforms.scale(points, 0.9, 1.1, generator=generator), generator=generator)
    return points


def fps_pool(dataset: Dataset, npoints: int, oversample: float, device: torch.device,
             batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """FPS every cloud to ``min(N, int(oversample*npoints))`` points once (deterministic, start 0).

    → ``pool (n, m, 3)`` on CPU, FPS-ordered so ``pool[:, :npoints]`` is the FPS to ``npoints``;
    ``labels (n,)`` int64.
    """
    if len(dataset) == 0:
        raise PointSDError(f"{dataset_source(dataset)}: 0 clouds to evaluate on; "
                           "check it with pointsd data inspect")
    pools, labels = [], []
    for points, label in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        N = points.shape[1]
        if N < npoints:
            raise PointSDError(f"clouds have {N} points, fewer than npoints={npoints}")
        pts = points.to(device)
        idx = ops.furthest_point_sample(pts, min(N, int(oversample * npoints)))
        pools.append(ops.gather(pts, idx).cpu())
        labels.append(torch.as_tensor(label, dtype=torch.long))
    return torch.cat(pools), torch.cat(labels)


@torch.no_grad()
def predict_logits(model: torch.nn.Module, points: torch.Tensor, device: torch.device,
                   batch_size: int) -> torch.Tensor:
    """Logits ``(n, C)`` float32 of ``points (n, N, 3)`` in chunks (model must be in eval mode)."""
    out = [model(points[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(points), batch_size)]
    return torch.cat(out)


@torch.no_grad()
def gathered_logits(accelerator: Accelerator, model: torch.nn.Module, points: torch.Tensor,
                    batch_size: int) -> torch.Tensor:
    """Logits ``(n, C)`` of ``points (n, N, 3)``, each process predicting a contiguous ``1/num_processes``
    of the samples; gathered without padding, so every sample counts exactly once, in order."""
    world, rank = accelerator.num_processes, accelerator.process_index
    bounds = [len(points) * r // world for r in range(world + 1)]
    local = predict_logits(accelerator.unwrap_model(model), points[bounds[rank]:bounds[rank + 1]],
                           accelerator.device, batch_size)
    if world == 1:
        return local
    padded = accelerator.pad_across_processes(local.to(accelerator.device), dim=0)
    rows = accelerator.gather(padded).cpu().split(padded.shape[0])
    return torch.cat([block[:bounds[r + 1] - bounds[r]] for r, block in enumerate(rows)])


@torch.no_grad()
def voting_logits(accelerator: Accelerator, model: torch.nn.Module, pool: torch.Tensor, npoints: int, votes: int,
                  batch_size: int, seed: int, augment: str = "none") -> torch.Tensor:
    """Point-MAE voting: per vote, a random ``npoints`` subset of each FPS pool ``(n, m, 3)`` with the
    run's training augmentation ``augment`` (:func:`augment_batch`; Point-MAE votes with its train
    transforms); logits ``(votes, n, C)`` averaged → ``(n, C)`` (predictions sharded over processes)."""
    if augment not in AUGMENTS:
        raise PointSDError(f"augment must be one of {'|'.join(AUGMENTS)}, got {augment!r}")
    gen = torch.Generator().manual_seed(seed)
    all_votes = []
    for _ in range(votes):
        choice = torch.stack([torch.randperm(pool.shape[1], generator=gen)[:npoints] for _ in range(len(pool))])
        subset = augment_batch(ops.gather(pool, choice), augment, generator=gen)
        all_votes.append(gathered_logits(accelerator, model, subset, batch_size))
    return metrics.vote_logits(torch.stack(all_votes))


def classification_report(logits: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]) -> dict[str, Any]:
    """Overall, per-class and mean-class accuracy (percent) of ``logits (n,C)`` against ``labels (n,)``."""
    pred = logits.argmax(dim=1)
    per_class = metrics.per_class_accuracy(pred, labels, class_names)
    return {
        "overall_acc": metrics.overall_accuracy(pred, labels),
        "mean_class_acc": metrics.mean_class_accuracy(per_class),
        "per_class_acc": per_class,
    }


def _loader(dataset: Dataset, cfg: FinetuneConfig) -> DataLoader:
    if len(dataset) < 2:
        raise PointSDError(f"{dataset_source(dataset)}: the training set of task {cfg.task} has {len(dataset)} "
                           "clouds; need at least 2")
    # One seeded shuffling generator, which the loop checkpoints: a resumed run sees the same batches
    # as an uninterrupted one, and every process (accelerate shares rank 0's) the same permutation.
    return DataLoader(dataset, batch_size=min(cfg.batch_size, len(dataset)), shuffle=True, drop_last=True,
                      num_workers=cfg.num_workers, generator=torch.Generator().manual_seed(cfg.seed))


def run_finetune(cfg: FinetuneConfig, data: ClassificationData,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train, select the epoch per ``cfg.protocol``, evaluate; write and return ``metrics.json``.

    Resumes from ``out_dir/state/last.pt`` when present; a finished run (same configuration, see
    :mod:`pointsd.utils.run_config`) returns its metrics unchanged. ``extra`` is merged into the metrics.
    """
    cfg.validate()
    out = Path(cfg.out_dir)
    finished = prepare_run_folder(out, {**asdict(cfg), **(extra or {})}, result="metrics.json",
                                  overwrite=cfg.overwrite)
    if finished is not None:
        return finished
    set_seed(cfg.seed)
    accelerator = make_accelerator(cfg.device, cfg.mixed_precision, cfg.grad_accum)
    device = accelerator.device

    train_set, val_set = data.train, None
    if cfg.protocol == "honest":
        tr_idx, va_idx = stratified_split(dataset_labels(data.train), cfg.val_fraction, cfg.seed)
        train_set, val_set = Subset(data.train, tr_idx.tolist()), Subset(data.train, va_idx.tolist())
    model = build_classifier(len(data.class_names), cfg)
    init_report = initialise(model, cfg.init)
    optimizer = make_optimizer(model, cfg)
    model, optimizer, loader = accelerator.prepare(model, optimizer, _loader(train_set, cfg))
    steps = steps_per_epoch(loader, accelerator, cfg.max_steps_per_epoch)
    scheduler = get_cosine_schedule_with_warmup(optimizer, cfg.warmup_epochs * steps, cfg.epochs * steps)
    if cfg.compile:
        compile_dense_parts(accelerator.unwrap_model(model))

    test_pool, test_labels = fps_pool(data.test, cfg.npoints, cfg.oversample, device, cfg.eval_batch_size)
    select_pool, select_labels = (test_pool, test_labels) if val_set is None else fps_pool(
        val_set, cfg.npoints, cfg.oversample, device, cfg.eval_batch_size)
    select_key = "test_acc" if val_set is None else "val_acc"

    def step_fn(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        points, labels = batch
        points = augment_batch(transforms.fps_subsample(points, cfg.npoints, cfg.oversample), cfg.augment)
        return F.cross_entropy(model(points).float(), labels, label_smoothing=cfg.label_smoothing)

    def eval_fn() -> dict[str, float]:
        logits = gathered_logits(accelerator, model, select_pool[:, :cfg.npoints], cfg.eval_batch_size)
        return {select_key: metrics.overall_accuracy(logits.argmax(1), select_labels)}

    on_best = best_weights_saver(out / "best.pt", accelerator, model, select_key)

    loop_cfg = LoopConfig(out_dir=out, epochs=cfg.epochs, grad_clip=cfg.grad_clip or None,
                          log_every=max(1, min(10, steps)), select_metric=select_key, progress=cfg.progress,
                          max_steps_per_epoch=cfg.max_steps_per_epoch, seed=cfg.seed)
    started = time.perf_counter()
    state = train(accelerator, loop_cfg, modules={"model": model}, optimizer=optimizer, scheduler=scheduler,
                  loader=loader, step_fn=step_fn, eval_fn=eval_fn, on_best=on_best)
    train_seconds = time.perf_counter() - started

    model.eval()
    last_logits = gathered_logits(accelerator, model, test_pool[:, :cfg.npoints], cfg.eval_batch_size)
    best = load_best_weights(out / "best.pt", accelerator, model)
    test = classification_report(
        gathered_logits(accelerator, model, test_pool[:, :cfg.npoints], cfg.eval_batch_size), test_labels,
        data.class_names)
    if cfg.votes > 0:
        voted = voting_logits(accelerator, model, test_pool, cfg.npoints, cfg.votes, cfg.eval_batch_size, cfg.seed,
                              cfg.augment)
        test["voting_acc"] = metrics.overall_accuracy(voted.argmax(1), test_labels)
        test["votes"] = cfg.votes

    result: dict[str, Any] = {
        "task": cfg.task,
        "init": cfg.init,
        "init_report": init_report,
        "protocol": cfg.protocol,
        "selection": ("best epoch chosen on the TEST set (official code's protocol)" if val_set is None
                      else f"best epoch chosen on a stratified validation split ({cfg.val_fraction:.0%} of train)"),
        "meta": run_metadata(profile=cfg.profile, protocol=cfg.protocol, seed=cfg.seed, device=device,
                             data_profile=cfg.data_profile, mixed_precision=cfg.mixed_precision,
                             num_processes=accelerator.num_processes, grad_accum=cfg.grad_accum),
        "test": test,
        "chance": {"overall_acc": metrics.majority_rate(test_labels)},
        "selected_epoch": int(best["epoch"]),
        "last_epoch": state.epoch,
        "last_epoch_acc": metrics.overall_accuracy(last_logits.argmax(1), test_labels),
        "num_train": len(train_set),
        "num_val": 0 if val_set is None else len(val_set),
        "num_test": len(test_labels),
        "train_seconds_this_invocation": train_seconds,
        "config": _jsonable(asdict(cfg)),
        "command": cfg.command,
    }
    if val_set is not None:
        result["val_acc"] = float(best["val_acc"])
    result.update(extra or {})
    if not accelerator.is_main_process:
        return {}
    atomic.write_json(out / "metrics.json", result)
    return result


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def load_task_data(task: str, data_root: Path | None, *, train_file: Path | None = None,
                   test_file: Path | None = None, names_file: Path | None = None,
                   up_axis: str = "y", modelnet40_points: int = 8192) -> ClassificationData:
    """The train/test datasets of ``task`` from ``data_root`` (SPEC §5 tree), or explicit h5 files.

    ``modelnet10`` reads ``train.h5`` / ``test.h5`` / ``shape_names.txt`` (LabelledH5) from
    ``data_root`` unless the files are given; ``up_axis`` is the data's up axis.
    ``modelnet40_points`` is the point count of the ModelNet40 FPS cache (``*_{N}pts_fps.dat``).
    """
    if task.startswith("scan_"):
        from pointsd.data.scanobjectnn import ScanObjectNN

        root = _need_root(task, data_root)
        variant = task.removeprefix("scan_")
        return ClassificationData(ScanObjectNN(root, variant, "train"), ScanObjectNN(root, variant, "test"),
                                  list(SCANOBJECTNN_NAMES))
    if task == "modelnet40":
        from pointsd.data.modelnet40 import ModelNet40

        root = _need_root(task, data_root)
        train_set, test_set = (ModelNet40(root, "train", num_points=modelnet40_points),
                               ModelNet40(root, "test", num_points=modelnet40_points))
        names = getattr(train_set, "names", None) or [str(i) for i in range(40)]
        return ClassificationData(train_set, test_set, list(names))
    if task == "modelnet10":
        from pointsd.data.labelled_h5 import LabelledH5

        train_file = train_file or _need_root(task, data_root) / "train.h5"
        test_file = test_file or _need_root(task, data_root) / "test.h5"
        if names_file is None and data_root is not None and (data_root / "shape_names.txt").is_file():
            names_file = data_root / "shape_names.txt"
        train_set = LabelledH5(train_file, names_file, up_axis=up_axis)
        test_set = LabelledH5(test_file, names_file, up_axis=up_axis)
        num_classes = max(train_set.num_classes, test_set.num_classes)
        names = train_set.names or [str(i) for i in range(num_classes)]
        return ClassificationData(train_set, test_set, list(names))
    raise PointSDError(f"unknown task {task!r}; choose one of {', '.join(t for t in TASKS if t != 'fewshot')}")


def _need_root(task: str, data_root: Path | None) -> Path:
    if data_root is None:
        raise PointSDError(f"task {task} needs --data-root")
    return Path(data_root)


def apply_preset(cfg_kwargs: dict[str, Any], task: str) -> dict[str, Any]:
    """Fill every ``None`` of ``npoints, num_group, group_size, lr, epochs, augment, votes`` from the
    task's SPEC preset."""
    preset = asdict(TASKS[task])
    return {k: (preset[k] if v is None and k in preset else v) for k, v in cfg_kwargs.items()}

