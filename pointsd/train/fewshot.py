"""ModelNet40 few-shot classification (SPEC §4): one ``{way}way_{shot}shot`` fold per run.

Same model, sampling and augmentation as ModelNet40 fine-tuning (lr 0.05, 150 epochs in the paper
profile); the fold's ``test`` list is the test set. Folds are aggregated into mean ± std by
:func:`pointsd.train.metrics.aggregate_folds`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pointsd.data.fewshot import ModelNetFewShot
from pointsd.errors import PointSDError
from pointsd.train.finetune import ClassificationData, FinetuneConfig, run_finetune


def load_fold(data_root: Path, way: int, shot: int, fold: int) -> ClassificationData:
    """Train (support) and test sets of one fold; class names are the fold's label ids."""
    return ClassificationData(
        ModelNetFewShot(data_root, way, shot, fold, "train"),
        ModelNetFewShot(data_root, way, shot, fold, "test"),
        [str(i) for i in range(way)],
    )


def run_fewshot(cfg: FinetuneConfig, data_root: Path, way: int, shot: int, fold: int) -> dict[str, Any]:
    """Fine-tune on one fold; ``metrics.json`` adds ``way``, ``shot``, ``fold``."""
    if way < 2 or shot < 1 or fold < 0:
        raise PointSDError(f"few-shot needs way >= 2, shot >= 1, fold >= 0; got {way}, {shot}, {fold}")
    if cfg.task != "fewshot":
        raise PointSDError(f"few-shot run with task {cfg.task!r}; expected 'fewshot'")
    return run_finetune(cfg, load_fold(data_root, way, shot, fold), extra={"way": way, "shot": shot, "fold": fold})
