"""Fault injection helpers: run the CLI and read its one stderr line, tiny data, small or read-only disks.

Every test in this folder asserts the exit code, the single stderr line naming the culprit, and
what is left on disk. The reader- and loader-level checks of the same faults live beside the code
they test (tests/data/test_bad_inputs.py, tests/models/test_checkpoints.py, ...); here they go
through the ``pointsd`` command, as a user meets them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pointsd.cli import main
from tests.train.test_finetune import TINY_FLAGS, write_h5

ROOT = Path(__file__).resolve().parents[2]


def one_line(stderr: str) -> str:
    """The only line of ``stderr`` (fails when there are more or none)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n{stderr}"
    return lines[0]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str]]:
    """Run ``pointsd ARGV`` in-process → ``(exit code, its one stderr line or "")``."""

    def run(*argv: str | Path) -> tuple[int, str]:
        code = main([str(a) for a in argv])
        err = capsys.readouterr().err
        return code, one_line(err) if err.strip() else ""

    return run


def finetune_argv(data: Path, out: Path, *extra: str) -> list[str]:
    """A one-epoch tiny ``pointsd finetune`` on a ModelNet10-like h5 folder."""
    return ["finetune", "--task", "modelnet10", "--data-root", str(data), "--out", str(out), *TINY_FLAGS, *extra]


@pytest.fixture(scope="session")
def h5_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ModelNet10-like folder: 16 training and 8 test clouds of 80 points, 4 classes."""
    root = tmp_path_factory.mktemp("mn10")
    write_h5(root / "train.h5", 16, 4, 80, 5)
    write_h5(root / "test.h5", 8, 4, 80, 6)
    (root / "shape_names.txt").write_text("a\nb\nc\nd\n")
    return root


@contextlib.contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """Mount a tmpfs with ``options`` on ``path`` (root only; the test is skipped where it cannot)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot write into: a read-only tmpfs as root, else ``chmod 555``."""
    folder = tmp_path / "ro"
    if os.geteuid() == 0:
        with tmpfs(folder, "ro,size=64k") as mounted:
            yield mounted
        return
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def _sigint_as_from_a_terminal() -> None:
    """SIGINT back to its default in the child, so that Python there turns it into KeyboardInterrupt.
    A test run started in the background of a non-interactive shell (``pytest ... &``, as CI scripts
    do) inherits SIGINT ignored, and Python then leaves it ignored: Ctrl-C would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def pointsd_process(*argv: str | Path, **kwargs) -> subprocess.Popen:
    """``pointsd ARGV`` as a child process (this interpreter, this checkout), stderr piped, SIGINT
    handled as in a terminal."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, "-m", "pointsd", *map(str, argv)], env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=_sigint_as_from_a_terminal, **kwargs)


def tree(folder: Path) -> dict[str, bytes] | None:
    """Every file under ``folder`` (relative path → bytes), ``{}`` for an empty folder, None when absent:
    what a refused command must leave as it found it."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def pretrain_data(synth_root: Path, dest: Path) -> Path:
    """A copy of the synthetic data root with a ULIP-layout view 0 (a small PNG) for every ShapeNet-55 shape."""
    from PIL import Image

    from pointsd.data.paths import ULIP_RENDERS
    from pointsd.data.render import view_name

    shutil.copytree(synth_root, dest)
    for split in ("train", "test"):
        for shape_id in (dest / "ShapeNet55-34" / "ShapeNet-55" / f"{split}.txt").read_text().split():
            shape_id = shape_id.removesuffix(".npy")
            path = dest / ULIP_RENDERS / shape_id / view_name(shape_id, 0)
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGBA", (32, 32), (200, 30, 30, 255)).save(path)
    return dest
