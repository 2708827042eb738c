"""An unfinished training run lives beside its output folder; the output appears, finished, by a rename.

A run of ``--out OUT`` trains in ``OUT``'s work folder, ``.OUT.partial-KEY`` next to it (KEY: a hash of
the run's configuration record and data, :mod:`pointsd.utils.run_config`), and when it has written its
result the work folder becomes ``OUT`` (:func:`publish`). A workflow engine that deletes the outputs of
a failed job (Snakemake) or every output before it runs a stage (``dvc repro``) never deletes the work
folder, so the resume state of a run stopped by its time limit or killed survives until the job runs
again; and ``OUT`` never holds a half-trained run that could be taken as done. Another configuration
for the same ``OUT`` has its own work folder; publishing a run removes every work folder of ``OUT``.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pointsd.errors import PointSDError, write_error
from pointsd.utils import atomic, json_io
from pointsd.utils.run_config import RECORD, training_config
from pointsd.utils.run_lock import LOCK

PARTIAL = ".partial-"


def work_folder(out: Path, config: Mapping[str, Any], data: Mapping[str, Any]) -> Path:
    """Where the run of ``out`` with ``config`` (a config dataclass as a dict) on ``data`` (its record) trains.

    Raises :class:`PointSDError` when ``out`` holds files but no pointsd run: publishing would replace them.
    """
    out = Path(out)
    if out.is_dir() and not (out / RECORD).is_file() and not (out / "state").is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name != LOCK)
        if foreign:
            raise PointSDError(f"--out {out} is not a pointsd run folder (it holds {', '.join(foreign[:3])}); "
                               "remove it yourself or choose another --out")
    record = {"config": training_config(config), "data": json_io.plain(data)}
    key = hashlib.sha256(json_io.dumps(record, compact=True).encode()).hexdigest()[:12]
    return out.parent / f".{out.name}{PARTIAL}{key}"


def partials(out: Path) -> list[Path]:
    """Every work folder of ``out`` (unfinished runs, any configuration), newest first."""
    out = Path(out)
    found = out.parent.glob(f".{out.name}{PARTIAL}*") if out.parent.is_dir() else []
    return sorted((p for p in found if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)


def publish(work: Path, out: Path) -> None:
    """Make the finished run in ``work`` the folder ``out`` (replacing what ``out`` held: the run lock, an
    older run), then remove ``out``'s other work folders. A kill between the two renames leaves
    ``.OUT.old`` and ``work``: :func:`pointsd.utils.atomic.clean_interrupted` puts the old ``out`` back,
    and the run is published again when its command reruns."""
    work, out = Path(work), Path(out)
    try:
        atomic.replace_folder(work, out)
    except OSError as err:
        raise write_error(out, err) from err
    for other in partials(out):
        shutil.rmtree(other, ignore_errors=True)
