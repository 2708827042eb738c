"""What every training run's configuration holds: its folder, schedule, seed, devices and bookkeeping.

The base of the pre-training (:class:`pointsd.train.pretrain.PretrainConfig`) and the supervised
(:class:`pointsd.train.supervised.SupervisedConfig`) configurations; every value comes from a CLI
flag. The hyper-parameters have no default here: params.yaml holds them (the SPEC's in its paper
profile), the pipeline passes them; only how a run executes has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pointsd.train.speed import SpeedPlan, plan_for, resolve_device


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
    speed: str = "fast"  # fast | exact (pointsd.train.speed)
    mixed_precision: str = "auto"  # auto: the speed plan's choice
    num_workers: int | None = None  # None: the speed plan's choice
    max_steps_per_epoch: int | None = None
    profile: str = "default"
    data_profile: str = "synthetic"
    progress: bool = True
    overwrite: bool = False

    def speed_plan(self) -> SpeedPlan:
        """What this run does for speed on its device (:mod:`pointsd.train.speed`)."""
        return plan_for(self.speed, resolve_device(self.device), self.mixed_precision, self.num_workers)
