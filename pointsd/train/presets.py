"""Tasks and choices of fine-tuning (SPEC §4) and of every training run, importable without torch (the CLI's flags use them).

Their settings live in params.yaml (the SPEC's in `profiles.paper`), not here."""

from __future__ import annotations

PROTOCOLS = ("paper", "honest")
AUGMENTS = ("scale_translate", "scale_rotate", "none")
OPTIMIZERS = ("sgd", "adamw")
SPEEDS = ("fast", "exact")  # pointsd.train.speed
PRECISIONS = ("auto", "no", "bf16", "fp16")  # --mixed-precision; auto: the speed mode's choice
# --init scratch: the trunk at PyTorch's default initialisation (where PointSD's pre-training starts) |
# Point-MAE's truncated normal (its from-scratch fine-tuning models)
SCRATCH_INITS = ("pytorch", "point_mae")
# Pre-training variants (params.yaml `pretrain`; the first of each is the official code's behaviour):
POINT_SUBSETS = ("first", "whole")  # the first npoints stored points, shuffled | a random npoints of all
MIX_RESIZES = ("nearest", "antialias")  # patch mix: the joined image resized back (F.interpolate default | bicubic+AA)
STAGE2_GROUPINGS = ("per_encoder", "shared")  # stage 2: teacher and student group and mix each | one for both
SCANOBJECTNN_NAMES = (
    "bag", "bin", "box", "cabinet", "chair", "desk", "display", "door", "shelf", "table", "bed",
    "pillow", "sink", "sofa", "toilet",
)


CLASSIFICATION_TASKS = ("scan_objbg", "scan_objonly", "scan_hardest", "modelnet40", "modelnet10")
