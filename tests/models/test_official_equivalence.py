"""Pin names AND semantics against the official Point-MAE / PointSD computation.

The official code cannot be downloaded here, so this file re-implements its forward pass
*functionally*, reading weights straight from a state dict in the official naming (no nn.Module
of ours is used): FPS starting at index 0, exact KNN, 1×1 convs as matmuls, BatchNorm in eval
form, explicit multi-head attention with ``head_dim ** -0.5``, LayerNorm, exact GELU, cls token and
position handling with ``x = block(x + pos)``. Random models are saved in the official layouts,
loaded through ``load_pretrained`` into fresh models, and must reproduce the functional outputs.
"""

import math

import pytest
import torch

from pointsd.models.backbone import PointTransformer
from pointsd.models.checkpoints import load_pretrained, save_backbone
from pointsd.models.classifier import PointTransformerClassifier
from pointsd.models.config import BackboneConfig
from pointsd.models.partseg import PointTransformerPartSeg
from pointsd.ops import reference

CONFIGS = [
    dict(trans_dim=48, depth=2, num_heads=2, group_size=8, num_group=16, encoder_dims=32),
    dict(trans_dim=96, depth=3, num_heads=6, group_size=16, num_group=32, encoder_dims=256),
]
ATOL = 1e-5
EPS = 1e-5  # BatchNorm and LayerNorm defaults of the official code


# ----------------------------------------------------------------------------- functional ops
def linear(x: torch.Tensor, sd: dict, name: str) -> torch.Tensor:
    out = x @ sd[f"{name}.weight"].T
    return out + sd[f"{name}.bias"] if f"{name}.bias" in sd else out


def conv1x1(x: torch.Tensor, sd: dict, name: str) -> torch.Tensor:
    """``x (B,C,L)`` with a ``(O,C,1)`` kernel → ``(B,O,L)``."""
    out = torch.einsum("oc,bcl->bol", sd[f"{name}.weight"][:, :, 0], x)
    return out + sd[f"{name}.bias"][None, :, None] if f"{name}.bias" in sd else out


