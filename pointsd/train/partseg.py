"""ShapeNetPart part segmentation (SPEC §4): training, evaluation, protocols.

Model: :class:`pointsd.models.partseg.PointTransformerPartSeg`. Loss: per-point cross-entropy
over the 50 parts. Evaluation follows the official code: each shape's prediction is the argmax
over *its category's* parts only; the shape IoU is the mean over that category's parts, a part
absent from both prediction and ground truth counting 1; instance mIoU = mean over shapes, class
mIoU = mean over categories of their mean shape IoU.

Protocols: ``paper`` trains on train+val and picks the best epoch on the test set (what the
official code does); ``honest`` trains on train, picks the epoch on the official val split and
reports test at that epoch and at the last one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from pointsd.data import transforms
from pointsd.data.shapenetpart import NUM_PARTS, SEG_CLASSES, SPLITS, ShapeNetPart
from pointsd.errors import PointSDError
from pointsd.train import metrics
from pointsd.train.supervised import SupervisedConfig, SupervisedTask, param_groups, run_supervised

CATEGORIES = sorted(SEG_CLASSES)


@dataclass(kw_only=True)
class PartSegConfig(SupervisedConfig):
    """One part-segmentation run (AdamW; its settings from params.yaml `partseg` through the CLI)."""

    eval_batch_size: int = 16


@dataclass
class EvalSet:
    """A split drawn once: ``points (n,N,3)``, ``category (n,)``, ``parts (n,N)``."""

    points: torch.Tensor
    category: torch.Tensor
    parts: torch.Tensor


def materialise(dataset: Dataset, batch_size: int = 64, what: str = "part segmentation evaluation split"
                ) -> EvalSet:
    """Draw every sample of ``dataset`` once (the reader samples points at random per access); ``what``
    names it in the error when it is empty."""
    pts, cats, parts = [], [], []
    for p, c, s in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        pts.append(p)
        cats.append(torch.as_tensor(c, dtype=torch.long))
        parts.append(s)
    if not pts:
        raise PointSDError(f"{what}: 0 shapes to evaluate on; check the split list (pointsd data inspect)")
    return EvalSet(torch.cat(pts), torch.cat(cats), torch.cat(parts))


@torch.no_grad()
def evaluate_miou(model: torch.nn.Module, split: EvalSet, device: torch.device, batch_size: int) -> dict[str, Any]:
    """Class / instance mIoU (percent) and per-category IoU of ``model`` (in eval mode) on ``split``."""
    ious: list[float] = []
    for i in range(0, len(split.points), batch_size):
        logits = model(split.points[i:i + batch_size].to(device), split.category[i:i + batch_size].to(device))
        for lg, cat, gt in zip(logits.float().cpu(), split.category[i:i + batch_size], split.parts[i:i + batch_size]):
            parts = SEG_CLASSES[CATEGORIES[int(cat)]]
            ious.append(metrics.shape_part_iou(metrics.restrict_to_parts(lg, parts), gt, parts))
    return metrics.miou_summary(ious, split.category.tolist(), CATEGORIES)


def majority_part_miou(split: EvalSet) -> dict[str, Any]:
    """The chance level: mIoU of predicting, for every point, its category's most frequent part in ``split``."""
    majority = {}
    for cat in split.category.unique().tolist():
        counts = torch.bincount(split.parts[split.category == cat].reshape(-1), minlength=NUM_PARTS)
        majority[cat] = int(counts.argmax())
    ious = [metrics.shape_part_iou(torch.full_like(gt, majority[int(cat)]), gt, SEG_CLASSES[CATEGORIES[int(cat)]])
            for cat, gt in zip(split.category, split.parts)]
    return metrics.miou_summary(ious, split.category.tolist(), CATEGORIES)


def training_splits(cfg: PartSegConfig) -> tuple[str, ...]:
    """The splits a run trains on: train (honest), or train and val (paper)."""
    return ("train",) if cfg.protocol == "honest" else ("train", "val")


