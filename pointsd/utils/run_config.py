"""A run folder records what it was started with (``run_config.json``) and refuses another.

The record holds the *configuration*: every key of a task's config dataclass that changes what is
trained or how it is selected: model, optimiser, schedule, budget, augmentation, protocol, seed, the
init checkpoint, the SD and stage-1 folders. Left out (:data:`NOT_CONFIGURATION`) are where things run
or go: the output folder, the device, data loader workers, the progress bar, the profile labels, the
evaluation batch size, ``--compile``, the log interval, the data location and ``--overwrite``. It also
holds the *data* read, by content (:mod:`pointsd.utils.data_record`): the same files elsewhere are the
same data, other files are not.

Validate, then record: a command checks the folder (:func:`check_run_folder`, read only) and every
input before it writes the record (:func:`record_run`), so a refused command leaves the folder as it
found it. A run continued with the same configuration and data resumes; a finished one is left as it
is; one that never trained a step (no checkpoint, no result: it failed in its first epoch) is started
over, whatever it was started with. A record without ``data`` (older pointsd) is not compared on data.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pointsd.errors import PointSDError, write_error
from pointsd.utils import data_record, json_io
from pointsd.utils.run_lock import LOCK

RECORD = "run_config.json"
NOT_CONFIGURATION = frozenset({
    "out_dir", "device", "num_workers", "progress", "command", "profile", "data_profile", "eval_batch_size",
    "log_every", "data_root", "render_root", "overwrite",
})
WAY_OUT = "use a new --out, or --overwrite to discard that run"


def training_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration keys of ``config`` (a dataclass as a dict), as plain JSON values."""
    kept = {k: v for k, v in config.items() if k not in NOT_CONFIGURATION}
    return json_io.plain(kept)


def differences(recorded: Mapping[str, Any], wanted: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``key: old → new`` for every (dotted, nested) key whose value differs, sorted."""
    out = []
    for key in sorted(set(recorded) | set(wanted)):
        old, new = recorded.get(key), wanted.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            out += differences(old, new, f"{prefix}{key}.")
        elif old != new:
            out.append(f"{prefix}{key}: {json_io.dumps(old, compact=True)} → {json_io.dumps(new, compact=True)}")
    return out


def check_run_folder(out: Path, config: Mapping[str, Any], data: Mapping[str, Any], *, result: str,
                     overwrite: bool = False) -> dict[str, Any] | None:
    """Whether ``out`` can take a run of ``config`` on ``data`` (reads only); → the finished run's ``result``, if any.

    Raises :class:`PointSDError` naming what differs (configuration keys, data) from a run that trained,
    or a folder holding a run without a record. ``overwrite``: the folder's run will be discarded.
    """
    out = Path(out)
    if overwrite or not out.is_dir():
        return None
    record = out / RECORD
    if not record.is_file():
        if _trained(out, result):
            raise PointSDError(f"{out}: holds a run without {RECORD} (older pointsd), so its configuration "
                               f"is unknown; {WAY_OUT}")
        return None
    if not _trained(out, result):
        return None  # started, never trained a step: started over
    try:
        recorded = json_io.read_json(record, "configuration record")
        recorded_config, recorded_data = recorded["config"], recorded.get("data")
    except (PointSDError, KeyError, TypeError) as err:
        raise PointSDError(f"{record}: unreadable configuration record; {WAY_OUT}") from err
    run = f"{out} holds a {'finished' if (out / result).is_file() else 'started (unfinished)'} run"
    changed = differences(recorded_config, training_config(config))
    if changed:
        raise PointSDError(f"{run} with another configuration ({'; '.join(changed)}); {WAY_OUT}")
    changed = data_record.differences(recorded_data, data) if recorded_data is not None else []
    if changed:
        raise PointSDError(f"{run} on other data ({'; '.join(changed)}); {WAY_OUT}")
    done = out / result
    return json_io.read_json(done, "result") if done.is_file() else None


def record_run(out: Path, config: Mapping[str, Any], data: Mapping[str, Any], *, result: str,
               overwrite: bool = False) -> None:
    """Write ``out``'s record, once :func:`check_run_folder` and every input check passed.

    A run that trained keeps its record (it resumes); ``overwrite``, or a run that never trained a step,
    is discarded first.
    """
    out = Path(out)
    recorded = (out / RECORD).is_file()
    if overwrite or (recorded and not _trained(out, result)):
        _discard(out)
    elif recorded:
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(out, err) from err
    json_io.write_json(out / RECORD, {"config": training_config(config), "data": json_io.plain(data)})


def _trained(out: Path, result: str) -> bool:
    """Whether ``out`` holds a run that trained: a checkpoint to resume from, or a result."""
    return (out / "state").exists() or (out / result).exists()


def _discard(out: Path) -> None:
    """Empty a previous run folder (only one that pointsd made: it holds the record or ``state/``); its
    run lock stays."""
    if not out.exists():
        return
    entries = [p for p in out.iterdir() if p.name != LOCK]
    if not (out / RECORD).is_file() and not (out / "state").is_dir():
        if entries:
            raise PointSDError(f"--overwrite: {out} is not a pointsd run folder (no {RECORD} or state/); "
                               "remove it yourself or choose another --out")
        return
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
