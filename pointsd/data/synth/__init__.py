"""Embedded synthetic data: procedural shapes written in every real on-disk format (SPEC §5)."""

from pointsd.data.synth.datasets import synthesize
from pointsd.data.synth.sizes import PRESETS, SynthSizes, sizes_for

__all__ = ["synthesize", "SynthSizes", "PRESETS", "sizes_for"]
