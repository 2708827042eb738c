"""Patch mix invariants: the chosen slots are exchanged within pairs; images are joined [a|b] / [b|a] and
resized back with nearest (official, ``F.interpolate``'s default) or the named ``antialias`` variant."""

from __future__ import annotations

import torch

from pointsd.train.patch_mix import join_images, mix_images, swap_slots


def test_slots_are_swapped_within_pairs_and_the_rest_kept() -> None:
    g = torch.Generator().manual_seed(3)
    nb, ct = torch.randn(5, 16, 8, 3), torch.randn(5, 16, 3)
    mixed_nb, mixed_ct, mask = swap_slots(nb, ct, g)
    assert mask.shape == (2, 16) and (mask.sum(1) >= 1).all()
    assert (mask.sum(1) == mask.sum(1)[0]).all()  # one lam per batch
    for p in range(2):
        a, b, m = 2 * p, 2 * p + 1, mask[p]
        assert torch.equal(mixed_nb[a][m], nb[b][m]) and torch.equal(mixed_nb[b][m], nb[a][m])
        assert torch.equal(mixed_ct[a][m], ct[b][m]) and torch.equal(mixed_ct[b][m], ct[a][m])
        assert torch.equal(mixed_nb[a][~m], nb[a][~m]) and torch.equal(mixed_ct[b][~m], ct[b][~m])
    assert torch.equal(mixed_nb[4], nb[4])  # odd sample left as is


def test_images_joined_side_by_side_with_white_padding() -> None:
    S = 32
    black, gray = -torch.ones(1, 3, S, S), torch.zeros(1, 3, S, S)
    for resize in ("nearest", "antialias"):
        joined = join_images(black, gray, resize)
        assert joined.shape == (1, 3, S, S)
        assert torch.allclose(joined[..., : S // 4 - 2, :], torch.ones(1), atol=1e-4)  # white band above
        assert torch.allclose(joined[..., -(S // 4 - 2):, :], torch.ones(1), atol=1e-4)  # white band below
        middle = joined[..., S // 4 + 2: 3 * S // 4 - 2, :]
        assert torch.allclose(middle[..., : S // 2 - 2], -torch.ones(1), atol=1e-3)  # a on the left
        assert torch.allclose(middle[..., S // 2 + 2:], torch.zeros(1), atol=1e-3)  # b on the right


def test_join_resizes_with_nearest_by_default() -> None:
    """Official: ``F.interpolate(x, size=(S, S))`` (nearest) of the (2S, 2S) square: every other pixel, untouched."""
    S = 16
    a, b = torch.rand(2, 3, S, S) * 2 - 1, torch.rand(2, 3, S, S) * 2 - 1
    square = torch.cat([torch.ones(2, 3, S // 2, 2 * S), torch.cat([a, b], -1), torch.ones(2, 3, S - S // 2, 2 * S)], 2)
    assert torch.equal(join_images(a, b), square[..., ::2, ::2])
    assert torch.equal(join_images(a, b, "nearest"), square[..., ::2, ::2])
    smooth = join_images(a, b, "antialias")
    assert not torch.allclose(smooth, square[..., ::2, ::2], atol=1e-2) and smooth.abs().max() <= 1.0


def test_mix_images_pairs_a_b_and_b_a() -> None:
    torch.manual_seed(0)
    imgs = torch.rand(5, 3, 16, 16) * 2 - 1
    for resize in ("nearest", "antialias"):
        mixed = mix_images(imgs, resize)
        assert torch.allclose(mixed[0], join_images(imgs[0:1], imgs[1:2], resize)[0])
        assert torch.allclose(mixed[1], join_images(imgs[1:2], imgs[0:1], resize)[0])
        assert torch.allclose(mixed[3], join_images(imgs[3:4], imgs[2:3], resize)[0])
        assert torch.equal(mixed[4], imgs[4])  # odd image left as is
    assert torch.equal(mix_images(imgs[:1]), imgs[:1])  # a batch of one: nothing to pair
