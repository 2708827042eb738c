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

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.optimization import get_cosine_schedule_with_warmup
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from pointsd.data import transforms
from pointsd.data.shapenetpart import NUM_PARTS, SEG_CLASSES, ShapeNetPart
from pointsd.errors import PointSDError
from pointsd.models.config import BackboneConfig
from pointsd.train import metrics
from pointsd.train.finetune import PROTOCOLS, _jsonable, initialise, param_groups
from pointsd.train.loop import LoopConfig, best_weights_saver, load_best_weights, make_accelerator, train
from pointsd.utils import atomic
from pointsd.utils.run_config import prepare_run_folder
from pointsd.utils.run_info import run_metadata, set_seed

CATEGORIES = sorted(SEG_CLASSES)


@dataclass
class PartSegConfig:
    """One part-segmentation run (SPEC §4 paper values as defaults)."""

    out_dir: Path
    init: str = "scratch"
    protocol: str = "paper"
    seed: int = 0
    device: str = "auto"
    mixed_precision: str = "no"
    epochs: int = 300
    batch_size: int = 16
    eval_batch_size: int = 16
    lr: float = 2e-4
    weight_decay: float = 0.05
    warmup_epochs: int = 10
    grad_clip: float = 10.0
    npoints: int = 2048
    augment: str = "scale_translate"
    num_workers: int = 0
    max_steps_per_epoch: int | None = None
    profile: str = "default"
    data_profile: str = "synthetic"
    progress: bool = True
    command: list[str] = field(default_factory=list)
    backbone: BackboneConfig = field(default_factory=lambda: BackboneConfig(num_group=128))
    overwrite: bool = False


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


def run_partseg(cfg: PartSegConfig, data_root: Path) -> dict[str, Any]:
    """Train, select the epoch per ``cfg.protocol``, evaluate; write and return ``metrics.json``."""
    if cfg.protocol not in PROTOCOLS:
        raise PointSDError(f"protocol must be one of {'|'.join(PROTOCOLS)}, got {cfg.protocol!r}")
    cfg.backbone.validate(cfg.npoints)
    from pointsd.models.partseg import PointTransformerPartSeg

    out = Path(cfg.out_dir)
    finished = prepare_run_folder(out, asdict(cfg), result="metrics.json", overwrite=cfg.overwrite)
    if finished is not None:
        return finished
    set_seed(cfg.seed)
    accelerator = make_accelerator(cfg.device, cfg.mixed_precision)
    device = accelerator.device

    def split(name: str) -> ShapeNetPart:
        return ShapeNetPart(data_root, name, cfg.npoints)

    honest = cfg.protocol == "honest"
    train_set = split("train") if honest else ConcatDataset([split("train"), split("val")])
    test = materialise(split("test"), what=f"{data_root}: ShapeNetPart split 'test'")
    select = materialise(split("val"), what=f"{data_root}: ShapeNetPart split 'val'") if honest else test
    select_key = "val_instance_miou" if honest else "test_instance_miou"

    # Features after blocks 4, 8, 12 for the paper depth; a backbone shallower than 3 blocks uses all of them.
    depth = cfg.backbone.depth
    model = PointTransformerPartSeg(NUM_PARTS, len(CATEGORIES), return_layers=None if depth >= 3 else tuple(range(depth)),
                                    **cfg.backbone.kwargs())
    init_report = initialise(model, cfg.init)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)
    if len(train_set) < 2:
        raise PointSDError(f"ShapeNetPart under {data_root}: {len(train_set)} training shapes; need at least 2")
    loader = DataLoader(train_set, batch_size=min(cfg.batch_size, len(train_set)), shuffle=True, drop_last=True,
                        num_workers=cfg.num_workers)
    steps = len(loader) if cfg.max_steps_per_epoch is None else min(len(loader), cfg.max_steps_per_epoch)
    scheduler = get_cosine_schedule_with_warmup(optimizer, cfg.warmup_epochs * steps, cfg.epochs * steps)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)

    def step_fn(batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        points, category, parts = batch
        if cfg.augment == "scale_translate":
            points = transforms.scale_translate(points)
        logits = model(points, category).float()
        return F.cross_entropy(logits.reshape(-1, NUM_PARTS), parts.reshape(-1))

    def eval_fn() -> dict[str, float]:
        summary = evaluate_miou(model, select, device, cfg.eval_batch_size)
        prefix = select_key.split("_")[0]
        return {select_key: summary["instance_miou"], f"{prefix}_class_miou": summary["class_miou"]}

    on_best = best_weights_saver(out / "best.pt", accelerator, model, select_key)

    loop_cfg = LoopConfig(out_dir=out, epochs=cfg.epochs, grad_clip=cfg.grad_clip or None,
                          log_every=max(1, min(10, steps)), select_metric=select_key, progress=cfg.progress,
                          max_steps_per_epoch=cfg.max_steps_per_epoch)
    started = time.perf_counter()
    state = train(accelerator, loop_cfg, modules={"model": model}, optimizer=optimizer, scheduler=scheduler,
                  loader=loader, step_fn=step_fn, eval_fn=eval_fn, on_best=on_best)
    train_seconds = time.perf_counter() - started

    model.eval()
    last = evaluate_miou(model, test, device, cfg.eval_batch_size)
    best = load_best_weights(out / "best.pt", accelerator, model)
    result: dict[str, Any] = {
        "task": "partseg",
        "init": cfg.init,
        "init_report": init_report,
        "protocol": cfg.protocol,
        "selection": ("best epoch by instance mIoU on the TEST set (official code's protocol), trained on train+val"
                      if not honest else "best epoch by instance mIoU on the official val split, trained on train"),
        "meta": run_metadata(profile=cfg.profile, protocol=cfg.protocol, seed=cfg.seed, device=device,
                             data_profile=cfg.data_profile, mixed_precision=cfg.mixed_precision),
        "test": evaluate_miou(model, test, device, cfg.eval_batch_size),
        "chance": {k: v for k, v in majority_part_miou(test).items() if k != "per_category"},
        "selected_epoch": int(best["epoch"]),
        "last_epoch": state.epoch,
        "last_epoch_instance_miou": last["instance_miou"],
        "last_epoch_class_miou": last["class_miou"],
        "num_train": len(train_set),
        "num_test": len(test.points),
        "train_seconds_this_invocation": train_seconds,
        "config": _jsonable(asdict(cfg)),
        "command": cfg.command,
    }
    if honest:
        result["val_instance_miou"] = float(best[select_key])
        result["num_val"] = len(select.points)
    atomic.write_json(out / "metrics.json", result)
    return result