def batch_norm_eval(x: torch.Tensor, sd: dict, name: str) -> torch.Tensor:
    """``x (B,C,L)`` or ``(B,C)`` normalised with the running statistics."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = sd[f"{name}.running_mean"].reshape(shape), sd[f"{name}.running_var"].reshape(shape)
    return (x - mean) / torch.sqrt(var + EPS) * sd[f"{name}.weight"].reshape(shape) + sd[f"{name}.bias"].reshape(shape)


def layer_norm(x: torch.Tensor, sd: dict, name: str) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + EPS) * sd[f"{name}.weight"] + sd[f"{name}.bias"]


def gelu(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def attention(x: torch.Tensor, sd: dict, name: str, heads: int) -> torch.Tensor:
    B, T, C = x.shape
    hd = C // heads
    qkv = (x @ sd[f"{name}.qkv.weight"].T).reshape(B, T, 3, heads, hd).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    attn = torch.softmax((q @ k.transpose(-2, -1)) * hd**-0.5, dim=-1)
    return linear((attn @ v).transpose(1, 2).reshape(B, T, C), sd, f"{name}.proj")


def block(x: torch.Tensor, sd: dict, name: str, heads: int) -> torch.Tensor:
    x = x + attention(layer_norm(x, sd, f"{name}.norm1"), sd, f"{name}.attn", heads)
    hidden = gelu(linear(layer_norm(x, sd, f"{name}.norm2"), sd, f"{name}.mlp.fc1"))
    return x + linear(hidden, sd, f"{name}.mlp.fc2")


# ----------------------------------------------------------------------------- functional model
def group(points: torch.Tensor, num_group: int, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """FPS (start 0) centers and exact KNN patches relative to their centers."""
    batch = torch.arange(points.shape[0])[:, None]
    center = points[batch, reference.furthest_point_sample(points, num_group, 0)]
    d2 = ((center[:, :, None, :] - points[:, None, :, :]) ** 2).sum(-1)
    idx = torch.argsort(d2, dim=-1, stable=True)[..., :group_size]
    return points[batch[:, :, None], idx] - center[:, :, None, :], center


def patch_embedding(neighborhood: torch.Tensor, sd: dict) -> torch.Tensor:
    B, G, K, _ = neighborhood.shape
    x = neighborhood.reshape(B * G, K, 3).transpose(1, 2)
    x = conv1x1(torch.relu(batch_norm_eval(conv1x1(x, sd, "encoder.first_conv.0"), sd, "encoder.first_conv.1")),
                sd, "encoder.first_conv.3")
    x = torch.cat([x.max(dim=2, keepdim=True).values.expand(-1, -1, K), x], dim=1)
    x = conv1x1(torch.relu(batch_norm_eval(conv1x1(x, sd, "encoder.second_conv.0"), sd, "encoder.second_conv.1")),
                sd, "encoder.second_conv.3")
    return x.max(dim=2).values.reshape(B, G, -1)


def official_tokens(points: torch.Tensor, sd: dict, cfg: dict, cls: bool = True, fetch=()) -> tuple:
    """Normalised tokens ``(B,[1+]G,D)`` and the raw outputs of blocks ``fetch``."""
    neighborhood, center = group(points, cfg["num_group"], cfg["group_size"])
    x = linear(patch_embedding(neighborhood, sd), sd, "reduce_dim")
    pos = linear(gelu(linear(center, sd, "pos_embed.0")), sd, "pos_embed.2")
    if cls:
        B = points.shape[0]
        x = torch.cat([sd["cls_token"].expand(B, -1, -1), x], dim=1)
        pos = torch.cat([sd["cls_pos"].expand(B, -1, -1), pos], dim=1)
    fetched = []
    for i in range(cfg["depth"]):
        x = block(x + pos, sd, f"blocks.blocks.{i}", cfg["num_heads"])
        if i in fetch:
            fetched.append(x)
    return layer_norm(x, sd, "norm"), fetched, center


def official_global(points: torch.Tensor, sd: dict, cfg: dict) -> torch.Tensor:
    x, _, _ = official_tokens(points, sd, cfg)
    return torch.cat([x[:, 0], x[:, 1:].max(dim=1).values], dim=-1)


def official_logits(points: torch.Tensor, sd: dict, cfg: dict) -> torch.Tensor:
    x = official_global(points, sd, cfg)
    x = torch.relu(batch_norm_eval(linear(x, sd, "cls_head_finetune.0"), sd, "cls_head_finetune.1"))
    x = torch.relu(batch_norm_eval(linear(x, sd, "cls_head_finetune.4"), sd, "cls_head_finetune.5"))
    return linear(x, sd, "cls_head_finetune.8")


def official_partseg_logits(points: torch.Tensor, category: torch.Tensor, sd: dict, cfg: dict, num_categories: int):
    """Point-MAE segmentation forward (PointNet++ feature propagation on squared distances)."""
    B, N, _ = points.shape
    _, fetched, center = official_tokens(points, sd, cfg, cls=False, fetch=cfg["return_layers"])
    feats = torch.cat([layer_norm(f, sd, "norm").transpose(1, 2) for f in fetched], dim=1)  # (B,F,G)
    one_hot = torch.nn.functional.one_hot(category, num_categories).float()[:, :, None]
    label = torch.nn.functional.leaky_relu(batch_norm_eval(conv1x1(one_hot, sd, "label_conv.0"), sd, "label_conv.1"), 0.2)
    glob = torch.cat([feats.max(2).values[:, :, None].repeat(1, 1, N), feats.mean(2)[:, :, None].repeat(1, 1, N),
                      label.repeat(1, 1, N)], dim=1)
    d2 = ((points[:, :, None, :] - center[:, None, :, :]) ** 2).sum(-1)
    d2, idx = d2.sort(dim=-1)
    recip = 1.0 / (d2[:, :, :3] + 1e-8)
    weight = recip / recip.sum(dim=2, keepdim=True)
    picked = feats.transpose(1, 2)[torch.arange(B)[:, None, None], idx[:, :, :3]]  # (B,N,3,F)
    x = torch.cat([points, (picked * weight[..., None]).sum(2)], dim=-1).transpose(1, 2)
    for i in range(2):
        x = torch.relu(batch_norm_eval(conv1x1(x, sd, f"propagation_0.mlp_convs.{i}"), sd, f"propagation_0.mlp_bns.{i}"))
    x = torch.cat([x, glob], dim=1)
    x = torch.relu(batch_norm_eval(conv1x1(x, sd, "convs1"), sd, "bns1"))
    x = torch.relu(batch_norm_eval(conv1x1(x, sd, "convs2"), sd, "bns2"))
    return conv1x1(x, sd, "convs3").transpose(1, 2)


# ----------------------------------------------------------------------------- helpers
def randomise_dict(state: dict, seed: int) -> dict:
    """Perturb every float entry (positive running variances) so no default value hides a wrong formula."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            out[name] = tensor
            continue
        noise = torch.randn(tensor.shape, generator=gen) * 0.2
        out[name] = tensor.abs() + 0.5 + noise.abs() if name.endswith("running_var") else tensor + noise
    return out


