"""Writers of every real on-disk format (SPEC §5), byte-for-byte deterministic and atomic.

Each function takes arrays and writes files laid out and typed like the public downloads.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, Sequence

import h5py
import numpy as np

from pointsd.utils.atomic import atomic_path, write_bytes, write_text


def write_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` an array atomically."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    write_bytes(path, buf.getvalue())


def write_lines(path: Path, lines: Sequence[str]) -> None:
    """One entry per line, trailing newline."""
    write_text(path, "".join(f"{line}\n" for line in lines))


def format_rows(array: np.ndarray, fmt: str, sep: str) -> str:
    """Rows of ``array (N,C)`` as text, one line each (``np.savetxt`` format)."""
    buf = io.StringIO()
    np.savetxt(buf, array, fmt=fmt, delimiter=sep)
    return buf.getvalue()


def write_pickle(path: Path, obj: Any) -> None:
    """Pickle ``obj`` (protocol 4) atomically."""
    write_bytes(path, pickle.dumps(obj, protocol=4))


def write_h5(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An h5 file with one dataset per key, no timestamps (so equal inputs give equal bytes)."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=False) as fh:
            for key, value in arrays.items():
                fh.create_dataset(key, data=value, track_times=False)


def write_modelnet_txt(path: Path, xyz: np.ndarray, normals: np.ndarray) -> None:
    """``x,y,z,nx,ny,nz`` per line with 6 decimals, as in ``modelnet40_normal_resampled``."""
    write_text(path, format_rows(np.concatenate([xyz, normals], 1), "%.6f", ","))


def write_part_txt(path: Path, xyz: np.ndarray, normals: np.ndarray, parts: np.ndarray) -> None:
    """``x y z nx ny nz part`` per line (part written as a float), as in the ShapeNetPart normal set."""
    rows = np.concatenate([xyz, normals, parts[:, None].astype(np.float64)], 1)
    write_text(path, format_rows(rows, "%.6f", " "))
