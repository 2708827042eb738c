"""PointSD: distilling Stable Diffusion v1.5 into a point-cloud transformer."""

__version__ = "0.1.0"
