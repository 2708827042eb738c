"""Argument types shared by command modules: validated paths and numbers with clear errors."""

from __future__ import annotations

import argparse
from pathlib import Path


def existing_path(value: str) -> Path:
    """An argparse type: a path that must exist."""
    path = Path(value)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file or folder: {value}")
    return path


def positive_int(value: str) -> int:
    """An argparse type: an integer > 0."""
    try:
        number = int(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from err
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {number}")
    return number


def non_negative_float(value: str) -> float:
    """An argparse type: a finite float >= 0."""
    try:
        number = float(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from err
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {value}")
    return number
