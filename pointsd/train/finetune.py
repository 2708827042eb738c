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

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from pointsd import ops
from pointsd.data import transforms
from pointsd.errors import PointSDError
from pointsd.train import metrics
from pointsd.train.presets import AUGMENTS, CLASSIFICATION_TASKS, OPTIMIZERS, SCANOBJECTNN_NAMES
from pointsd.train.splits import stratified_split
from pointsd.train.supervised import SupervisedConfig, SupervisedTask, param_groups, run_supervised


@dataclass(kw_only=True)
class FinetuneConfig(SupervisedConfig):
    """Everything one fine-tuning run needs; every value comes from a CLI flag."""

    task: str
    val_fraction: float = 0.1
    optimizer: str
    momentum: float = 0.9
    grad_accum: int = 1
    label_smoothing: float = 0.0
    oversample: float = 1.2
    votes: int

    def validate(self) -> None:
        """Raise :class:`PointSDError` naming the first bad field."""
        for key, allowed in {"augment": AUGMENTS, "optimizer": OPTIMIZERS}.items():
            if getattr(self, key) not in allowed:
                raise PointSDError(f"{key} must be one of {'|'.join(allowed)}, got {getattr(self, key)!r}")
        if self.protocol == "honest" and not 0.0 < self.val_fraction < 1.0:
            raise PointSDError(f"val_fraction must be in (0,1) for the honest protocol, got {self.val_fraction}")
        super().validate()


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


def make_optimizer(model: torch.nn.Module, cfg: FinetuneConfig) -> torch.optim.Optimizer:
    """SGD (momentum) as SPEC §4, or AdamW when asked (fused on the fast path)."""
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return cfg.speed_plan().adamw(groups, lr=cfg.lr)


