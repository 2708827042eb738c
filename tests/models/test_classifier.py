"""PointTransformerClassifier: shapes, official key names, features == backbone forward."""

import torch

from pointsd.models.backbone import PointTransformer
from pointsd.models.classifier import PointTransformerClassifier
from pointsd.models.config import BackboneConfig


def test_logits_shape_and_features(tiny, points):
    torch.manual_seed(0)
    model = PointTransformerClassifier(7, BackboneConfig(**tiny)).eval()
    logits = model(points)
    assert logits.shape == (2, 7)
    global_feature, tokens = model.features(points)
    assert global_feature.shape == (2, 2 * tiny["trans_dim"])
    assert tokens.shape == (2, 1 + tiny["num_group"], tiny["trans_dim"])
    assert torch.allclose(model.cls_head_finetune(global_feature), logits)


def test_state_dict_keys_are_backbone_keys_plus_head(tiny):
    model = PointTransformerClassifier(5, BackboneConfig(**tiny))
    backbone_keys = set(PointTransformer(BackboneConfig(**tiny)).state_dict())
    keys = set(model.state_dict())
    head = keys - backbone_keys
    assert backbone_keys <= keys
    assert not any(k.startswith("backbone.") for k in keys)
    assert {k.split(".")[1] for k in head if k.startswith("cls_head_finetune.")} == {"0", "1", "4", "5", "8"}
    assert all(k.startswith("cls_head_finetune.") for k in head)
    assert model.state_dict()["cls_head_finetune.8.weight"].shape == (5, 256)
    assert model.state_dict()["cls_head_finetune.0.weight"].shape == (256, 2 * tiny["trans_dim"])


def test_official_key_names_default_size():
    keys = set(PointTransformerClassifier(40).state_dict())
    for key in [
        "encoder.first_conv.0.weight", "encoder.first_conv.1.running_var", "encoder.first_conv.3.weight",
        "encoder.second_conv.0.weight", "encoder.second_conv.1.weight", "encoder.second_conv.3.bias",
        "reduce_dim.weight", "cls_token", "cls_pos", "pos_embed.0.weight", "pos_embed.2.bias",
        "blocks.blocks.11.norm1.weight", "blocks.blocks.11.attn.qkv.weight", "blocks.blocks.0.attn.proj.bias",
        "blocks.blocks.0.norm2.bias", "blocks.blocks.0.mlp.fc1.weight", "blocks.blocks.0.mlp.fc2.bias",
        "norm.weight", "cls_head_finetune.8.bias",
    ]:
        assert key in keys, key
    assert "blocks.blocks.0.attn.qkv.bias" not in keys
    assert "blocks.blocks.12.norm1.weight" not in keys


def test_train_mode_backward(tiny, points):
    model = PointTransformerClassifier(3, BackboneConfig(**tiny)).train()
    loss = torch.nn.functional.cross_entropy(model(points), torch.tensor([0, 2]))
    loss.backward()
    assert model.encoder.first_conv[0].weight.grad is not None
    assert model.cls_token.grad is not None and model.cls_token.grad.abs().sum() > 0
