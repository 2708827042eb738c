"""Embedded synthetic data: procedural shapes written in every real on-disk format (SPEC §5)."""

from typing import Any

from pointsd.data.synth.sizes import PRESETS, SynthSizes, sizes_for

__all__ = ["synthesize", "SynthSizes", "PRESETS", "sizes_for"]


def __getattr__(name: str) -> Any:
    """``synthesize`` (numpy, h5py) is imported when first used, so the sizes are light to import."""
    if name == "synthesize":
        from pointsd.data.synth.datasets import synthesize

        return synthesize
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
