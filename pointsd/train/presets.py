"""Task presets and choices of fine-tuning (SPEC §4), importable without torch (the CLI's flags use them)."""

from __future__ import annotations

from dataclasses import dataclass

PROTOCOLS = ("paper", "honest")
AUGMENTS = ("scale_translate", "scale_rotate", "none")
OPTIMIZERS = ("sgd", "adamw")
SCANOBJECTNN_NAMES = (
    "bag", "bin", "box", "cabinet", "chair", "desk", "display", "door", "shelf", "table", "bed",
    "pillow", "sink", "sofa", "toilet",
)


@dataclass(frozen=True)
class TaskPreset:
    """SPEC §4 paper settings of one classification task."""

    npoints: int
    num_group: int
    lr: float
    augment: str
    votes: int
    epochs: int = 300
    group_size: int = 32


TASKS: dict[str, TaskPreset] = {
    "scan_objbg": TaskPreset(2048, 128, 0.011, "scale_rotate", 0),
    "scan_objonly": TaskPreset(2048, 128, 0.011, "scale_rotate", 0),
    "scan_hardest": TaskPreset(2048, 128, 0.011, "scale_rotate", 0),
    "modelnet40": TaskPreset(1024, 64, 0.017, "scale_translate", 10),
    "modelnet10": TaskPreset(1024, 64, 0.017, "scale_translate", 0),
    "fewshot": TaskPreset(1024, 64, 0.05, "scale_translate", 0, epochs=150),
}
