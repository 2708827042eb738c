"""JSON in and out, one encoding: numpy / torch scalars and arrays, and paths, become plain JSON.

Files are written atomically (:mod:`pointsd.utils.atomic`): indented with sorted keys (metrics,
records), or compact as the public split files are. JSON-lines logs (``metrics.jsonl``) are one
compact value per line.
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
    """The JSON value in ``path``; an unreadable or malformed file raises :class:`PointSDError` naming
    it as ``what``."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError as err:
        raise PointSDError(f"{path}: {what} is missing") from err
    except OSError as err:
        raise PointSDError(f"{path}: cannot read the {what} ({err.strerror})") from err
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PointSDError(f"{path}: not a valid {what} ({err})") from err


def parse_json_lines(text: str, path: str | os.PathLike) -> list[Any]:
    """The values of JSON-lines ``text`` read from ``path`` (blank lines skipped); a bad line raises
    :class:`PointSDError` naming ``path:line``."""
    values = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            values.append(json.loads(line))
        except json.JSONDecodeError:
            raise PointSDError(f"{path}:{number}: not a JSON line") from None
    return values