def augment_batch(points: torch.Tensor, kind: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Train-time augmentation ``kind`` of ``points (B,N,3)`` (SPEC §4 per task); ``none`` returns them as is.

    ``generator`` seeds the random draws (``None``: torch's global RNG).
    """
    if kind == "scale_translate":
        return transforms.scale_translate(points, generator=generator)
    if kind == "scale_rotate":
        return transforms.rotate_up(transforms.scale(points, 0.9, 1.1, generator=generator), generator=generator)
    return points


def training_points(pool: torch.Tensor, npoints: int, augment: str) -> torch.Tensor:
    """A training batch from its clouds' pools ``(B,m,3)`` (:func:`fps_pool` with ``training``): a random
    ``npoints`` subset of each, :func:`~pointsd.data.transforms.fps_subsample`'s draw, then ``augment`` →
    ``(B,npoints,3)``."""
    choice = transforms.random_subsets(pool.shape[0], pool.shape[1], npoints, pool, None)
    return augment_batch(ops.gather(pool, choice), augment)


def fps_pool(dataset: Dataset, npoints: int, oversample: float, device: torch.device,
             batch_size: int = 64, *, training: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """FPS every cloud to ``m = min(N, int(oversample*npoints))`` points once (deterministic, start 0).

    → ``pool (n, m, 3)`` on CPU, FPS-ordered so ``pool[:, :npoints]`` is the FPS to ``npoints``;
    ``labels (n,)`` int64. ``training``: the pool a training step draws its random subset from, as
    :func:`pointsd.data.transforms.fps_subsample` would each step (a cloud with ``m == N`` is kept as it
    is); its loader has its own generator, so building it leaves the run's random stream unchanged.
    """
    if len(dataset) == 0:
        raise PointSDError(f"{dataset_source(dataset)}: 0 clouds to evaluate on; "
                           "check it with pointsd data inspect")
    pools, labels = [], []
    generator = torch.Generator() if training else None
    for points, label in DataLoader(dataset, batch_size=batch_size, shuffle=False, generator=generator):
        N = points.shape[1]
        if N < npoints:
            raise PointSDError(f"clouds have {N} points, fewer than npoints={npoints}")
        m = min(N, int(oversample * npoints))
        if training and m == N:
            pools.append(points)
        else:
            pts = points.to(device)
            pools.append(ops.gather(pts, ops.furthest_point_sample(pts, m)).cpu())
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
                  batch_size: int, seed: int, augment: str) -> torch.Tensor:
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


def classification_task(cfg: FinetuneConfig, data: ClassificationData, accelerator: Accelerator) -> SupervisedTask:
    """The classifier, its data and its evaluations under ``cfg.protocol`` (see the module docstring)."""
    train_set, val_set = data.train, None
    if cfg.protocol == "honest":
        tr_idx, va_idx = stratified_split(dataset_labels(data.train), cfg.val_fraction, cfg.seed)
        train_set, val_set = Subset(data.train, tr_idx.tolist()), Subset(data.train, va_idx.tolist())
    from pointsd.models.classifier import PointTransformerClassifier

    model = PointTransformerClassifier(len(data.class_names), cfg.backbone)
    train_pool = train_set if len(train_set) < 2 else TensorDataset(  # < 2: the runner's error names the set
        *fps_pool(train_set, cfg.npoints, cfg.oversample, accelerator.device, cfg.eval_batch_size, training=True))
    test_pool, test_labels = fps_pool(data.test, cfg.npoints, cfg.oversample, accelerator.device, cfg.eval_batch_size)
    select_pool, select_labels = (test_pool, test_labels) if val_set is None else fps_pool(
        val_set, cfg.npoints, cfg.oversample, accelerator.device, cfg.eval_batch_size)
    select_key = "test_acc" if val_set is None else "val_acc"

    def accuracy(model: torch.nn.Module, pool: torch.Tensor, labels: torch.Tensor) -> float:
        logits = gathered_logits(accelerator, model, pool[:, :cfg.npoints], cfg.eval_batch_size)
        return metrics.overall_accuracy(logits.argmax(1), labels)

    def loss(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        pool, labels = batch
        points = training_points(pool, cfg.npoints, cfg.augment)
        return F.cross_entropy(model(points).float(), labels, label_smoothing=cfg.label_smoothing)

    def best(model: torch.nn.Module, saved: dict[str, Any]) -> dict[str, Any]:
        logits = gathered_logits(accelerator, model, test_pool[:, :cfg.npoints], cfg.eval_batch_size)
        test = classification_report(logits, test_labels, data.class_names)
        if cfg.votes > 0:
            voted = voting_logits(accelerator, model, test_pool, cfg.npoints, cfg.votes, cfg.eval_batch_size,
                                  cfg.seed, cfg.augment)
            test["voting_acc"] = metrics.overall_accuracy(voted.argmax(1), test_labels)
            test["votes"] = cfg.votes
        found = {"test": test, "chance": {"overall_acc": metrics.majority_rate(test_labels)},
                 "num_val": 0 if val_set is None else len(val_set), "num_test": len(test_labels)}
        return found if val_set is None else {**found, "val_acc": float(saved["val_acc"])}

    return SupervisedTask(
        name=cfg.task, model=model, make_optimizer=lambda m: make_optimizer(m, cfg), train_set=train_pool,
        loss=loss, select=lambda m: {select_key: accuracy(m, select_pool, select_labels)}, select_key=select_key,
        selection=("best epoch chosen on the TEST set (official code's protocol)" if val_set is None
                   else f"best epoch chosen on a stratified validation split ({cfg.val_fraction:.0%} of train)"),
        last_epoch=lambda m: {"last_epoch_acc": accuracy(m, test_pool, test_labels)},
        best=best, shuffle_seed=cfg.seed,
        meta={"num_processes": accelerator.num_processes, "grad_accum": cfg.grad_accum},
    )


def run_finetune(cfg: FinetuneConfig, data: ClassificationData,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train, select the epoch per ``cfg.protocol``, evaluate; write and return ``metrics.json``.

    Resumes from the state in ``out_dir``'s work folder when present (:mod:`pointsd.utils.staging`); a finished run (same configuration and data, see
    :mod:`pointsd.utils.run_config`) returns its metrics unchanged. ``extra`` is merged into the metrics.
    """
    return run_supervised(cfg, lambda accelerator: classification_task(cfg, data, accelerator),
                          data={"train": data.train, "test": data.test}, grad_accum=cfg.grad_accum, extra=extra,
                          too_small=f"{dataset_source(data.train)}: the training set of task {cfg.task} has {{n}} "
                                    "clouds; need at least 2")


def load_task_data(task: str, data_root: Path | None, *, train_file: Path | None = None,
                   test_file: Path | None = None, names_file: Path | None = None,
                   up_axis: str = "y", modelnet40_points: int | None = None) -> ClassificationData:
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
        if modelnet40_points is None:
            raise PointSDError("task modelnet40 needs --modelnet40-points (the FPS cache size: SPEC 8192)")
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
    raise PointSDError(f"unknown task {task!r}; choose one of {', '.join(CLASSIFICATION_TASKS)}")


def _need_root(task: str, data_root: Path | None) -> Path:
    if data_root is None:
        raise PointSDError(f"task {task} needs --data-root")
    return Path(data_root)
