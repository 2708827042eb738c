"""Training batches whose random draws belong to the samples: shuffled order and per-sample seeds.

A data set may draw at random when it reads a sample (a point subset, an augmentation, a flipped
view). Drawn from the process's global RNG, those draws would depend on when the loader reads ahead
(accelerate reads one batch ahead), on the worker processes, and on where a run was resumed. Here
each epoch draws, from one seeded generator, the order of the samples *and* one seed per position;
a sample is read under its own seed (:class:`SeededSamples`). So a run resumed in the middle of an
epoch (the loop skips the batches already trained, without reading them) reads the same samples
with the same draws as an uninterrupted one, and every process reads a sample as any other would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pointsd.train.speed import SpeedPlan

SEED_RANGE = 2**62


class SeededShuffle(Sampler[tuple[int, int]]):
    """``(index, seed)`` pairs of ``n`` samples: a permutation and one seed per position, both drawn
    from ``generator`` when an epoch starts (the loop checkpoints ``generator``)."""

    def __init__(self, n: int, generator: torch.Generator) -> None:
        self.n, self.generator = n, generator

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = torch.randperm(self.n, generator=self.generator).tolist()
        seeds = torch.randint(SEED_RANGE, (self.n,), generator=self.generator).tolist()
        return iter(zip(order, seeds))


class SeededSamples(Dataset):
    """``dataset`` read by ``(index, seed)``: the sample's draws come from torch's RNG seeded with
    ``seed`` (the caller's RNG state is restored afterwards)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, seed = item
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


def shuffled_loader(dataset: Dataset, batch_size: int, seed: int, plan: SpeedPlan, drop_last: bool) -> DataLoader:
    """Batches of ``dataset`` in an order and with sample draws that follow from ``seed`` alone."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(SeededSamples(dataset), batch_size=batch_size, sampler=SeededShuffle(len(dataset), generator),
                      drop_last=drop_last, generator=generator, **plan.loader_options())