def randomise(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    model.load_state_dict(randomise_dict(model.state_dict(), seed))
    return model.eval()


def cloud(seed: int, n: int = 256) -> torch.Tensor:
    return torch.rand(2, n, 3, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("cfg", CONFIGS, ids=["tiny", "wide"])
def test_backbone_and_classifier_match_official(cfg, tmp_path):
    torch.manual_seed(0)
    source = randomise(PointTransformerClassifier(5, BackboneConfig(**cfg)), seed=1)
    sd = {k: v.clone() for k, v in source.state_dict().items()}
    torch.save({"base_model": {f"module.{k}": v for k, v in sd.items()}, "epoch": 300}, tmp_path / "official.pth")
    save_backbone(source, tmp_path / "ckpt-stage2.pt")
    points = cloud(2)
    want_global, want_logits = official_global(points, sd, cfg), official_logits(points, sd, cfg)

    backbone = PointTransformer(BackboneConfig(**cfg)).eval()
    load_pretrained(backbone, tmp_path / "ckpt-stage2.pt")
    got_global, got_tokens = backbone(points)
    assert torch.allclose(got_global, want_global, atol=ATOL)
    assert torch.allclose(got_tokens, official_tokens(points, sd, cfg)[0], atol=ATOL)

    classifier = PointTransformerClassifier(5, BackboneConfig(**cfg)).eval()
    report = load_pretrained(classifier, tmp_path / "official.pth", backbone_only=False)
    assert report.missing == [] and report.unexpected == []
    assert torch.allclose(classifier(points), want_logits, atol=ATOL)
    assert (want_logits - official_logits(points, PointTransformerClassifier(5, BackboneConfig(**cfg)).state_dict(), cfg)).abs().max() > 1e-3


def test_grouped_path_equals_official_grouping():
    cfg = CONFIGS[0]
    model = randomise(PointTransformer(BackboneConfig(**cfg)), seed=3)
    points = cloud(4)
    neighborhood, center = group(points, cfg["num_group"], cfg["group_size"])
    got_n, got_c = model.group(points)
    assert torch.equal(got_n, neighborhood) and torch.equal(got_c, center)
    assert torch.allclose(model(points, grouped=(neighborhood, center))[0], official_global(points, model.state_dict(), cfg), atol=ATOL)


def test_partseg_matches_official(tmp_path):
    cfg = dict(CONFIGS[0], depth=3, return_layers=(0, 1, 2))
    torch.manual_seed(0)
    backbone = BackboneConfig(**{k: v for k, v in cfg.items() if k != "return_layers"})
    pretrained = randomise(PointTransformer(backbone), seed=5)
    save_backbone(pretrained, tmp_path / "ckpt-stage2.pt")
    model = PointTransformerPartSeg(num_parts=7, num_categories=4, config=backbone, fp_dims=(40, 24),
                                    return_layers=cfg["return_layers"])
    load_pretrained(model, tmp_path / "ckpt-stage2.pt")
    head = {k: v for k, v in model.state_dict().items() if k.startswith(("propagation_0", "label_conv", "convs", "bns"))}
    model.load_state_dict(randomise_dict(head, seed=6), strict=False)
    model.eval()
    sd = model.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in pretrained.state_dict().items() if k in sd)
    points, category = cloud(7, n=200), torch.tensor([3, 1])
    want = official_partseg_logits(points, category, sd, cfg, num_categories=4)
    # float32 error grows with the logits' scale (up to ~50 here): the tolerance is relative to it
    assert torch.allclose(model(points, category), want, atol=ATOL * max(1.0, want.abs().max().item()))

