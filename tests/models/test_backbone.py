"""PointTransformer: shapes, grouping invariants, grouped= path, stochastic depth schedule."""

import pytest
import torch

from pointsd.errors import PointSDError
from pointsd.models.backbone import DropPath, PointTransformer
from pointsd.models.config import BackboneConfig


def test_shapes(tiny, points):
    model = PointTransformer(BackboneConfig(**tiny)).eval()
    global_feature, tokens = model(points)
    assert global_feature.shape == (2, model.global_dim) == (2, 96)
    assert tokens.shape == (2, 1 + 16, 48)
    _, taken = model.encode(*model.group(points), return_layers=(0, 1))
    assert len(taken) == 2 and taken[0].shape == (2, 17, 48)


def test_grouped_path_equals_normal_path(tiny, points):
    model = PointTransformer(BackboneConfig(**tiny)).eval()
    grouped = model.group(points)
    a, ta = model(points)
    b, tb = model(points, grouped=grouped)
    assert torch.equal(a, b) and torch.equal(ta, tb)


def test_patch_invariants(tiny, points):
    model = PointTransformer(BackboneConfig(**tiny))
    neighborhood, center = model.group(points)
    K = tiny["group_size"]
    assert neighborhood.shape == (2, 16, K, 3) and center.shape == (2, 16, 3)
    for b in range(2):
        d2 = ((center[b][:, None] - points[b][None]) ** 2).sum(-1)  # (G,N)
        assert torch.all(d2.min(dim=1).values == 0)  # every center is one of the points
        assert len({tuple(c.tolist()) for c in center[b]}) == 16  # distinct (FPS)
        # the first neighbour is the center itself (distance 0), the patch is relative to the center
        assert torch.all(neighborhood[b, :, 0] == 0)
        absolute = neighborhood[b] + center[b][:, None]
        to_cloud = ((absolute.reshape(-1, 1, 3) - points[b][None]) ** 2).sum(-1).min(dim=1).values
        assert torch.all(to_cloud < 1e-10)  # patch members are points of the cloud
        kth = d2.sort(dim=1).values[:, K - 1]
        patch_d2 = ((absolute - center[b][:, None]) ** 2).sum(-1)
        assert torch.all(patch_d2 <= kth[:, None] + 1e-6)  # the K nearest, sorted
        assert torch.all(patch_d2[:, 1:] >= patch_d2[:, :-1] - 1e-7)


def test_center_starts_at_first_point(tiny, points):
    _, center = PointTransformer(BackboneConfig(**tiny)).group(points)
    assert torch.equal(center[:, 0], points[:, 0])


def test_drop_path_schedule_linear():
    model = PointTransformer(BackboneConfig(trans_dim=48, depth=5, num_heads=2, drop_path_rate=0.2))
    rates = [block.drop_path.p for block in model.blocks.blocks]
    assert rates == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    assert PointTransformer(BackboneConfig(trans_dim=48, depth=1, num_heads=2)).blocks.blocks[0].drop_path.p == 0.0


def test_drop_path_behaviour():
    x = torch.ones(2000, 4)
    dp = DropPath(0.25).train()
    out = dp(x)
    kept = out[:, 0] != 0
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / 0.75))
    assert abs(kept.float().mean().item() - 0.75) < 0.05
    assert torch.equal(dp.eval()(x), x)


def test_train_mode_is_stochastic_eval_is_not(tiny, points):
    model = PointTransformer(BackboneConfig(**dict(tiny, drop_path_rate=0.5)))
    torch.manual_seed(0)
    model.train()
    a, _ = model(points)
    b, _ = model(points)
    assert not torch.allclose(a, b)
    model.eval()
    assert torch.equal(model(points)[0], model(points)[0])


def test_bad_heads():
    with pytest.raises(PointSDError, match="num_heads"):
        PointTransformer(BackboneConfig(trans_dim=50, num_heads=6))


def test_backbone_config_names_the_bad_field():
    with pytest.raises(PointSDError, match="encoder_dims == trans_dim"):
        BackboneConfig(trans_dim=48, encoder_dims=32, reduce_dim=False).validate()
    with pytest.raises(PointSDError, match="not divisible by num_heads"):
        BackboneConfig(trans_dim=50, num_heads=6).validate()
    with pytest.raises(PointSDError, match="exceed npoints 16"):
        BackboneConfig(num_group=32).validate(npoints=16)
    model = BackboneConfig(trans_dim=48, depth=1, num_heads=2, encoder_dims=48, reduce_dim=False).build()
    assert not any(k.startswith("reduce_dim.") for k in model.state_dict())


def test_backbone_starts_at_pytorch_default_init():
    """Official PointSD pre-training: no truncated-normal pass; cls_token 0, cls_pos ~ N(0, 1)."""
    torch.manual_seed(0)
    model = PointTransformer(BackboneConfig())  # SPEC §1 sizes
    assert torch.equal(model.cls_token, torch.zeros_like(model.cls_token))
    assert 0.85 < model.cls_pos.std().item() < 1.15
    first = model.encoder.first_conv[0].weight  # Conv1d(3, 128, 1): kaiming-uniform bound 1/sqrt(3), std 1/3
    assert 0.3 < first.std().item() < 0.37 and first.abs().max() <= 3 ** -0.5
    assert 0.3 < model.pos_embed[0].weight.std().item() < 0.37  # Linear(3, 128), same default
    assert model.encoder.first_conv[0].bias.abs().max() > 0  # default biases, not zeros


def test_classifier_keeps_point_mae_init():
    """Point-MAE's fine-tuning model: truncated normal std 0.02, zero biases, cls_token / cls_pos std 0.02."""
    from pointsd.models.classifier import PointTransformerClassifier

    torch.manual_seed(0)
    model = PointTransformerClassifier(10, BackboneConfig())
    assert 0.015 < model.encoder.first_conv[0].weight.std().item() < 0.025
    assert torch.equal(model.encoder.first_conv[0].bias, torch.zeros_like(model.encoder.first_conv[0].bias))
    assert 0.01 < model.cls_pos.std().item() < 0.03 and model.cls_token.abs().max() > 0
