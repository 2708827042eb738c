"""A run folder records the configuration it was trained with (``run_config.json``) and refuses another.

The *configuration* is every key of a task's config dataclass that changes what is trained or how
it is selected: model, optimiser, schedule, budget, augmentation, protocol, seed, the init
checkpoint, the SD and stage-1 folders. Left out (:data:`NOT_CONFIGURATION`) are where things run
or go: the output folder, the device, data loader workers, the progress bar, the profile labels,
the evaluation batch size, ``--compile``, the log interval, the data location and ``--overwrite``.
A run continued with the same configuration resumes; a finished one is left as it is.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pointsd.errors import PointSDError, write_error
from pointsd.utils import json_io

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


def prepare_run_folder(out: Path, config: Mapping[str, Any], *, result: str,
                       overwrite: bool = False) -> dict[str, Any] | None:
    """Make ``out`` ready for a run of ``config``; returns the finished run's ``result`` JSON, if any.

    A new folder gets the record. A folder started with the same configuration is continued; when
    it holds ``result`` the run is finished and that result is returned, to be left as it is.
    Another configuration raises :class:`PointSDError` naming the keys that differ. ``overwrite`` discards the folder's previous run first.
    """
    out = Path(out)
    if overwrite:
        _discard(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(out, err) from err
    wanted = training_config(config)
    record = out / RECORD
    if not record.is_file():
        if (out / "state").exists() or (out / result).exists():
            raise PointSDError(f"{out}: holds a run without {RECORD} (older pointsd), so its configuration "
                               f"is unknown; {WAY_OUT}")
        json_io.write_json(record, {"config": wanted})
        return None
    try:
        recorded = json_io.read_json(record, "configuration record")["config"]
    except (PointSDError, KeyError, TypeError) as err:
        raise PointSDError(f"{record}: unreadable configuration record; {WAY_OUT}") from err
    changed = differences(recorded, wanted)
    if changed:
        raise PointSDError(f"{out} was trained with another configuration ({'; '.join(changed)}); {WAY_OUT}")
    done = out / result
    return json_io.read_json(done, "result") if done.is_file() else None


def _discard(out: Path) -> None:
    """Remove a previous run folder (only one that pointsd made: it holds the record or ``state/``)."""
    if not out.exists():
        return
    if not (out / RECORD).is_file() and not (out / "state").is_dir():
        if any(out.iterdir()):
            raise PointSDError(f"--overwrite: {out} is not a pointsd run folder (no {RECORD} or state/); "
                               "remove it yourself or choose another --out")
        return
    shutil.rmtree(out)
