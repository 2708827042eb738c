"""JSON in and out, one encoding: numpy / torch scalars and arrays, and paths, become plain JSON.

Files are written atomically (:mod:`pointsd.utils.atomic`): indented with sorted keys (metrics,
records), or compact as the public split files are.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pointsd.errors import PointSDError
from pointsd.utils.atomic import write_text


def json_value(obj: Any) -> Any:
    """The ``default`` of :func:`json.dumps`: numpy / torch scalars and arrays, and paths, as plain values."""
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any, *, compact: bool = False) -> str:
    """``obj`` as JSON text: indented with sorted keys, or on one line in ``obj``'s key order."""
    if compact:
        return json.dumps(obj, default=json_value)
    return json.dumps(obj, indent=2, sort_keys=True, default=json_value)


def plain(obj: Any) -> Any:
    """``obj`` as the plain values (dicts, lists, str, numbers) it reads back as from JSON."""
    return json.loads(dumps(obj, compact=True))


def write_json(target: str | os.PathLike, obj: Any, *, compact: bool = False) -> None:
    """Atomically write ``obj`` as JSON (see :func:`dumps`); the indented form ends with a newline."""
    write_text(target, dumps(obj, compact=compact) + ("" if compact else "\n"))


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """The JSON value in ``path``; a missing or malformed file raises :class:`PointSDError` naming it."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as err:
        raise PointSDError(f"{path}: no such {what}") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PointSDError(f"{path}: not a {what} ({err})") from err
