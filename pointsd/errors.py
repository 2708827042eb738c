"""The one exception type the CLI turns into a clear message and a non-zero exit, and its helpers."""

from __future__ import annotations

import errno
import os

# What to do when the operating system refuses a write, by errno.
WRITE_HINTS = {
    errno.ENOSPC: "free some space (or choose another output folder), then rerun the same command",
    errno.EDQUOT: "free some of your quota (or choose another output folder), then rerun the same command",
    errno.EFBIG: "the file system cannot hold a file this large; choose another output folder",
    errno.EACCES: "make it writable for you, or choose another output folder",
    errno.EPERM: "make it writable for you, or choose another output folder",
    errno.EROFS: "it is on a read-only file system; choose another output folder",
}


class PointSDError(Exception):
    """A user-facing error: bad input file, bad parameter, wrong checkpoint, full or read-only disk.

    The message must name the offending file or key; the CLI prints it on one line and exits 2.
    """


class RunStopped(Exception):
    """A training run stopped on request (SIGTERM, SIGUSR1) after a whole step, its resume state saved:
    the same command continues it. The CLI exits with :data:`EXIT_STOPPED`."""

    def __init__(self, signal_name: str, step: int, state: os.PathLike) -> None:
        super().__init__(f"stopped by {signal_name} after step {step}; progress is saved in {os.fspath(state)}; "
                         "rerun the same command to resume")
        self.signal_name, self.step, self.state = signal_name, step, state


EXIT_STOPPED = 75  # sysexits EX_TEMPFAIL: try again later (a stopped run resumes when rerun)


def first_line(exc: BaseException) -> str:
    """The first non-empty line of ``exc``'s message (torch's errors span many lines), else its type name."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def is_write_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is the OS refusing a write (full disk, quota, permissions, read-only file system).

    Libraries that write through native code (safetensors) report the OS error only in their text.
    """
    if isinstance(exc, PointSDError):
        return False
    if isinstance(exc, OSError):
        return exc.errno in WRITE_HINTS
    return "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc)


def write_error(target: str | os.PathLike, exc: BaseException) -> PointSDError:
    """A :class:`PointSDError` for a refused write of ``target``: the path, the OS's reason, what to do."""
    if isinstance(exc, OSError):
        code = exc.errno
    else:
        code = errno.EDQUOT if "Disk quota exceeded" in str(exc) else errno.ENOSPC
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else os.strerror(code)
    hint = WRITE_HINTS.get(code, "choose another output folder")
    return PointSDError(f"cannot write {os.fspath(target)}: {reason}; {hint}")
