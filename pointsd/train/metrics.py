"""Downstream metrics (SPEC §4): accuracy, per-class accuracy, test-time voting, part IoU / mIoU,
and aggregation over few-shot folds or seeds.

Every accuracy and IoU is returned in percent (0–100), as the paper reports them.
Standard deviations are population standard deviations (numpy ``ddof=0``), the convention of
the Point-BERT / Point-MAE few-shot tables.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import reduce
from typing import TYPE_CHECKING

import numpy as np

from pointsd.errors import PointSDError

if TYPE_CHECKING:  # the aggregations (report table, *-aggregate) must not pay for importing torch
    import torch


def overall_accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Percent of ``pred (n,)`` equal to ``target (n,)``."""
    if pred.shape != target.shape or pred.numel() == 0:
        raise PointSDError(f"accuracy needs equal, non-empty shapes, got {tuple(pred.shape)} and {tuple(target.shape)}")
    return 100.0 * (pred == target).float().mean().item()


def majority_rate(target: torch.Tensor) -> float:
    """Chance level of ``target (n,)`` labels: percent of the most frequent one (the best constant guess)."""
    if target.numel() == 0:
        raise PointSDError("majority rate of an empty label set")
    return 100.0 * target.reshape(-1).bincount().max().item() / target.numel()


def per_class_accuracy(
    pred: torch.Tensor, target: torch.Tensor, class_names: Sequence[str]
) -> dict[str, float]:
    """Accuracy (percent) of each class present in ``target (n,)``; classes absent from it are left out."""
    result: dict[str, float] = {}
    for c, name in enumerate(class_names):
        mask = target == c
        if mask.any():
            result[name] = 100.0 * (pred[mask] == c).float().mean().item()
    return result


def mean_class_accuracy(per_class: Mapping[str, float]) -> float:
    """Unweighted mean of per-class accuracies (percent): ``mAcc``."""
    if not per_class:
        raise PointSDError("mean class accuracy of an empty set of classes")
    return float(np.mean(list(per_class.values())))


def vote_logits(logits: torch.Tensor) -> torch.Tensor:
    """Test-time voting (Point-MAE style): logits of ``V`` votes ``(V,B,C)`` → averaged ``(B,C)``."""
    if logits.ndim != 3 or logits.shape[0] == 0:
        raise PointSDError(f"voting expects logits (V,B,C) with V >= 1, got {tuple(logits.shape)}")
    return logits.float().mean(dim=0)


def shape_part_iou(pred: torch.Tensor, target: torch.Tensor, parts: Sequence[int]) -> float:
    """Mean IoU (percent) over the parts of one shape's category.

    ``pred, target (N,)`` part ids. A part absent from both prediction and ground truth counts
    IoU 1 (the official ShapeNetPart evaluation rule).
    """
    ious = []
    for part in parts:
        p, t = pred == part, target == part
        union = (p | t).sum().item()
        ious.append(1.0 if union == 0 else (p & t).sum().item() / union)
    return 100.0 * float(np.mean(ious))


def restrict_to_parts(logits: torch.Tensor, parts: Sequence[int]) -> torch.Tensor:
    """Predicted part ids among the category's ``parts`` only: ``logits (N,P)`` → ``(N,)`` int64."""
    import torch

    ids = torch.as_tensor(list(parts), dtype=torch.long, device=logits.device)
    return ids[logits[:, ids].argmax(dim=1)]


def miou_summary(
    shape_ious: Sequence[float], categories: Sequence[int], category_names: Sequence[str]
) -> dict[str, object]:
    """ShapeNetPart summary from per-shape IoUs (percent) and their category ids.

    ``instance_miou``: mean over shapes; ``class_miou``: mean over categories (present in the
    evaluated set) of the mean shape IoU; ``per_category``: name → mean shape IoU.
    """
    if len(shape_ious) != len(categories) or not shape_ious:
        raise PointSDError(f"{len(shape_ious)} shape IoUs for {len(categories)} categories")
    by_cat: dict[int, list[float]] = defaultdict(list)
    for iou, cat in zip(shape_ious, categories):
        by_cat[int(cat)].append(float(iou))
    per_category = {category_names[c]: float(np.mean(v)) for c, v in sorted(by_cat.items())}
    return {
        "instance_miou": float(np.mean(shape_ious)),
        "class_miou": float(np.mean(list(per_category.values()))),
        "per_category": per_category,
    }


def mean_std(values: Iterable[float]) -> dict[str, float]:
    """``{"mean", "std", "n"}`` of ``values``; std is the population std (``ddof=0``)."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        raise PointSDError("mean ± std of no values")
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=0)), "n": int(arr.size)}


def aggregate_folds(records: Iterable[Mapping[str, object]]) -> dict[str, dict[str, object]]:
    """Few-shot fold files → ``{"5w10s": {"mean","std","n_folds","folds"}}`` per (way, shot).

    Each record carries ``way``, ``shot``, ``fold`` and ``test.overall_acc``; a fold given twice
    for one setting is an error.
    """
    grouped: dict[tuple[int, int], dict[int, float]] = defaultdict(dict)
    for rec in records:
        try:
            key = (int(rec["way"]), int(rec["shot"]))
            fold = int(rec["fold"])
            acc = float(rec["test"]["overall_acc"])  # type: ignore[index]
        except (KeyError, TypeError, ValueError) as err:
            raise PointSDError(f"few-shot record lacks way/shot/fold/test.overall_acc: {err}") from err
        if fold in grouped[key]:
            raise PointSDError(f"fold {fold} of {key[0]}way{key[1]}shot given twice")
        grouped[key][fold] = acc
    settings: dict[str, dict[str, object]] = {}
    for (way, shot), folds in sorted(grouped.items()):
        stats = mean_std(folds.values())
        settings[f"{way}w{shot}s"] = {
            "way": way, "shot": shot, "mean": stats["mean"], "std": stats["std"],
            "n_folds": stats["n"], "folds": {str(f): folds[f] for f in sorted(folds)},
        }
    return settings


def aggregate_seeds(records: Iterable[Mapping[str, object]], keys: Sequence[str]) -> dict[str, dict[str, float]]:
    """Runs of one task over several seeds → ``{key: {"mean","std","n"}}`` per dotted ``key``.

    ``key`` is a path into each record, e.g. ``test.overall_acc`` or ``last_epoch_acc``; used for
    the honest protocol, whose numbers are reported as mean ± std over seeds.
    """
    recs = list(records)
    return {key: mean_std(_dotted(r, key) for r in recs) for key in keys}


def _dotted(record: Mapping[str, object], key: str) -> float:
    """``record["test"]["overall_acc"]`` for ``"test.overall_acc"``, as a float."""
    try:
        return float(reduce(operator.getitem, key.split("."), record))  # type: ignore[arg-type]
    except (KeyError, TypeError) as err:
        raise PointSDError(f"a metrics record lacks {key!r}") from err
