"""One run per folder: a second command into a held folder ends at once naming the holder; a dead holder's
lock is taken over; the lock goes on exit (Ctrl-C: tests/reliability/test_interrupts.py)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pointsd.cli import _output_ready
from pointsd.utils import run_lock
from tests.reliability.conftest import finetune_argv, pointsd_process


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_command_into_a_held_folder_is_refused_at_once(cli, h5_root, tmp_path):
    out = tmp_path / "run"
    with run_lock.run_lock(out) as lock:
        holder = json.loads(lock.read_text())
        started = time.monotonic()
        code, line = cli(*finetune_argv(h5_root, out))
        assert time.monotonic() - started < 30  # no data read, nothing trained
        assert code == 2 and "in use by another pointsd run" in line
        assert f"host {holder['host']}, pid {os.getpid()}, started {holder['started']}" in line
        assert sorted(p.name for p in out.iterdir()) == [run_lock.LOCK]
    assert not out.exists()  # the lock made the folder; left as found


def test_normal_exit_releases_the_lock(cli, h5_root, tmp_path):
    out = tmp_path / "run"
    assert cli(*finetune_argv(h5_root, out)) == (0, "")
    assert not (out / run_lock.LOCK).exists() and (out / "metrics.json").is_file()


def test_a_dead_holders_lock_is_taken_over(cli, h5_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    stale = {**run_lock.holder_record(), "pid": _dead_pid()}
    (out / run_lock.LOCK).write_text(json.dumps(stale))
    assert run_lock.is_stale(stale)
    assert cli(*finetune_argv(h5_root, out)) == (0, "")
    assert not (out / run_lock.LOCK).exists()


def test_a_reused_pid_is_stale(tmp_path):
    """The pid is alive (this process) but started after the lock was written: not the holder."""
    record = {**run_lock.holder_record(), "ticks": run_lock.holder_record()["ticks"] - 1}
    assert run_lock.is_stale(record) and not run_lock.is_stale(run_lock.holder_record())


def test_another_hosts_lock_is_refused_naming_the_file(cli, h5_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / run_lock.LOCK).write_text(json.dumps({"host": "node-lost-17", "pid": 4242, "boot": "x",
                                                 "started": "2026-12-01T10:00:00+0000"}))
    code, line = cli(*finetune_argv(h5_root, out))
    assert code == 2 and "host node-lost-17, pid 4242" in line and f"delete {out / run_lock.LOCK}" in line


@pytest.mark.slow
def test_kill_9_leaves_a_stale_lock_that_the_next_command_takes_over(cli, h5_root, tmp_path):
    out = tmp_path / "run"
    argv = finetune_argv(h5_root, out, "--epochs", "8")
    proc = pointsd_process(*argv)
    deadline = time.monotonic() + 300
    while not (out / run_lock.LOCK).exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)
    code, line = cli(*argv)  # while it runs: refused
    assert code == 2 and f"pid {proc.pid}" in line
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert (out / run_lock.LOCK).exists()
    assert cli(*argv) == (0, "")
    assert not (out / run_lock.LOCK).exists() and (out / "metrics.json").is_file()


def test_only_the_main_process_takes_the_lock(tmp_path, monkeypatch):
    """Ranks other than 0 of ``accelerate launch`` neither lock nor clean: they would wait on themselves."""
    args = argparse.Namespace(out=tmp_path / "run", run_folder=True)
    monkeypatch.setenv("RANK", "1")
    with _output_ready(args):
        assert not (tmp_path / "run").exists()
    monkeypatch.setenv("RANK", "0")
    with _output_ready(args):
        assert (tmp_path / "run" / run_lock.LOCK).is_file()
    assert not (tmp_path / "run").exists()


def test_a_killed_holder_not_yet_reaped_is_stale():
    """A holder killed but not yet reaped by its parent (a zombie: its pid still answers kill(pid, 0)) holds
    no lock; the resume right after `kill -9` of a launcher's workers met this (a CI run, 2026-12-07)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    holder = {**run_lock.holder_record(), "pid": child.pid, "ticks": None}
    deadline = time.monotonic() + 10
    while run_lock._state(child.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        os.kill(child.pid, 0)  # still there, as a zombie
        assert run_lock._state(child.pid) == "Z" and run_lock.is_stale(holder)
    finally:
        child.wait()
