"""PointTransformerPartSeg: shapes, widths, feature levels, interpolation, checkpoint loading."""

import pytest
import torch

from pointsd.models.backbone import PointTransformer
from pointsd.models.checkpoints import load_pretrained, save_backbone
from pointsd.models.config import BackboneConfig
from pointsd.models.partseg import FeaturePropagation, PointTransformerPartSeg


@pytest.fixture
def seg_kwargs(tiny) -> dict:
    return dict(config=BackboneConfig(**dict(tiny, depth=3)), num_parts=6, num_categories=3, fp_dims=(64, 32))


def test_logits_shape_and_paper_widths(seg_kwargs, points):
    model = PointTransformerPartSeg(**seg_kwargs).eval()
    logits = model(points, torch.tensor([0, 2]))
    assert logits.shape == (2, 128, 6)
    assert model.return_layers == (0, 1, 2)
    paper = PointTransformerPartSeg().state_dict()
    assert paper["propagation_0.mlp_convs.0.weight"].shape == (1536, 1152 + 3, 1)
    assert paper["propagation_0.mlp_convs.1.weight"].shape == (1024, 1536, 1)
    assert paper["convs1.weight"].shape == (512, 3392, 1)
    assert paper["convs3.weight"].shape == (50, 256, 1)
    assert paper["label_conv.0.weight"].shape == (64, 16, 1)
    assert PointTransformerPartSeg().return_layers == (3, 7, 11)
    assert "cls_token" not in paper and "reduce_dim.weight" in paper


def test_category_changes_logits(seg_kwargs, points):
    torch.manual_seed(0)
    model = PointTransformerPartSeg(**seg_kwargs)
    with torch.no_grad():  # non-trivial BN statistics for the label embedding
        model.train()
        model(points, torch.tensor([0, 1]))
    model.eval()
    a = model(points, torch.tensor([0, 0]))
    b = model(points, torch.tensor([1, 0]))
    assert not torch.allclose(a[0], b[0])
    assert torch.equal(a[1], b[1])


def test_patch_features_are_normed_block_outputs(seg_kwargs, tiny, points):
    model = PointTransformerPartSeg(**dict(seg_kwargs, config=BackboneConfig(**dict(tiny, depth=4))), return_layers=(1, 3)).eval()
    neighborhood, center = model.group(points)
    features = model.patch_features(neighborhood, center)
    assert features.shape == (2, 2 * 48, 16)
    tokens, pos = model.embed(neighborhood, center)
    x = tokens
    outs = []
    for block in model.blocks.blocks:
        x = block(x + pos)
        outs.append(model.norm(x))
    expected = torch.cat([outs[1], outs[3]], dim=-1).transpose(1, 2)
    assert torch.allclose(features, expected, atol=1e-6)


def test_feature_propagation_inverse_squared_distance():
    fp = FeaturePropagation(3 + 2, (4,)).eval()
    center = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3]]])
    features = torch.tensor([[[1.0, 2, 3, 4], [10, 20, 30, 40]]])  # (1,2,4)
    xyz = torch.tensor([[[0.0, 0, 0], [0.5, 0.5, 0]]])
    captured = {}
    fp.mlp_convs[0].register_forward_hook(lambda m, i, o: captured.update({"in": i[0]}))
    fp(xyz, center, features)
    x = captured["in"]
    assert torch.allclose(x[0, :3], xyz[0].T)
    assert torch.allclose(x[0, 3:, 0], torch.tensor([1.0, 10.0]), atol=1e-5)  # on a center: its feature
    d2 = torch.tensor([0.5, 0.5, 2.5])  # nearest: centers 0, 1, 2
    w = (1 / d2) / (1 / d2).sum()
    assert torch.allclose(x[0, 3:, 1], (features[0][:, :3] * w).sum(-1), atol=1e-5)


def test_loads_backbone_without_cls_token(seg_kwargs, points, tmp_path):
    torch.manual_seed(3)
    backbone = PointTransformer(seg_kwargs["config"]).eval()
    save_backbone(backbone, tmp_path / "ckpt-stage2.pt")
    model = PointTransformerPartSeg(**seg_kwargs).eval()
    report = load_pretrained(model, tmp_path / "ckpt-stage2.pt")
    assert set(report.unexpected) == {"cls_token", "cls_pos"}
    assert report.loaded == len(backbone.state_dict()) - 2
    assert not any(k.startswith(("encoder.", "blocks.", "norm.", "reduce_dim.", "pos_embed.")) for k in report.missing)
    neighborhood, center = backbone.group(points)
    tokens, pos = model.embed(neighborhood, center)
    ref_tokens, ref_pos = backbone.embed(neighborhood, center)
    assert torch.equal(tokens, ref_tokens) and torch.equal(pos, ref_pos)
    assert torch.equal(model.blocks(tokens, pos)[0], backbone.blocks(ref_tokens, ref_pos)[0])


def test_backward(seg_kwargs, points):
    model = PointTransformerPartSeg(**seg_kwargs).train()
    logits = model(points, torch.tensor([1, 2]))
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 6), torch.randint(0, 6, (256,)))
    loss.backward()
    assert model.encoder.first_conv[0].weight.grad.abs().sum() > 0
    assert model.label_conv[0].weight.grad.abs().sum() > 0


def test_bad_return_layers(seg_kwargs, tiny):
    with pytest.raises(ValueError, match="return_layers"):
        PointTransformerPartSeg(**seg_kwargs, return_layers=(2, 1))
    with pytest.raises(ValueError, match="depth"):
        PointTransformerPartSeg(**dict(seg_kwargs, config=BackboneConfig(**dict(tiny, depth=2))))
