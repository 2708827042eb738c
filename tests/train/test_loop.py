"""The shared training loop: when evaluations happen, gradient clipping, non-finite losses, and the
metrics log on resume."""

import json

import pytest
import torch

from pointsd.errors import PointSDError
from pointsd.train import loop
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


def _linear_run(tmp_path, epochs: int = 1, grad_clip: float | None = None, step_fn=None, batches=None):
    """``Linear(3, 2)`` trained by plain SGD (lr 1, so a step moves the weights by exactly the used gradient)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    batches = batches if batches is not None else [torch.full((4, 3), 10.0)]
    cfg = LoopConfig(out_dir=tmp_path, epochs=epochs, grad_clip=grad_clip, log_every=1, progress=False)
    step_fn = step_fn or (lambda x: model(x).square().mean())
    before = [p.detach().clone() for p in model.parameters()]
    train(make_accelerator("cpu"), cfg, modules={"model": model}, optimizer=optimizer, scheduler=scheduler,
          loader=batches, step_fn=step_fn)
    return model, before


def _reference_gradient(batch: torch.Tensor) -> list[torch.Tensor]:
    """The gradient of the same loss at the same initial weights, computed outside the loop."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    model(batch).square().mean().backward()
    return [p.grad for p in model.parameters()]


def test_gradient_clipping_scales_the_step_to_the_clip_norm(tmp_path):
    batch = torch.full((4, 3), 10.0)
    grad = _reference_gradient(batch)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grad]))
    clip = 0.5
    assert norm > 10 * clip  # the reference gradient is far above the clip value

    model, before = _linear_run(tmp_path / "clipped", grad_clip=clip, batches=[batch])
    steps = [b - p.detach() for b, p in zip(before, model.parameters())]
    for step, g in zip(steps, grad):
        assert torch.allclose(step, g * (clip / norm), rtol=1e-4, atol=1e-6)
    step_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(s) for s in steps]))
    assert step_norm == pytest.approx(clip, rel=1e-4)

    unclipped, before = _linear_run(tmp_path / "unclipped", grad_clip=None, batches=[batch])
    for b, p, g in zip(before, unclipped.parameters(), grad):
        assert torch.allclose(b - p.detach(), g, rtol=1e-4, atol=1e-5)


def test_a_non_finite_loss_is_a_clear_error_before_any_update(tmp_path):
    model = torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in model.parameters()]

    def nan_loss(x):
        return model(x).sum() * float("nan")

    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    with pytest.raises(PointSDError, match=rf"loss became nan at step 0 in {tmp_path}"):
        train(make_accelerator("cpu"), LoopConfig(out_dir=tmp_path, epochs=1, progress=False),
              modules={"model": model}, optimizer=optimizer, scheduler=scheduler, loader=[torch.ones(2, 3)],
              step_fn=nan_loss)
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_resume_drops_the_log_lines_written_after_the_checkpoint(tmp_path, monkeypatch):
    """Killed after epoch 2 logged its steps but before its checkpoint: the resumed run's log equals an
    uninterrupted run's (steps 3-4 once each, not twice)."""
    batches = [torch.randn(4, 3, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    _linear_run(tmp_path / "whole", epochs=3, batches=batches)
    whole = (tmp_path / "whole" / "metrics.jsonl").read_text()
    assert [json.loads(x)["step"] for x in whole.splitlines()] == [1, 2, 3, 4, 5, 6]

    save, saves = loop._save_state, []

    def killed_before_second_checkpoint(path, state, *args):
        saves.append(state.step)
        if len(saves) == 2:
            raise KeyboardInterrupt
        save(path, state, *args)

    monkeypatch.setattr(loop, "_save_state", killed_before_second_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        _linear_run(tmp_path / "split", epochs=3, batches=batches)
    monkeypatch.undo()
    log = tmp_path / "split" / "metrics.jsonl"
    assert [json.loads(x)["step"] for x in log.read_text().splitlines()] == [1, 2, 3, 4]  # 3-4: past the checkpoint

    _linear_run(tmp_path / "split", epochs=3, batches=batches)
    assert log.read_text() == whole
