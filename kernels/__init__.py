"""Triton GPU kernels for point operations (installed as ``pointsd_kernels``)."""
