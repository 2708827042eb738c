"""``pointsd bench pretrain``: the step and the real loop in both speed modes, on tiny stand-ins for SD1.5
and ViT-S (the architecture sizes are the only thing swapped), and the targets it reports."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from pointsd.bench import pretrain as bench
from pointsd.cli import main as cli_main
from pointsd.diffusion.resampler import ResamplerConfig
from pointsd.diffusion.stable_diffusion import load_stable_diffusion, write_tiny_sd
from pointsd.models.config import BackboneConfig

TINY = BackboneConfig(trans_dim=32, depth=1, num_heads=2, group_size=8, num_group=8, encoder_dims=32)
RESAMPLER = ResamplerConfig(dim=32, depth=1, dim_head=16, heads=2, ff_mult=2)


@pytest.fixture
def tiny(monkeypatch, tmp_path_factory):
    """The bench with a tiny SD and backbone (and a tiny stage-1 folder for stage 2)."""
    sd = write_tiny_sd(tmp_path_factory.mktemp("sd") / "sd")
    config = bench.bench_config

    def tiny_config(*args, **kwargs):
        return replace(config(*args, **kwargs), backbone=TINY, resampler=RESAMPLER, npoints=64, image_size=32,
                       probe=replace(config(*args, **kwargs).probe, num_points=64))

    monkeypatch.setattr(bench, "random_sd15", lambda: load_stable_diffusion(sd))
    monkeypatch.setattr(bench, "bench_config", tiny_config)
    monkeypatch.setattr(bench, "_stage1_folder", lambda work: _tiny_stage1(work, sd))


def _tiny_stage1(work, sd):
    from pointsd.diffusion.stage_models import Stage1Model, save_stage1

    if not (work / "stage1" / "adapter_modules.pt").is_file():
        save_stage1(work / "stage1", Stage1Model(TINY, load_stable_diffusion(sd).unet), TINY)


def test_step_rows_in_both_modes(tiny, tmp_path):
    import torch

    rows = [bench.measure_step(stage, mode, torch.device("cpu"), 2, 1, 2, tmp_path)
            for stage in (1, 2) for mode in bench.MODES]
    assert [(r["stage"], r["mode"], r["speed"]["speed"]) for r in rows] == [
        (1, "reference", "exact"), (1, "fast", "fast"), (2, "reference", "exact"), (2, "fast", "fast")]
    assert all(r["steps"] == 2 and r["samples_per_s"] > 0 and r["peak_mem_mb"] > 0 for r in rows)
    summary, targets = bench.summarise(rows)
    assert set(summary) >= {"speedup_stage1", "speedup_stage2", "projection_hours_step_fast"}
    assert [t["name"] for t in targets] == ["pretrain.stage1.speedup", "pretrain.stage2.speedup"]


def test_loop_rows_run_pointsd_pretrain(tiny, tmp_path):
    import torch

    root = bench.loop_data(tmp_path, shapes=12)
    rows = [bench.measure_loop(stage, torch.device("cpu"), 4, 5, root, tmp_path) for stage in (1, 2)]
    assert [(r["kind"], r["stage"], r["steps_per_epoch"], r["epochs"]) for r in rows] == [("loop", 1, 3, 2),
                                                                                          ("loop", 2, 3, 2)]
    assert all(r["steps"] == 6 and r["epoch_end_s"] is not None and r["wall_s"] > 0 for r in rows)
    assert (tmp_path / "stage2" / "summary.json").is_file()  # the real run wrote its outputs
    summary, targets = bench.summarise(rows)
    assert targets[-1]["name"] == "pretrain.paper_schedule_hours"
    assert targets[-1]["measured"] == pytest.approx(summary["projection_hours_loop_fast"])


def test_targets_from_hand_made_rows():
    rows = [{"kind": "step", "stage": s, "mode": m, "samples_per_s": r}
            for s, m, r in ((1, "reference", 10.0), (1, "fast", 40.0), (2, "reference", 10.0), (2, "fast", 45.0))]
    rows += [{"kind": "loop", "stage": s, "mode": "fast", "samples_per_s": 3000.0} for s in (1, 2)]
    _, targets = bench.summarise(rows)
    hours = 2 * 300 * 52_470 / 3000.0 / 3600
    assert {t["name"]: (t["measured"], t["met"]) for t in targets} == {
        "pretrain.stage1.speedup": (4.0, True), "pretrain.stage2.speedup": (4.5, False),
        "pretrain.paper_schedule_hours": (pytest.approx(hours), hours <= 3.0)}


def test_cli_json(tiny, capsys, tmp_path):
    argv = ["bench", "pretrain", "--device", "cpu", "--batch-size", "2", "--steps", "1", "--warmup", "1",
            "--modes", "fast", "--profile-steps", "1", "--out", str(tmp_path / "out.json"), "--json"]
    assert cli_main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert json.loads((tmp_path / "out.json").read_text())["rows"] == report["rows"]
    assert [(r["kind"], r["stage"]) for r in report["rows"]] == [("step", 1), ("step", 2)]
    assert all("Self CPU" in r["profile_top_ops"] and "aten::" in r["profile_top_ops"] for r in report["rows"])
    assert report["targets"] == []  # GPU targets only


def test_loop_data_is_made_once(tmp_path, monkeypatch):
    from pointsd.data import synth

    root = bench.loop_data(tmp_path, shapes=4)
    monkeypatch.setattr(synth, "synthesize", lambda *a, **k: pytest.fail("made again"))
    assert bench.loop_data(tmp_path, shapes=4) == root
    assert len(list((root / "rgb_depth_rendered_images").iterdir())) >= 4
