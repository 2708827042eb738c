"""The shared training loop: when evaluations happen."""

import json

import pytest
import torch

from pointsd.train.loop import LoopConfig, make_accelerator, train


@pytest.mark.parametrize(("eval_every", "expected"), [(0, [3, 6]), (2, [2, 4, 6]), (4, [4, 6]), (100, [6])])
def test_evaluations_include_the_last_step(tmp_path, eval_every, expected):
    """A run shorter than ``eval_every`` (or not a multiple of it) is still evaluated after its last step."""
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    loader = [torch.randn(4, 2) for _ in range(3)]
    scores = iter(range(100))
    cfg = LoopConfig(out_dir=tmp_path, epochs=2, eval_every=eval_every, select_metric="score", progress=False)
    state = train(make_accelerator("cpu"), cfg, modules={"model": model}, optimizer=optimizer, scheduler=scheduler,
                  loader=loader, step_fn=lambda x: model(x).square().mean(),
                  eval_fn=lambda: {"score": float(next(scores))})
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "score" in x] == expected
    assert state.step == 6 and state.best["step"] == 6


def test_a_tie_selects_the_later_evaluation(tmp_path):
    """A small validation split ties often; the later (more trained) epoch wins a tie."""
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    scores = iter([10.0, 30.0, 30.0, 20.0])
    picked = []
    cfg = LoopConfig(out_dir=tmp_path, epochs=4, select_metric="score", progress=False)
    state = train(make_accelerator("cpu"), cfg, modules={"model": model}, optimizer=optimizer, scheduler=scheduler,
                  loader=[torch.randn(4, 2)], step_fn=lambda x: model(x).square().mean(),
                  eval_fn=lambda: {"score": next(scores)}, on_best=lambda rec: picked.append(rec["epoch"]))
    assert state.best["epoch"] == 3 and state.best_score == 30.0 and picked == [1, 2, 3]
