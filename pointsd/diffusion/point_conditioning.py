"""Point-cloud conditioning of the UNet (SPEC §2–§3).

- :class:`GlobalProjection`: backbone global feature ``(B, G)`` → 4 point tokens ``(B, 4, X)``
  (``X`` = UNet cross-attention width), the keys of the official ``PCProjModel`` (``proj``, ``norm``).
- :func:`install_ip_adapter`: diffusers' ``IPAdapterAttnProcessor2_0`` on every cross-attention layer,
  ``to_k_ip``/``to_v_ip`` initialised from ``to_k``/``to_v``; returns the ``adapter_modules`` ModuleList
  over ``unet.attn_processors.values()`` (the official indices; diffusers' keys ``"{index}.to_k_ip.0.weight"``,
  written with the official ``"{index}.to_k_ip.weight"`` by :func:`pointsd.diffusion.stage_models.save_stage1`).
- :func:`point_encoder_states`: the non-deprecated encoder states ``(zero text, [point tokens])``.
"""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import (
    AttnProcessor,
    AttnProcessor2_0,
    IPAdapterAttnProcessor,
    IPAdapterAttnProcessor2_0,
)
from torch import nn

NUM_POINT_TOKENS = 4
#: Length of the all-zero text context (any length gives the same zero contribution).
TEXT_CONTEXT_LEN = 1


class GlobalProjection(nn.Module):
    """``Linear(G, T·X) → reshape (B,T,X) → LayerNorm(X)``: ``(B, G)`` → ``(B, T, X)``."""

    def __init__(self, global_dim: int, cross_attention_dim: int, num_tokens: int = NUM_POINT_TOKENS) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.cross_attention_dim = cross_attention_dim
        self.proj = nn.Linear(global_dim, num_tokens * cross_attention_dim)
        self.norm = nn.LayerNorm(cross_attention_dim)

    def forward(self, global_feature: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(global_feature).reshape(-1, self.num_tokens, self.cross_attention_dim)
        return self.norm(tokens)


class SelfAttnProcessor(nn.Module):
    """diffusers' ``AttnProcessor2_0`` (or the eager ``AttnProcessor``) as a parameter-free Module, so
    ``adapter_modules`` keeps the official indices."""

    def __init__(self, sdpa: bool = True) -> None:
        super().__init__()
        self.processor = AttnProcessor2_0() if sdpa else AttnProcessor()

    def forward(
        self, attn: nn.Module, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.processor(attn, hidden_states, encoder_hidden_states, attention_mask, temb)


def install_ip_adapter(
    unet: UNet2DConditionModel, num_tokens: int = NUM_POINT_TOKENS, scale: float = 1.0, sdpa: bool = True
) -> nn.ModuleList:
    """Put IP-adapter processors on every ``attn2`` of ``unet``; returns the trainable ``adapter_modules``.

    Self-attention layers get :class:`SelfAttnProcessor` (no parameters), so the ModuleList indices are
    those of ``unet.attn_processors`` as in the official IP-Adapter training script. ``sdpa=False``
    installs the eager (non-SDPA) variants with the same parameters (the benchmark's reference mode).
    """
    attention_modules = dict(unet.named_modules())
    processors: dict[str, nn.Module] = {}
    for name in unet.attn_processors:
        layer = attention_modules[name.removesuffix(".processor")]
        if not name.endswith("attn2.processor"):
            processors[name] = SelfAttnProcessor(sdpa)
            continue
        hidden_size = layer.to_q.out_features
        proc = (IPAdapterAttnProcessor2_0 if sdpa else IPAdapterAttnProcessor)(
            hidden_size=hidden_size, cross_attention_dim=layer.to_k.in_features, num_tokens=(num_tokens,),
            scale=scale,
        )
        with torch.no_grad():
            proc.to_k_ip[0].weight.copy_(layer.to_k.weight)
            proc.to_v_ip[0].weight.copy_(layer.to_v.weight)
        processors[name] = proc.to(device=layer.to_k.weight.device, dtype=layer.to_k.weight.dtype)
    unet.set_attn_processor(processors)
    adapter_modules = nn.ModuleList(unet.attn_processors.values())
    adapter_modules.requires_grad_(True)
    return adapter_modules


def point_encoder_states(tokens: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Encoder states for the UNet: ``(zeros (B, 1, X), [tokens (B, T, X)])``.

    The zero text branch contributes nothing: SD's ``to_k``/``to_v`` have no bias, so its values are 0.
    """
    text = tokens.new_zeros(tokens.shape[0], TEXT_CONTEXT_LEN, tokens.shape[-1])
    return text, [tokens]

