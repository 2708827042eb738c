"""The fast path's levers on the CPU (the CUDA plan forced where the arithmetic allows): the latent
cache samples what the VAE would, pre-training runs with frozen bf16 weights, fused AdamW, cached
latents and deferred NaN checks, and records the plan; the exact levers change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState
from torch.utils.data import TensorDataset

from pointsd import ops
from pointsd.data import transforms
from pointsd.diffusion.stable_diffusion import load_stable_diffusion, write_tiny_sd
from pointsd.errors import PointSDError
from pointsd.train import latent_cache
from pointsd.train.finetune import fps_pool
from pointsd.train.latent_cache import LatentCache
from pointsd.train.loop import LoopConfig, make_accelerator, train
from pointsd.train.pretrain import NoiseConfig, run_pretrain
from pointsd.train.speed import SpeedPlan, plan_for
from tests.train.test_pretrain import config, pairs, probe_sets

CUDA_LIKE = SpeedPlan(**{**plan_for("fast", torch.device("cuda")).record(), "compile": False, "tf32": False,
                         "num_workers": 0, "pin_memory": False})


@pytest.fixture
def fresh_accelerate():
    """Another mixed precision than the process's first Accelerator needs a fresh accelerate state."""
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="module")
def sd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_sd(tmp_path_factory.mktemp("sd") / "sd-tiny")


class Views:
    """``n`` random views, mirrored on demand."""

    def __init__(self, n: int = 3) -> None:
        self.images = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def __len__(self) -> int:
        return len(self.images)

    def view_image(self, index: int, flip: bool) -> torch.Tensor:
        return self.images[index].flip(-1) if flip else self.images[index]


def test_latent_cache_samples_what_the_vae_samples(sd_dir):
    vae = load_stable_diffusion(sd_dir).vae
    views = Views()
    cache = LatentCache(vae, views, batch_size=4)
    index, flip = torch.tensor([2, 0, 2]), torch.tensor([True, False, False])
    images = torch.stack([views.view_image(int(i), bool(f)) for i, f in zip(index, flip)])
    torch.manual_seed(5)
    expected = vae.encode(images).latent_dist.sample() * vae.config.scaling_factor
    torch.manual_seed(5)
    assert torch.allclose(cache.sample(index, flip), expected, atol=1e-5)
    assert len(cache) == 6


def test_pretraining_on_the_cuda_plan_runs_and_records_it(sd_dir, tmp_path, monkeypatch, fresh_accelerate):
    sampled = []
    original = latent_cache.LatentCache.sample
    monkeypatch.setattr(latent_cache.LatentCache, "sample",
                        lambda self, i, f: sampled.append(len(i)) or original(self, i, f))
    data = Views(8)
    items = [{**p, "index": i, "flip": bool(i % 2), "image": data.view_image(i, bool(i % 2))}
             for i, p in enumerate(pairs(8))]

    class Items(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(items)

        def __getitem__(self, i: int) -> dict:
            return items[i]

        def view_image(self, index: int, flip: bool) -> torch.Tensor:
            return data.view_image(index, flip)

    s1 = run_pretrain(config(sd_dir, tmp_path / "s1", 1, noise=NoiseConfig(mix_prob=0.0)), Items(), probe_sets(),
                      plan=CUDA_LIKE)
    s2 = run_pretrain(config(sd_dir, tmp_path / "s2", 2, stage1_dir=tmp_path / "s1"), Items(), probe_sets(),
                      plan=CUDA_LIKE)
    assert sampled and sum(sampled) >= 2 * 4  # stage 1 never mixes: every batch came from the cache
    for summary in (s1, s2):
        assert summary["meta"]["speed"] == CUDA_LIKE.record() and summary["final_loss"] > 0
    written = json.loads((tmp_path / "s2" / "summary.json").read_text())
    assert written["meta"]["speed"]["frozen_bf16"] is True


def test_deferred_check_finds_a_nan_when_the_loss_is_logged(tmp_path):
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    calls = []

    def step(batch: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        loss = model(batch).pow(2).mean()
        return loss * float("nan") if len(calls) == 2 else loss

    cfg = LoopConfig(out_dir=tmp_path, epochs=1, log_every=3, progress=False, check_every_step=False)
    with pytest.raises(PointSDError, match=r"non-finite in steps 1-3"):
        train(make_accelerator("cpu"), cfg, modules={"m": model}, optimizer=optimizer, scheduler=scheduler,
              loader=[torch.ones(4, 2)] * 5, step_fn=step)
    assert len(calls) == 3  # found at the first logged step, not after the last one
    assert not (tmp_path / "state" / "last.pt").exists()


@pytest.mark.parametrize("n_points", [40, 30])  # FPS to 36 of 40; a cloud with m == N is kept as it is
def test_training_pool_draws_what_fps_subsample_draws(n_points):
    clouds = torch.rand(5, n_points, 3, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(3)
    expected = transforms.fps_subsample(clouds, 30, 1.2)
    pool, labels = fps_pool(TensorDataset(clouds, torch.arange(5)), 30, 1.2, torch.device("cpu"), 2, training=True)
    torch.manual_seed(3)
    drawn = ops.gather(pool, transforms.random_subsets(5, pool.shape[1], 30, pool, None))
    assert torch.equal(drawn, expected) and labels.tolist() == list(range(5))


def test_random_subsets_are_distinct_indices():
    rows = transforms.random_subsets(4, 10, 6, torch.zeros(1), torch.Generator().manual_seed(0))
    assert rows.shape == (4, 6) and all(len(set(r.tolist())) == 6 and max(r) < 10 for r in rows)


def test_deferred_check_runs_before_an_evaluation(tmp_path):
    """Evaluating every 2 steps, logging every 3: the NaN of step 2 stops the run before its evaluation
    (no best weights from a diverged model)."""
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    evaluated, calls = [], []

    def step(batch: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        loss = model(batch).pow(2).mean()
        return loss * float("nan") if len(calls) == 2 else loss

    cfg = LoopConfig(out_dir=tmp_path, epochs=1, log_every=3, eval_every=2, select_metric="score", progress=False,
                     check_every_step=False)
    with pytest.raises(PointSDError, match=r"non-finite in steps 1-2"):
        train(make_accelerator("cpu"), cfg, modules={"m": model}, optimizer=optimizer, scheduler=scheduler,
              loader=[torch.ones(4, 2)] * 5, step_fn=step,
              eval_fn=lambda: evaluated.append(1) or {"score": 1.0}, on_best=lambda record: evaluated.append(2))
    assert evaluated == []
