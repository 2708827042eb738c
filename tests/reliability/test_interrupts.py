"""Ctrl-C and kill -9 of a real ``pointsd`` process; the same command resumes and cleans up after the kill.

That a resumed run ends with the same weights as an uninterrupted one is checked in
tests/train/test_finetune.py and tests/train/test_pretrain_resume.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pointsd.errors import EXIT_STOPPED
from pointsd.models.checkpoints import load_state_file
from pointsd.utils import atomic, run_lock, staging
from tests.reliability.conftest import finetune_argv, one_line, pointsd_process

EPOCHS = ("--epochs", "8")  # long enough to be interrupted after the first checkpoint


def _start_and_wait_for_checkpoint(argv: list[str], out: Path) -> tuple[subprocess.Popen, Path]:
    """Start ``pointsd ARGV`` and return once its first checkpoint exists (it is still training): the
    process and the checkpoint (in the work folder of ``out``, :mod:`pointsd.utils.staging`)."""
    proc = pointsd_process(*argv)
    deadline = time.monotonic() + 600
    while not (found := [p / "state" / "last.pt" for p in staging.partials(out) if (p / "state" / "last.pt").exists()]):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"pointsd ended (exit {proc.returncode}) before a checkpoint of {out}: {proc.stderr.read()}")
        time.sleep(0.02)
    return proc, found[0]


@pytest.mark.slow
def test_ctrl_c_exits_130_and_the_same_command_resumes(cli, h5_root, tmp_path):
    out = tmp_path / "run"
    argv = finetune_argv(h5_root, out, *EPOCHS)
    proc, state = _start_and_wait_for_checkpoint(argv, out)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    line = one_line(err)
    assert proc.returncode == 130, err
    assert "interrupted" in line and str(state) in line and "rerun the same command" in line
    assert not (out / "metrics.json").exists() and not (out / run_lock.LOCK).exists()  # Ctrl-C releases it
    assert 1 <= load_state_file(state)["loop"]["epoch"] < 8
    assert cli(*argv) == (0, "")
    assert json.loads((out / "metrics.json").read_text())["last_epoch"] == 8


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_sigterm_or_sigusr1_stops_after_a_step_exits_75_and_the_same_command_resumes(cli, h5_root, tmp_path, signum):
    """What SLURM sends before a time limit, on scancel and on preemption: one line, exit 75 (EXIT_STOPPED)."""
    out = tmp_path / "run"
    argv = finetune_argv(h5_root, out, *EPOCHS)
    proc, state = _start_and_wait_for_checkpoint(argv, out)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    line = one_line(err)
    assert proc.returncode == EXIT_STOPPED, err
    assert f"stopped by {signal.Signals(signum).name} after step " in line and str(state) in line
    assert "rerun the same command to resume" in line and not out.exists()
    step = load_state_file(state)["loop"]["step"]
    assert line.split(" after step ")[1].startswith(f"{step};")
    assert cli(*argv) == (0, "")
    assert json.loads((out / "metrics.json").read_text())["last_epoch"] == 8 and not staging.partials(out)


@pytest.mark.slow
def test_kill_9_then_the_same_command_resumes_and_cleans_up(cli, h5_root, tmp_path):
    out = tmp_path / "run"
    argv = finetune_argv(h5_root, out, *EPOCHS)
    proc, state = _start_and_wait_for_checkpoint(argv, out)
    proc.kill()
    proc.communicate(timeout=60)
    assert load_state_file(state)["loop"]["epoch"] >= 1  # the previous checkpoint loads
    # What a kill during a checkpoint write leaves: the atomic write's temporary folder.
    leftover = state.parent / ".last.pt.k1ll3d.tmp"
    leftover.mkdir(exist_ok=True)
    (leftover / "last.pt").write_bytes(b"half a checkpoint")
    assert cli(*argv) == (0, "")
    assert not leftover.exists() and not list(out.rglob("*.tmp")) and not staging.partials(out)
    assert json.loads((out / "metrics.json").read_text())["last_epoch"] == 8


def test_clean_interrupted_restores_a_folder_moved_aside(tmp_path):
    """A kill between the two renames of a folder write leaves only ``.NAME.old``: it is put back."""
    (tmp_path / ".best.old").mkdir()
    (tmp_path / ".best.old" / "w.pt").write_text("previous")
    (tmp_path / ".best.x1.tmp").mkdir()
    (tmp_path / "sd").mkdir()
    (tmp_path / ".sd.old").mkdir()
    removed = atomic.clean_interrupted(tmp_path)
    assert (tmp_path / "best" / "w.pt").read_text() == "previous"
    assert sorted(p.name for p in removed) == [".best.x1.tmp", ".sd.old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "sd"]


def test_clean_interrupted_of_one_target_leaves_other_jobs_alone(tmp_path):
    for name in (".sd-tiny.a1.tmp", ".renders.b2.tmp"):
        (tmp_path / name).mkdir()
    atomic.clean_interrupted(tmp_path, target="sd-tiny")
    assert [p.name for p in tmp_path.iterdir()] == [".renders.b2.tmp"]


def test_next_start_of_a_job_removes_its_interrupted_writes(cli, tmp_path):
    """Any command with ``--out``: the temporaries a kill left beside its output are gone when it starts again."""
    record = {"task": "modelnet10", "protocol": "paper", "init": "scratch", "meta": {"seed": 0},
              "test": {"overall_acc": 90.0, "mean_class_acc": 89.0}, "last_epoch_acc": 88.0}
    (tmp_path / "m.json").write_text(json.dumps(record))
    (tmp_path / ".agg.json.k1ll3d.tmp").mkdir()
    (tmp_path / ".other.json.busy.tmp").mkdir()  # another job's write in progress: left alone
    assert cli("finetune-aggregate", "--inputs", tmp_path / "m.json", "--out", tmp_path / "agg.json") == (0, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.busy.tmp", "agg.json", "m.json"]
