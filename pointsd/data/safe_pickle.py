"""Read pickles from elsewhere without executing code.

Only numpy arrays / scalars / dtypes, numbers, strings, bytes, lists, tuples and dicts are admitted;
any other global a pickle names (``os.system``, ``builtins.eval``, a class, ...) is refused.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
from typing import Any

import numpy as np

from pointsd.errors import PointSDError

# The globals numpy pickles reference, as written by numpy 1.x (``numpy.core``) and 2.x (``numpy._core``).
_ALLOWED: frozenset[tuple[str, str]] = frozenset(
    [(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")]
    + [(m, "_frombuffer") for m in ("numpy.core.numeric", "numpy._core.numeric")]
    + [("numpy", "ndarray"), ("numpy", "dtype"),
       ("_codecs", "encode")]  # protocol-2 pickles store bytes as codecs.encode(str, "latin1")
)


def _resolve(module: str, name: str) -> Any:
    """The real object behind an admitted global (numpy moved ``core`` to ``_core`` in 2.0)."""
    if module == "_codecs":
        return codecs.encode
    if module == "numpy":
        return getattr(np, name)
    from numpy._core import multiarray, numeric

    return getattr(multiarray if module.endswith("multiarray") else numeric, name)


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` admits only the globals listed in ``_ALLOWED``."""

    def __init__(self, file: io.BufferedIOBase, where: str) -> None:
        super().__init__(file, encoding="latin1")
        self._where = where

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise PointSDError(
                f"{self._where}: refusing to unpickle {module}.{name} (only numpy arrays, numbers, "
                "strings, lists, tuples and dicts are allowed)")
        return _resolve(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise PointSDError(f"{self._where}: refusing a pickle with persistent ids")


def loads(data: bytes, where: str = "<bytes>") -> Any:
    """Unpickle ``data`` with the restricted unpickler; ``where`` names the source in errors."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), where).load()
    except PointSDError:
        raise
    except Exception as err:  # truncated / corrupt pickles raise many different types
        raise PointSDError(f"{where}: not a readable pickle ({type(err).__name__}: {err})") from err


def load(path: str | os.PathLike) -> Any:
    """Unpickle the file at ``path`` safely (see :func:`loads`)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as err:
        raise PointSDError(f"{path}: cannot read ({err.strerror})") from err
    return loads(data, str(path))
