"""Atomic output: write to a temporary file in the target folder, then rename over the target.

A reader never sees a half-written file, and a killed job leaves the previous version (or nothing).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from pointsd.errors import is_write_refusal, write_error

TMP_SUFFIX = ".tmp"
OLD_SUFFIX = ".old"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed onto ``target``.

    Works for files and for folders (the temporary path does not exist yet when yielded). A write
    the OS refuses (full disk, permissions) raises :class:`PointSDError` naming ``target``, and
    nothing is left behind.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=TMP_SUFFIX, dir=target.parent))
    except OSError as err:
        raise write_error(target, err) from err
    inner = tmp / (target.name + suffix)
    try:
        yield inner
        if not inner.exists():
            raise FileNotFoundError(f"atomic write produced nothing for {target}")
        replace_folder(inner, target)
    except Exception as err:
        if is_write_refusal(err):
            raise write_error(target, err) from err
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def clean_interrupted(folder: str | os.PathLike, target: str | None = None) -> list[Path]:
    """Undo what killed atomic writes left under ``folder`` (recursively); returns the paths removed.

    Temporaries (``.NAME.*.tmp``) are removed; a folder moved aside (``.NAME.old``) is put back when
    ``NAME`` is missing (the kill fell between the two renames), else removed. With ``target``,
    only that entry's leftovers directly in ``folder`` are touched (a folder shared with other jobs).
    Call it when a job starts, never while another job writes into the same folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = folder.glob(f".{target}.*") if target is not None else folder.rglob(".*")
    removed: list[Path] = []
    for path in sorted(found, key=lambda p: len(p.parts)):
        if any(parent in removed for parent in path.parents):
            continue
        original = path.with_name(path.name[1:-len(OLD_SUFFIX)])
        if path.name.endswith(TMP_SUFFIX) or (path.name.endswith(OLD_SUFFIX) and original.exists()):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        elif path.name.endswith(OLD_SUFFIX):
            os.replace(path, original)
    return removed


def replace_folder(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; a folder at ``target`` is first moved aside to ``.TARGET.old`` and
    removed after (a kill between the renames leaves that for :func:`clean_interrupted` to put back)."""
    if target.is_dir() and not target.is_symlink():
        old = _old(target)
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, target)


def _old(target: Path) -> Path:
    """Where :func:`atomic_path` moves an existing folder while it renames the new one in."""
    return target.with_name(f".{target.name}{OLD_SUFFIX}")


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Atomically write ``data`` to ``target``."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def write_text(target: str | os.PathLike, text: str) -> None:
    """Atomically write UTF-8 ``text`` to ``target``."""
    write_bytes(target, text.encode("utf-8"))


def torch_save(target: str | os.PathLike, obj: Any) -> None:
    """Atomically ``torch.save`` ``obj`` (tensors, dicts, numbers only: loadable with weights_only)."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(target, buf.getvalue())

