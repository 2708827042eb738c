"""``run_pretrain`` (stage 1 and stage 2) on 2 processes: sharded data, averaged gradients, the loss
trajectory of one process with the same global batch, files written once.

The reference for 2 processes × batch 4 is one process × batch 4 × 2 accumulation steps: BatchNorm
then normalises over the same 4 samples in both, and the shard RNG streams of the loop give each
sample the same noise, timestep, patch-mix draw and drop path in both layouts.
"""

from __future__ import annotations

import pytest
from conftest import ROOT, launch, losses, metrics_lines

from pointsd.diffusion.stable_diffusion import write_tiny_sd

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(600)]
WORKER = str(ROOT / "tests" / "distributed" / "pretrain_worker.py")


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    return write_tiny_sd(tmp_path_factory.mktemp("sd") / "sd")


def run(processes: int, out, sd, stage: int, *extra: str):
    return launch(processes, WORKER, "--stage", str(stage), "--sd", str(sd), "--out", str(out),
                  "--seen", f"{out}-seen", "--batch-size", "4", *extra)


def test_stage1_and_stage2_on_two_processes_match_one(tmp_path, sd):
    stage1 = tmp_path / "stage1-2p"
    proc = run(2, stage1, sd, 1)
    seen = [set(map(int, (tmp_path / "stage1-2p-seen" / f"seen-{r}.txt").read_text().split())) for r in (0, 1)]
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(32)), "shards overlap or miss samples"
    single = tmp_path / "stage1-1p"
    run(1, single, sd, 1, "--grad-accum", "2")
    assert len(losses(stage1)) == 4  # 32 samples / (2 × 4) per step
    assert losses(stage1) == pytest.approx(losses(single), rel=1e-4, abs=1e-6)
    assert (stage1 / "ckpt-stage1.pt").is_file() and proc.stdout.count("stage 1:") <= 1

    for processes, out, accum in [(2, tmp_path / "stage2-2p", ()), (1, tmp_path / "stage2-1p", ("--grad-accum", "2"))]:
        run(processes, out, sd, 2, "--stage1", str(stage1), *accum)
    assert losses(tmp_path / "stage2-2p") == pytest.approx(losses(tmp_path / "stage2-1p"), rel=1e-4, abs=1e-6)
    assert [r["step"] for r in metrics_lines(tmp_path / "stage2-2p")] == [1, 2, 3, 4]
