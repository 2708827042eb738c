"""``run_pretrain`` on 32 fixed (points, image) pairs, launched by test_pretrain_distributed.py.

The data set has no random draws of its own (ShapeNet55Pretrain's point subset and flip draw from
each process's RNG, so only the training step is layout-independent); every process appends the
sample indices its training loop read (not stage 1's conditioning check after it) to
``SEEN/seen-<rank>.txt`` (``--seen``; the run folder appears only finished), saves the gradients of
its first optimiser step (averaged over processes and accumulation steps) to ``SEEN/grads-<rank>.pt``,
and after training the parameters it holds to ``SEEN/params-<rank>.pt`` (not the buffers: BatchNorm's
running statistics see 4 batches on each of 2 processes but 8 on one process with accumulation).
``--fail-at STEP`` makes the last process raise after that optimiser step (a rank that fails).
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import torch
from accelerate import PartialState
from torch.utils.data import Dataset

from pointsd.models.config import BackboneConfig
from pointsd.train import loop, pretrain
from pointsd.train.pretrain import NoiseConfig, PretrainConfig, run_pretrain
from pointsd.train.probe import ProbeConfig

TINY = BackboneConfig(trans_dim=32, depth=1, num_heads=2, group_size=8, num_group=8, encoder_dims=32,
                      drop_path_rate=0.1)


class Pairs(Dataset):
    """32 fixed pairs ``points (64,3)``, ``image (3,32,32)``; logs every index read while ``logging``."""

    def __init__(self, seen: Path) -> None:
        g = torch.Generator().manual_seed(0)
        self.items = [{"points": torch.rand(64, 3, generator=g) - 0.5,
                       "image": torch.rand(3, 32, 32, generator=g) * 2 - 1} for _ in range(32)]
        self.seen = seen
        self.logging = False

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        if not self.logging:
            return self.items[i]
        # Read here, not in __init__: a PartialState made before the Accelerator(cpu=True) would be single-process.
        with open(self.seen / f"seen-{PartialState().process_index}.txt", "a") as fh:
            fh.write(f"{i}\n")
        return self.items[i]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--stage", type=int, required=True)
    p.add_argument("--sd", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seen", type=Path, required=True)
    p.add_argument("--stage1", type=Path)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--fail-at", type=int)
    args = p.parse_args()
    args.seen.mkdir(parents=True, exist_ok=True)
    cfg = PretrainConfig(stage=args.stage, sd_dir=args.sd, out_dir=args.out, stage1_dir=args.stage1, epochs=1,
                         batch_size=args.batch_size, grad_accum=args.grad_accum, warmup_epochs=0, lr=1e-3,
                         weight_decay=0.01, grad_clip=1.0, npoints=64, image_size=32, backbone=TINY,
                         noise=NoiseConfig(mix_prob=0.5), probe=ProbeConfig(), probe_every=None, device="cpu",
                         log_every=1, progress=False)
    pairs = Pairs(args.seen)
    pretrain.train = functools.partial(train_and_save, args.seen, pairs)
    run_pretrain(cfg, pairs, on_step=functools.partial(fail_at, args.fail_at))


def train_and_save(seen: Path, pairs: Pairs, accelerator, cfg, *, modules, optimizer, **kwargs):
    """The loop, with ``pairs`` logging its reads; the first step's gradients saved to ``seen/grads-<rank>.pt``
    before the optimiser uses them, then this process's parameters saved to ``seen/params-<rank>.pt``."""
    def named(attribute: str) -> dict[str, torch.Tensor]:
        return {f"{name}.{key}": getattr(value, attribute).detach().clone() for name, module in modules.items()
                for key, value in accelerator.unwrap_model(module).named_parameters()}

    def save_grads(*_) -> None:
        torch.save(named("grad"), seen / f"grads-{accelerator.process_index}.pt")
        hook.remove()

    hook = getattr(optimizer, "optimizer", optimizer).register_step_pre_hook(save_grads)  # under accelerate's wrapper
    pairs.logging = True
    state = loop.train(accelerator, cfg, modules=modules, optimizer=optimizer, **kwargs)
    pairs.logging = False
    torch.save(named("data"), seen / f"params-{accelerator.process_index}.pt")
    return state


def fail_at(step: int | None, done: int) -> None:
    state = PartialState()
    if step == done and state.process_index == state.num_processes - 1:
        raise SystemExit(f"worker: process {state.process_index} fails after step {done} (on purpose)")


if __name__ == "__main__":
    main()
