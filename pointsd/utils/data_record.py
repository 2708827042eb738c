"""What data a run read, as a cheap fingerprint that its run folder records (:mod:`pointsd.utils.run_config`).

A dataset's :class:`Sources` are the files it reads:

- *index* files, read whole when the dataset is built (h5, ``.dat``, fold pickles, split lists, class
  names): fingerprinted by content (sha256). They are read at start anyway, and they say which shapes,
  labels and splits the run sees;
- *member* files, one per shape and read lazily (ShapeNet-55 clouds, ULIP renders, ShapeNetPart
  shapes): fingerprinted by their names (relative to their folder) and sizes. Hashing tens of
  thousands of files at every start is not cheap; a member rewritten in place at the same size is not
  seen (a corrupt one is refused when it is read).

The identity of data is its content, not its path: the same files copied elsewhere (another
``--data-root``, a node-local copy) are the same data, and a file touched but unchanged is unchanged.
The paths are recorded for the reader of the record only.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pointsd.errors import PointSDError


@dataclass(frozen=True)
class Sources:
    """The files a dataset reads: ``index`` (content-hashed), ``members`` as ``(folder, file in it)`` (named
    relative to the folder, sized)."""

    index: tuple[Path, ...] = ()
    members: tuple[tuple[Path, Path], ...] = ()

    def __add__(self, other: Sources) -> Sources:
        return Sources(self.index + other.index, self.members + other.members)


def sources_of(dataset: Any) -> Sources:
    """The files ``dataset`` reads: its ``sources()``, else its ``path``; subsets and concatenations unwrapped."""
    if hasattr(dataset, "sources"):
        return dataset.sources()
    if hasattr(dataset, "path"):
        return Sources((Path(dataset.path),))
    if hasattr(dataset, "datasets"):  # ConcatDataset
        total = Sources()
        for part in dataset.datasets:
            total = total + sources_of(part)
        return total
    if hasattr(dataset, "dataset"):  # Subset
        return sources_of(dataset.dataset)
    return Sources()


def fingerprint(datasets: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{role: {"paths", "files", "bytes", "sha256"}}`` of each dataset that reads files (see the module docstring)."""
    out, digests = {}, {}
    for role, dataset in datasets.items():
        sources = sources_of(dataset)
        if sources.index or sources.members:
            out[role] = _fingerprint(sources, digests)
    return out


def differences(recorded: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """``role: OLD → NEW`` for every role whose content differs (a role only one side has counts too)."""
    out = []
    for role in sorted(set(recorded) | set(wanted)):
        old, new = recorded.get(role), wanted.get(role)
        if (old or {}).get("sha256") != (new or {}).get("sha256"):
            out.append(f"{role}: {_describe(old)} → {_describe(new)}")
    return out


def _fingerprint(sources: Sources, digests: dict[Path, str]) -> dict[str, Any]:
    whole = hashlib.sha256()
    size = 0
    for path in sources.index:
        if path not in digests:
            digests[path] = _file_digest(path)
        whole.update(digests[path].encode())
        size += path.stat().st_size
    listing = sorted(_member_entries(sources.members))
    for name, bytes_ in listing:
        whole.update(f"\0{name}\0{bytes_}".encode())
        size += bytes_
    paths = list(dict.fromkeys([str(p) for p in sources.index] + [str(folder) for folder, _ in sources.members]))
    return {"paths": paths, "files": len(sources.index) + len(listing), "bytes": size, "sha256": whole.hexdigest()}


def _file_digest(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError as err:
        raise PointSDError(f"{path}: cannot read ({err.strerror})") from err


def _member_entries(members: Iterable[tuple[Path, Path]]) -> Iterable[tuple[str, int]]:
    for folder, path in members:
        try:
            size = path.stat().st_size
        except OSError as err:
            raise PointSDError(f"{path}: cannot read ({err.strerror})") from err
        yield os.path.relpath(path, folder), size


def _describe(entry: Mapping[str, Any] | None) -> str:
    if not entry:
        return "none"
    paths = entry.get("paths") or ["?"]
    more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
    return (f"{paths[0]}{more} ({entry.get('files')} files, {entry.get('bytes')} bytes, "
            f"sha256 {str(entry.get('sha256'))[:12]})")