def check_categories(splits: Mapping[str, ShapeNetPart], trained_on: tuple[str, ...]) -> None:
    """Every category an evaluated split holds has training shapes; else :class:`PointSDError` naming the
    training split's list."""
    trained = {category for name in trained_on for _, category in splits[name].items}
    for name in ("val", "test"):
        if name in trained_on:
            continue
        missing = sorted({category for _, category in splits[name].items} - trained)
        if missing:
            raise PointSDError(f"{splits['train'].split_file}: no training shapes of category "
                               f"{', '.join(missing)}, which split '{name}' holds ({splits[name].split_file})")


def partseg_task(cfg: PartSegConfig, splits: Mapping[str, ShapeNetPart], accelerator: Accelerator) -> SupervisedTask:
    """The part-segmentation model, its ``splits`` (train, val, test) and its evaluations under ``cfg.protocol``."""
    from pointsd.models.partseg import PointTransformerPartSeg

    honest = cfg.protocol == "honest"
    parts = [splits[name] for name in training_splits(cfg)]
    train_set = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    test = materialise(splits["test"], what=f"{splits['test'].split_file}: ShapeNetPart split 'test'")
    select = materialise(splits["val"], what=f"{splits['val'].split_file}: ShapeNetPart split 'val'") if honest \
        else test
    select_key = "val_instance_miou" if honest else "test_instance_miou"
    # Features after blocks 4, 8, 12 for the paper depth; a backbone shallower than 3 blocks uses all of them.
    depth = cfg.backbone.depth
    model = PointTransformerPartSeg(NUM_PARTS, len(CATEGORIES), cfg.backbone,
                                    return_layers=None if depth >= 3 else tuple(range(depth)))

    def miou(model: torch.nn.Module, split: EvalSet) -> dict[str, Any]:
        return evaluate_miou(model, split, accelerator.device, cfg.eval_batch_size)

    def loss(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        points, category, parts = batch
        if cfg.augment == "scale_translate":
            points = transforms.scale_translate(points)
        logits = model(points, category).float()
        return F.cross_entropy(logits.reshape(-1, NUM_PARTS), parts.reshape(-1))

    def selected(model: torch.nn.Module) -> dict[str, float]:
        summary = miou(model, select)
        prefix = select_key.split("_")[0]
        return {select_key: summary["instance_miou"], f"{prefix}_class_miou": summary["class_miou"]}

    def last_epoch(model: torch.nn.Module) -> dict[str, Any]:
        last = miou(model, test)
        return {"last_epoch_instance_miou": last["instance_miou"], "last_epoch_class_miou": last["class_miou"]}

    def best(model: torch.nn.Module, saved: dict[str, Any]) -> dict[str, Any]:
        found = {"test": miou(model, test), "num_test": len(test.points),
                 "chance": {k: v for k, v in majority_part_miou(test).items() if k != "per_category"}}
        if honest:
            found.update(val_instance_miou=float(saved[select_key]), num_val=len(select.points))
        return found

    return SupervisedTask(
        name="partseg", model=model, train_set=train_set, loss=loss, select=selected, select_key=select_key,
        make_optimizer=lambda m: cfg.speed_plan().adamw(param_groups(m, cfg.weight_decay), lr=cfg.lr),
        selection=("best epoch by instance mIoU on the TEST set (official code's protocol), trained on train+val"
                   if not honest else "best epoch by instance mIoU on the official val split, trained on train"),
        last_epoch=last_epoch, best=best,
    )


def run_partseg(cfg: PartSegConfig, data_root: Path) -> dict[str, Any]:
    """Train, select the epoch per ``cfg.protocol``, evaluate; write and return ``metrics.json``
    (``{}`` on processes other than the main one)."""
    splits = {name: ShapeNetPart(data_root, name, cfg.npoints) for name in SPLITS}
    check_categories(splits, training_splits(cfg))
    return run_supervised(cfg, lambda accelerator: partseg_task(cfg, splits, accelerator), data=splits,
                          too_small=f"{splits['train'].split_file}: ShapeNetPart has {{n}} training shapes "
                                    f"({' + '.join(training_splits(cfg))}); need at least 2")
