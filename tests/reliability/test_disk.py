"""The machine says no: a read-only output folder, a disk that fills up. One line naming the target,
nothing half-written left behind."""

from __future__ import annotations

import errno
import json

import pytest

from pointsd.errors import PointSDError
from pointsd.utils import atomic, json_io
from tests.reliability.conftest import finetune_argv, tmpfs


def test_unwritable_output_folder(cli, h5_root, read_only_dir):
    out = read_only_dir / "run"
    code, line = cli(*finetune_argv(h5_root, out))
    assert code == 2 and f"cannot write {out}" in line and "choose another output folder" in line
    assert list(read_only_dir.iterdir()) == []


def test_full_disk_during_sd_tiny(cli, tmp_path):
    with tmpfs(tmp_path / "disk", "size=256k") as disk:
        code, line = cli("sd", "tiny", "--out", disk / "sd", "--seed", "0", "--vae-steps", "0", "--unet-steps", "0")
        assert code == 2 and f"cannot write {disk / 'sd'}: No space left on device" in line
        assert ".tmp" not in line and list(disk.iterdir()) == []


def test_full_disk_during_a_checkpoint(cli, h5_root, tmp_path):
    with tmpfs(tmp_path / "disk", "size=40k") as disk:
        out = disk / "run"
        code, line = cli(*finetune_argv(h5_root, out))
        # an unfinished run is written in its work folder beside OUT (pointsd/utils/staging.py)
        assert code == 2 and "No space left on device" in line and f"cannot write {disk}/.run.partial-" in line
        assert ".pt" in line and ".tmp" not in line
        assert not [p for p in disk.rglob("*") if p.name.endswith(".tmp")] and not (out / "metrics.json").exists()


def test_full_disk_simulated_writer(cli, tmp_path, monkeypatch):
    """Where no tmpfs can be mounted: the OS refusal is injected into the atomic writer."""

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    record = {"task": "modelnet10", "protocol": "paper", "init": "scratch", "meta": {"seed": 0},
              "test": {"overall_acc": 90.0, "mean_class_acc": 89.0}, "last_epoch_acc": 88.0}
    (tmp_path / "m.json").write_text(json.dumps(record))
    monkeypatch.setattr(atomic.os, "fsync", no_space)
    out = tmp_path / "agg.json"
    code, line = cli("finetune-aggregate", "--inputs", tmp_path / "m.json", "--out", out)
    assert code == 2 and line.startswith(f"pointsd finetune-aggregate: error: cannot write {out}: No space left")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


@pytest.mark.parametrize("code, hint", [(errno.EACCES, "writable"), (errno.EROFS, "read-only")])
def test_refused_write_names_the_target(tmp_path, monkeypatch, code, hint):
    def refuse(*args, **kwargs):
        raise OSError(code, "refused", str(tmp_path / ".x.json.abc.tmp"))

    monkeypatch.setattr(atomic.tempfile, "mkdtemp", refuse)
    with pytest.raises(PointSDError, match=rf"cannot write {tmp_path / 'x.json'}: refused; .*{hint}"):
        json_io.write_json(tmp_path / "x.json", {})
