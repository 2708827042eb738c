"""``pointsd finetune`` on 2 processes: the loss trajectory of one process with the same global batch,
evaluation over every test sample exactly once, files and lines written once, resume after a kill.

Reference for 2 processes × batch 8: one process × batch 8 × ``--grad-accum 2`` (BatchNorm
normalises over the same 8 samples; the loop's shard RNG streams give each sample the same point
subset, augmentation and drop path). 64 training shapes: every process gets 4 whole batches.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest
import torch
from conftest import ROOT, command, env, launch, losses, metrics_lines

from pointsd.models.classifier import PointTransformerClassifier
from pointsd.train import finetune as ft
from pointsd.utils import staging
from tests.cli_flags import FINETUNE

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(600)]
FLAGS = [*FINETUNE, "--task", "modelnet10", "--init", "scratch", "--protocol", "paper", "--device", "cpu", "--lr", "0.01",
         "--npoints", "64", "--num-group", "8", "--group-size", "8", "--trans-dim", "32", "--depth", "1",
         "--num-heads", "2", "--encoder-dims", "32", "--drop-path-rate", "0.1", "--warmup-epochs", "0",
         "--batch-size", "8", "--eval-batch-size", "4", "--no-progress", "--seed", "0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """64 training and 31 test clouds (an odd count: the two shards differ in size), 4 classes."""
    root = tmp_path_factory.mktemp("mn10")
    rng = np.random.default_rng(0)
    for split, n in [("train", 64), ("test", 31)]:
        labels = np.arange(n) % 4
        clouds = rng.normal(size=(n, 96, 3)) * 0.1
        clouds[np.arange(n), :, labels % 3] *= 4 + 3 * (labels[:, None] // 3)
        with h5py.File(root / f"{split}.h5", "w") as fh:
            fh["data"], fh["label"] = clouds.astype(np.float32), labels.astype(np.int64)
    return root


def finetune(processes: int, data, out, *extra: str):
    return launch(processes, "-m", "pointsd", "finetune", "--data-root", str(data), "--out", str(out),
                  *FLAGS, *extra)


def test_two_processes_follow_one_and_evaluate_every_sample_once(tmp_path, data):
    two = finetune(2, data, tmp_path / "2p", "--epochs", "2")
    finetune(1, data, tmp_path / "1p", "--epochs", "2", "--grad-accum", "2")
    assert len(losses(tmp_path / "2p")) == 2  # logged at the end of each 4-step epoch
    assert losses(tmp_path / "2p") == pytest.approx(losses(tmp_path / "1p"), rel=1e-5)
    assert two.stdout.count("modelnet10 [paper]") == 1 and two.stderr.count("loaded") == 0
    assert [r["step"] for r in metrics_lines(tmp_path / "2p")] == [4, 4, 8, 8]  # loss + eval per epoch

    result = __import__("json").loads((tmp_path / "2p" / "metrics.json").read_text())
    assert result["num_test"] == 31 and result["meta"]["num_processes"] == 2
    test = ft.load_task_data("modelnet10", data, up_axis="z").test
    model = PointTransformerClassifier(4, _backbone())
    model.load_state_dict(torch.load(tmp_path / "2p" / "best.pt", weights_only=True)["model"])
    pool, labels = ft.fps_pool(test, 64, 1.2, torch.device("cpu"))
    logits = ft.predict_logits(model.eval(), pool[:, :64], torch.device("cpu"), 4)
    single = ft.classification_report(logits, labels, [str(i) for i in range(4)])["overall_acc"]
    assert result["test"]["overall_acc"] == pytest.approx(single)


def _backbone():
    from pointsd.models.config import BackboneConfig

    return BackboneConfig(trans_dim=32, depth=1, num_heads=2, num_group=8, group_size=8, encoder_dims=32,
                          drop_path_rate=0.1)


def test_killed_run_resumes_on_both_processes(tmp_path, data):
    out = tmp_path / "run"
    args = command(2, "-m", "pointsd", "finetune", "--data-root", str(data), "--out", str(out), *FLAGS,
                   "--epochs", "6")
    proc = subprocess.Popen(args, cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while (not any((w / "state" / "last.pt").exists() for w in staging.partials(out)) and proc.poll() is None
               and time.monotonic() < deadline):
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher
        # and both workers: they are not in the launcher's process group, and would finish the run
        subprocess.run(["pkill", "-KILL", "-f", "--", f"--out {out} "], check=False)
    finally:
        proc.wait()
    while subprocess.run(["pgrep", "-f", "--", f"--out {out} "], check=False, capture_output=True).returncode == 0:
        time.sleep(0.2)
    assert not (out / "metrics.json").exists()
    resumed = finetune(2, data, out, "--epochs", "6")
    assert "[process 0/2] resumed" in resumed.stderr and "[process 1/2] resumed" in resumed.stderr
    steps = [r["step"] for r in metrics_lines(out) if "loss" in r]
    assert steps == [4, 8, 12, 16, 20, 24]
