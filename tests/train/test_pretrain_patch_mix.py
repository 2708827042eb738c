"""Patch mix invariants: the chosen slots are exchanged within pairs; images are joined [a|b] / [b|a]."""

from __future__ import annotations

import torch

from pointsd.train.patch_mix import join_images, patch_mix, swap_slots


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
    joined = join_images(black, gray)
    assert joined.shape == (1, 3, S, S)
    assert torch.allclose(joined[..., : S // 4 - 2, :], torch.ones(1), atol=1e-4)  # white band above
    assert torch.allclose(joined[..., -(S // 4 - 2):, :], torch.ones(1), atol=1e-4)  # white band below
    middle = joined[..., S // 4 + 2: 3 * S // 4 - 2, :]
    assert torch.allclose(middle[..., : S // 2 - 2], -torch.ones(1), atol=1e-3)  # a on the left
    assert torch.allclose(middle[..., S // 2 + 2:], torch.zeros(1), atol=1e-3)  # b on the right


def test_patch_mix_pairs_images_a_b_and_b_a() -> None:
    torch.manual_seed(0)
    imgs = torch.rand(4, 3, 16, 16) * 2 - 1
    nb, ct = torch.randn(4, 8, 4, 3), torch.randn(4, 8, 3)
    _, _, mixed = patch_mix(nb, ct, imgs)
    assert torch.allclose(mixed[0], join_images(imgs[0:1], imgs[1:2])[0])
    assert torch.allclose(mixed[1], join_images(imgs[1:2], imgs[0:1])[0])
    assert torch.allclose(mixed[3], join_images(imgs[3:4], imgs[2:3])[0])
