"""One run per folder at a time: ``RUN/run.lock``, created with ``O_CREAT | O_EXCL``.

Why a file created exclusively rather than ``flock``/``fcntl``: ``O_EXCL`` is atomic on every file
system a cluster run folder lives on (local disks, NFSv3+, Lustre, GPFS), where ``flock`` may be
unsupported, node-local or emulated; and the file itself says who holds the folder (host, pid, boot,
start time), which ``flock`` cannot tell a second user. The price is staleness, which is decided
from that record: a lock of this host and boot whose process is gone (or whose pid now belongs to a
process started later: a reused pid) is stale and taken over. A lock from another host cannot be
checked from here (a lost node looks like a live one), so it is refused, naming the host and the file
to delete once that host is known to be down.

The lock is released on exit, error and Ctrl-C (:func:`run_lock` is a context manager); after
``kill -9`` or a reboot the next command on the same host takes the stale lock over. Only the main
process of a multi-process run takes it (:func:`is_main_rank`): the other ranks wait for the main
process in accelerate's collectives, and if it is refused the launcher ends them with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from pointsd.errors import PointSDError, write_error

LOCK = "run.lock"


def is_main_rank() -> bool:
    """Whether this process is rank 0 of its launch (``accelerate launch``/``torchrun`` set ``RANK``)."""
    return os.environ.get("RANK", "0") == "0"


@contextlib.contextmanager
def run_lock(folder: Path) -> Iterator[Path]:
    """Hold ``folder/run.lock`` for the body; yields the lock's path.

    Creates ``folder`` (and missing parents) if needed and removes the ones it created when they are
    empty again on exit, so a refused command leaves no folder behind. A folder held by a live run
    raises :class:`PointSDError` naming the holder.
    """
    folder = Path(folder)
    created = _make_folders(folder)
    path = folder / LOCK
    try:
        mine = _acquire(path)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield path
    finally:
        _release(path, mine)
        _remove_empty(created)


def holder_record() -> dict[str, object]:
    """What this process writes into the lock: host, pid, boot, process start (ticks), start time."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "boot": _boot_id(),
            "ticks": _start_ticks(os.getpid()), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def is_stale(holder: dict[str, object]) -> bool:
    """Whether the lock ``holder`` is certainly gone: same host and boot, and its pid is dead or reused."""
    if holder.get("host") != socket.gethostname():
        return False
    if holder.get("boot") != _boot_id():
        return True  # the host rebooted since
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    if _state(pid) in ("Z", "X"):
        return True  # killed, not yet reaped by its parent: a zombie holds no lock
    return holder.get("ticks") is not None and _start_ticks(pid) not in (None, holder.get("ticks"))


def _acquire(path: Path) -> str:
    """Create the lock exclusively (taking a stale one over); → the text written."""
    text = json.dumps(holder_record())
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            _take_over_if_stale(path)
            continue
        except OSError as err:
            raise write_error(path, err) from err
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return text
    raise PointSDError(f"{path}: could not take the run lock (other commands keep taking it); try again")


def _take_over_if_stale(path: Path) -> None:
    """Remove ``path`` if its holder is gone; else raise naming the holder."""
    try:
        text = path.read_text()
        holder = json.loads(text)
    except FileNotFoundError:
        return  # released meanwhile: try again
    except (OSError, ValueError):
        holder, text = {}, None
    if not isinstance(holder, dict) or not holder:
        if text is None or time.time() - _mtime(path) < 10:  # being written just now, or unreadable
            raise PointSDError(f"{path}: held by another pointsd command (its lock cannot be read); "
                               "if none runs, delete that file")
        holder = {"host": socket.gethostname(), "boot": None}
    if not is_stale(holder):
        raise PointSDError(
            f"{path.parent} is in use by another pointsd run (host {holder.get('host')}, pid {holder.get('pid')}, "
            f"started {holder.get('started')}); wait for it to end, or use another --out "
            f"(if that process is gone, e.g. its node was lost, delete {path})")
    aside = path.with_name(f".{LOCK}.{os.getpid()}.stale")
    try:
        os.rename(path, aside)  # atomic: of two commands taking over, one wins
    except FileNotFoundError:
        return
    if aside.read_text() != text and not path.exists():  # a live lock taken between the read and the rename
        os.replace(aside, path)
    aside.unlink(missing_ok=True)


def _release(path: Path, mine: str) -> None:
    """Remove the lock if it is still this process's."""
    with contextlib.suppress(OSError):
        if path.read_text() == mine:
            path.unlink()


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; → those created, deepest first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(folder, err) from err
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        with contextlib.suppress(OSError):
            folder.rmdir()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _boot_id() -> str | None:
    """This boot's id (Linux), else None."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of Linux ``/proc/PID/stat`` after the command name (state first), else None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _state(pid: int) -> str | None:
    """Process ``pid``'s state letter (R, S, ..., Z zombie), else None."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (Linux), else None."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None
