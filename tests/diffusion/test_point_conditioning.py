"""IP-adapter install, point tokens, zero text branch, resampler."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0

from pointsd.diffusion.point_conditioning import GlobalProjection, install_ip_adapter, point_encoder_states
from pointsd.diffusion.resampler import ResamplerConfig, perceiver_resampler
from pointsd.diffusion.stable_diffusion import load_stable_diffusion


@pytest.fixture()
def unet(tiny_sd: Path):
    return load_stable_diffusion(tiny_sd).unet


def test_every_cross_attention_gets_an_ip_processor_initialised_from_to_k_to_v(unet) -> None:
    adapter = install_ip_adapter(unet)
    cross = {n: m for n, m in unet.named_modules() if n.endswith("attn2")}
    assert cross
    for name, attn in cross.items():
        proc = attn.processor
        assert isinstance(proc, IPAdapterAttnProcessor2_0)
        assert list(proc.num_tokens) == [4] and proc.scale == [1.0]
        assert torch.equal(proc.to_k_ip[0].weight, attn.to_k.weight)
        assert torch.equal(proc.to_v_ip[0].weight, attn.to_v.weight)
    keys = list(adapter.state_dict())
    assert len(keys) == 2 * len(cross)
    # official layout: ModuleList over unet.attn_processors (attn1 at even, attn2 at odd indices)
    assert keys[:2] == ["1.to_k_ip.0.weight", "1.to_v_ip.0.weight"]
    trainable = {n for n, p in unet.named_parameters() if p.requires_grad}
    assert trainable and all("to_k_ip" in n or "to_v_ip" in n for n in trainable)


def test_point_tokens_change_the_unet_output(unet) -> None:
    install_ip_adapter(unet)
    torch.manual_seed(0)
    latents, t = torch.randn(2, 4, 8, 8), torch.tensor([600, 900])
    a = unet(latents, t, encoder_hidden_states=point_encoder_states(torch.randn(2, 4, 64))).sample
    b = unet(latents, t, encoder_hidden_states=point_encoder_states(torch.randn(2, 4, 64))).sample
    assert (a - b).abs().max() > 1e-4


def test_zero_text_branch_contributes_exactly_zero(unet) -> None:
    install_ip_adapter(unet)
    attn = next(m for n, m in unet.named_modules() if n.endswith("attn2"))
    torch.manual_seed(1)
    hidden = torch.randn(2, 16, attn.to_q.in_features)
    tokens = torch.randn(2, 4, attn.to_k.in_features)
    out = attn(hidden, encoder_hidden_states=point_encoder_states(tokens))
    # expected: only the IP branch, through to_out
    proc = attn.processor
    heads = attn.heads
    q = attn.to_q(hidden)
    k, v = proc.to_k_ip[0](tokens), proc.to_v_ip[0](tokens)

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.view(2, -1, heads, x.shape[-1] // heads).transpose(1, 2)

    ip = torch.nn.functional.scaled_dot_product_attention(split(q), split(k), split(v))
    expected = attn.to_out[0](ip.transpose(1, 2).reshape(2, 16, -1))
    assert torch.allclose(out, expected, atol=1e-6)


def test_global_projection_and_resampler_shapes() -> None:
    proj = GlobalProjection(global_dim=96, cross_attention_dim=64)
    tokens = proj(torch.randn(3, 96))
    assert tokens.shape == (3, 4, 64)
    assert torch.allclose(tokens.mean(-1), torch.zeros(3, 4), atol=1e-5)  # LayerNorm over the token width
    resampler = perceiver_resampler(96, 80, ResamplerConfig(dim=48, depth=2, dim_head=16, heads=3))
    out = resampler(torch.randn(3, 1, 96))
    assert out.shape == (3, 1, 80)
    assert torch.allclose(out.std(-1, unbiased=False), torch.ones(3, 1), atol=1e-3)  # final LayerNorm


def test_eager_reference_processors_match_sdpa(tiny_sd: Path) -> None:
    a, b = load_stable_diffusion(tiny_sd).unet, load_stable_diffusion(tiny_sd).unet
    adapter_a, adapter_b = install_ip_adapter(a, sdpa=True), install_ip_adapter(b, sdpa=False)
    assert list(adapter_a.state_dict()) == list(adapter_b.state_dict())
    torch.manual_seed(0)
    latents, t, tokens = torch.randn(2, 4, 8, 8), torch.tensor([500, 999]), torch.randn(2, 4, 64)
    out_a = a(latents, t, encoder_hidden_states=point_encoder_states(tokens)).sample
    out_b = b(latents, t, encoder_hidden_states=point_encoder_states(tokens)).sample
    assert torch.allclose(out_a, out_b, atol=1e-5)
