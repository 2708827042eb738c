"""The speed switch (pointsd/train/speed.py): what each mode turns on per device, overrides, errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

from pointsd.errors import PointSDError
from pointsd.train import speed
from pointsd.train.speed import MAX_AUTO_WORKERS, SpeedPlan, cast_frozen_, plan_for, usable_cpus

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU
LEVERS = ("frozen_bf16", "compile", "fused_adamw", "tf32", "cache_latents", "deferred_checks")


def test_fast_on_cuda_turns_every_lever_on():
    plan = plan_for("fast", CUDA)
    assert plan.mixed_precision == "bf16" and all(getattr(plan, k) for k in LEVERS)
    assert plan.num_workers == min(MAX_AUTO_WORKERS, usable_cpus() // 2) and plan.pin_memory


@pytest.mark.parametrize("speed,device", [("exact", CUDA), ("exact", CPU), ("fast", CPU)])
def test_exact_and_the_cpu_keep_the_fp32_arithmetic(speed, device):
    plan = plan_for(speed, device)
    assert plan.mixed_precision == "no" and not any(getattr(plan, k) for k in LEVERS)
    assert plan.num_workers == 0 and plan.pin_memory == (device.type == "cuda")


@pytest.mark.skipif(shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity"),
                    reason="needs taskset and an affinity mask (Linux)")
def test_usable_cpus_is_the_affinity_mask():
    """A job pinned to one CPU (taskset, a SLURM allocation) counts one, whatever the node has."""
    probe = "from pointsd.train.speed import usable_cpus; print(usable_cpus())"
    proc = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1"]


def test_auto_workers_share_the_node_between_its_processes(monkeypatch):
    monkeypatch.setattr(speed, "usable_cpus", lambda: 16)
    assert plan_for("fast", CUDA).num_workers == 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert plan_for("fast", CUDA).num_workers == 2


def test_overrides_win_and_the_record_says_what_ran():
    plan = plan_for("fast", CPU, mixed_precision="bf16", num_workers=3)
    assert (plan.mixed_precision, plan.num_workers, plan.frozen_bf16) == ("bf16", 3, False)
    record = plan.record()
    assert record["speed"] == "fast" and record["mixed_precision"] == "bf16" and set(LEVERS) <= set(record)
    assert plan_for("fast", CUDA, mixed_precision="no").frozen_bf16 is False  # no autocast: weights stay fp32


@pytest.mark.parametrize("kwargs,word", [({"speed": "turbo"}, "speed"), ({"mixed_precision": "fp8"}, "mixed_precision")])
def test_bad_values_name_the_key(kwargs, word):
    with pytest.raises(PointSDError, match=word):
        plan_for(**{"speed": "fast", "device": CPU, **kwargs})


def test_frozen_bf16_needs_bf16_autocast():
    fields = {**plan_for("exact", CPU).record(), "frozen_bf16": True}
    with pytest.raises(PointSDError, match="bf16"):
        SpeedPlan(**fields)


def test_cast_frozen_casts_only_what_does_not_train():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    model[0].requires_grad_(False)
    assert cast_frozen_(model, torch.bfloat16) == 2
    assert [p.dtype for p in model.parameters()] == [torch.bfloat16] * 2 + [torch.float32] * 2


def test_adamw_is_fused_only_when_planned():
    params = [torch.nn.Parameter(torch.zeros(3))]
    fused = SpeedPlan(**{**plan_for("exact", CPU).record(), "fused_adamw": True})
    assert fused.adamw(params, lr=1e-3).defaults["fused"] is True
    assert not plan_for("exact", CPU).adamw(params, lr=1e-3).defaults["fused"]
