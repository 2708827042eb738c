"""What every training run's configuration holds: its folder, schedule, seed, devices and bookkeeping.

The base of the pre-training (:class:`pointsd.train.pretrain.PretrainConfig`) and the supervised
(:class:`pointsd.train.supervised.SupervisedConfig`) configurations; every value comes from a CLI
flag. The hyper-parameters have no default here: params.yaml holds them (the SPEC's in its paper
profile), the pipeline passes them; only how a run executes has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(kw_only=True)
class TrainingConfig:
    """Where a run writes, how long and how fast it trains, and how it executes."""

    out_dir: Path
    epochs: int
    batch_size: int  # per process
    lr: float
    weight_decay: float
    warmup_epochs: int
    grad_clip: float  # 0 disables clipping
    npoints: int
    seed: int = 0
    device: str = "auto"
    mixed_precision: str = "no"
    num_workers: int = 0
    max_steps_per_epoch: int | None = None
    profile: str = "default"
    data_profile: str = "synthetic"
    progress: bool = True
    overwrite: bool = False
