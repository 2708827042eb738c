"""What every training run's configuration holds: its folder, schedule, seed, devices and bookkeeping.

The base of the pre-training (:class:`pointsd.train.pretrain.PretrainConfig`) and the supervised
(:class:`pointsd.train.supervised.SupervisedConfig`) configurations; every value comes from a CLI
flag. The defaults are those of classification fine-tuning (SPEC §4); a task overrides its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(kw_only=True)
class TrainingConfig:
    """Where a run writes, how long and how fast it trains, and how it executes."""

    out_dir: Path
    epochs: int = 300
    batch_size: int = 32
    lr: float = 0.017
    weight_decay: float = 1e-4
    warmup_epochs: int = 10
    grad_clip: float = 10.0  # 0 disables clipping
    npoints: int = 1024
    seed: int = 0
    device: str = "auto"
    mixed_precision: str = "no"
    num_workers: int = 0
    max_steps_per_epoch: int | None = None
    profile: str = "default"
    data_profile: str = "synthetic"
    progress: bool = True
    overwrite: bool = False
