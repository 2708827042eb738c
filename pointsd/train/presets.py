"""Tasks and choices of fine-tuning (SPEC §4) and of every training run, importable without torch (the CLI's flags use them).

Their settings live in params.yaml (the SPEC's in `profiles.paper`), not here."""

from __future__ import annotations

PROTOCOLS = ("paper", "honest")
AUGMENTS = ("scale_translate", "scale_rotate", "none")
OPTIMIZERS = ("sgd", "adamw")
SPEEDS = ("fast", "exact")  # pointsd.train.speed
PRECISIONS = ("auto", "no", "bf16", "fp16")  # --mixed-precision; auto: the speed mode's choice
SCANOBJECTNN_NAMES = (
    "bag", "bin", "box", "cabinet", "chair", "desk", "display", "door", "shelf", "table", "bed",
    "pillow", "sink", "sofa", "toilet",
)


CLASSIFICATION_TASKS = ("scan_objbg", "scan_objonly", "scan_hardest", "modelnet40", "modelnet10")
