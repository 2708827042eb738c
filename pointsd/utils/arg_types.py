"""argparse types: validated paths and numbers, each refusing a bad value with a one-line reason.

Shared by the CLI (:mod:`pointsd.cli`) and the benchmark commands (:mod:`pointsd.bench`).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable, TypeVar

Number = TypeVar("Number", int, float)


def existing_path(value: str) -> Path:
    """An argparse type: a path that must exist."""
    path = Path(value)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file or folder: {value}")
    return path


def _number(value: str, convert: Callable[[str], Number], noun: str) -> Number:
    """``convert(value)``, or an argparse error saying ``value`` is not ``noun``."""
    try:
        return convert(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not {noun}: {value!r}") from err


def positive_int(value: str) -> int:
    """An argparse type: an integer > 0."""
    number = _number(value, int, "an integer")
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {number}")
    return number


def non_negative_int(value: str) -> int:
    """An argparse type: an integer >= 0."""
    number = _number(value, int, "an integer")
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {number}")
    return number


def non_negative_float(value: str) -> float:
    """An argparse type: a finite float >= 0."""
    number = _number(value, float, "a number")
    if not (number >= 0 and math.isfinite(number)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {value}")
    return number
