"""The stage-2 student head (SPEC §3): diffusers' Perceiver resampler with one query.

``IPAdapterPlusImageProjection`` maps the backbone's global feature ``(B, 1, 2D)`` to the teacher's
width ``(B, 1, C)`` through ``depth`` Perceiver blocks and a final LayerNorm. It computes what the
official ``resampler.py`` computes (which fuses ``to_k``/``to_v`` into one ``to_kv``); its state dict,
saved as ``resampler.pt``, is this project's own file: the official script does not save its resampler.
"""

from __future__ import annotations

from dataclasses import dataclass

from diffusers.models.embeddings import IPAdapterPlusImageProjection


@dataclass
class ResamplerConfig:
    """Perceiver resampler widths (SPEC §3: dim 768, depth 3, head dim 64, 12 heads, FF ×4)."""

    dim: int = 768
    depth: int = 3
    dim_head: int = 64
    heads: int = 12
    ff_mult: int = 4


def perceiver_resampler(global_dim: int, output_dim: int, cfg: ResamplerConfig) -> IPAdapterPlusImageProjection:
    """Perceiver resampler, one query: ``(B, 1, global_dim)`` → ``(B, 1, output_dim)`` (final LayerNorm)."""
    return IPAdapterPlusImageProjection(
        embed_dims=global_dim, output_dims=output_dim, hidden_dims=cfg.dim, depth=cfg.depth, dim_head=cfg.dim_head,
        heads=cfg.heads, num_queries=1, ffn_ratio=cfg.ff_mult,
    )
