"""load_pretrained / save_backbone / load_state_file: layouts, round trips, refusals."""

import os
import pickle

import pytest
import torch

from pointsd.errors import PointSDError
from pointsd.models.backbone import PointTransformer
from pointsd.models.checkpoints import is_backbone_key, load_pretrained, load_state_file, save_backbone
from pointsd.models.classifier import PointTransformerClassifier
from pointsd.models.config import BackboneConfig


def _trained_backbone(tiny: dict, points: torch.Tensor) -> PointTransformer:
    """A backbone with non-default weights and BN statistics."""
    torch.manual_seed(1)
    model = PointTransformer(BackboneConfig(**tiny))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    model.train()
    model(points)
    return model.eval()


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"base_model": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3},
        lambda sd: {"base_model": {f"module.MAE_encoder.{k}": v for k, v in sd.items()}},
        lambda sd: {"model": {f"transformer_q.{k}": v for k, v in sd.items()}},
        lambda sd: {"state_dict": {f"module.point_encoder.{k}": v for k, v in sd.items()}},
        lambda sd: {"model": {"base_model.module." + k: v for k, v in sd.items()}},
    ],
    ids=["plain", "base_model+module", "mae_encoder", "transformer_q", "state_dict+point_encoder", "stacked"],
)
def test_layouts_load_all_backbone_keys(tiny, points, wrap):
    source = _trained_backbone(tiny, points)
    target = PointTransformerClassifier(4, BackboneConfig(**tiny)).eval()
    report = load_pretrained(target, wrap(source.state_dict()))
    assert report.loaded == len(source.state_dict())
    assert report.unexpected == [] and report.mismatched == []
    assert all(k.startswith("cls_head_finetune.") for k in report.missing)
    assert torch.equal(target.features(points)[0], source(points)[0])


def test_load_changes_weights(tiny, points):
    source = _trained_backbone(tiny, points)
    target = PointTransformerClassifier(4, BackboneConfig(**tiny)).eval()
    before = target.reduce_dim.weight.clone()
    assert not torch.allclose(target.features(points)[0], source(points)[0])
    load_pretrained(target, source.state_dict())
    assert not torch.equal(before, target.reduce_dim.weight)
    assert torch.equal(target.reduce_dim.weight, source.reduce_dim.weight)
    assert torch.equal(target.encoder.first_conv[1].running_mean, source.encoder.first_conv[1].running_mean)


def test_save_backbone_round_trip_pt_and_safetensors(tiny, points, tmp_path):
    torch.manual_seed(2)
    trained = PointTransformerClassifier(4, BackboneConfig(**tiny))
    trained.train()
    trained(points)
    trained.eval()
    save_backbone(trained, tmp_path / "ckpt-stage2.pt")
    assert sorted(os.listdir(tmp_path)) == ["ckpt-stage2.pt", "ckpt-stage2.safetensors"]
    plain = load_state_file(tmp_path / "ckpt-stage2.pt")
    assert set(plain) == {k for k in trained.state_dict() if is_backbone_key(k)}
    assert not any(k.startswith("cls_head_finetune") for k in plain)
    for name in ["ckpt-stage2.pt", "ckpt-stage2.safetensors"]:
        fresh = PointTransformerClassifier(9, BackboneConfig(**tiny)).eval()
        report = load_pretrained(fresh, tmp_path / name)
        assert report.loaded == len(plain)
        assert torch.equal(fresh.features(points)[0], trained.features(points)[0])


def test_head_of_other_class_count_is_not_loaded(tiny):
    finetuned = PointTransformerClassifier(15, BackboneConfig(**tiny))
    target = PointTransformerClassifier(40, BackboneConfig(**tiny))
    head_before = target.cls_head_finetune[0].weight.clone()
    report = load_pretrained(target, {"base_model": finetuned.state_dict()})
    assert set(report.mismatched) == {"cls_head_finetune.8.weight", "cls_head_finetune.8.bias"}
    assert "cls_head_finetune.0.weight" in report.unexpected
    assert torch.equal(target.cls_head_finetune[0].weight, head_before)


def test_mae_decoder_keys_reported_unexpected(tiny):
    backbone = PointTransformer(BackboneConfig(**tiny)).state_dict()
    ckpt = {f"module.MAE_encoder.{k}": v for k, v in backbone.items()}
    ckpt["module.MAE_decoder.blocks.blocks.0.norm1.weight"] = torch.ones(tiny["trans_dim"])
    ckpt["module.mask_token"] = torch.zeros(1, 1, tiny["trans_dim"])
    report = load_pretrained(PointTransformer(BackboneConfig(**tiny)), {"base_model": ckpt})
    assert set(report.unexpected) == {"MAE_decoder.blocks.blocks.0.norm1.weight", "mask_token"}
    assert report.missing == []


def test_wrong_trans_dim_names_mismatched_keys(tiny, tmp_path):
    save_backbone(PointTransformer(BackboneConfig(**tiny)), tmp_path / "small.pt")
    bigger = dict(tiny, trans_dim=64)
    with pytest.raises(PointSDError, match=r"small\.pt.*reduce_dim\.weight \(48, 32\) vs model \(64, 32\)"):
        load_pretrained(PointTransformerClassifier(3, BackboneConfig(**bigger)), tmp_path / "small.pt")


def test_no_backbone_key_is_an_error(tmp_path):
    torch.save({"something.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(PointSDError, match="other.pt.*no backbone key"):
        load_pretrained(PointTransformer(BackboneConfig(trans_dim=48, depth=1, num_heads=2)), tmp_path / "other.pt")


def test_not_a_state_dict(tmp_path):
    torch.save([torch.zeros(3)], tmp_path / "list.pt")
    with pytest.raises(PointSDError, match="list.pt.*not a state dict"):
        load_state_file(tmp_path / "list.pt")
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, tmp_path / "meta.pt")
    with pytest.raises(PointSDError, match="meta.pt.*not a state dict"):
        load_pretrained(PointTransformer(BackboneConfig(trans_dim=48, depth=1, num_heads=2)), tmp_path / "meta.pt")


def test_truncated_file_refused(tiny, tmp_path):
    save_backbone(PointTransformer(BackboneConfig(**tiny)), tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "cut.safetensors").write_bytes((tmp_path / "full.safetensors").read_bytes()[:100])
    for name in ["cut.pt", "cut.safetensors"]:
        with pytest.raises(PointSDError, match=f"{name}.*unreadable or truncated"):
            load_state_file(tmp_path / name)


class _Payload:
    """Pickling this object runs code on load (a shell command)."""

    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_pickle_with_code_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"cls_token": torch.zeros(1, 1, 48), "x": _Payload()}, tmp_path / "evil.pt")
    with open(tmp_path / "evil.pth", "wb") as fh:
        pickle.dump({"x": _Payload()}, fh)
    for name in ["evil.pt", "evil.pth"]:
        with pytest.raises(PointSDError, match=f"{name}.*refused"):
            load_pretrained(PointTransformer(BackboneConfig(trans_dim=48, depth=1, num_heads=2)), tmp_path / name)
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


def test_missing_file(tmp_path):
    with pytest.raises(PointSDError, match="nope.pt"):
        load_state_file(tmp_path / "nope.pt")


def test_compiled_model_is_looked_through(tiny, points, tmp_path):
    source = _trained_backbone(tiny, points)
    save_backbone(torch.compile(source), tmp_path / "c.pt")
    assert set(load_state_file(tmp_path / "c.pt")) == set(source.state_dict())
    target = PointTransformer(BackboneConfig(**tiny)).eval()
    report = load_pretrained(torch.compile(target), tmp_path / "c.pt")
    assert report.missing == [] and report.loaded == len(source.state_dict())
    assert torch.equal(target.reduce_dim.weight, source.reduce_dim.weight)



def _point_mae_checkpoint(mae_kwargs: dict, points: torch.Tensor) -> dict:
    """A Point-MAE pre-training checkpoint: encoder straight to trans_dim (no reduce_dim), no cls token,
    keys under ``base_model`` with ``module.MAE_encoder.``, plus decoder keys."""
    encoder = _trained_backbone(mae_kwargs, points)
    state = {f"module.MAE_encoder.{k}": v for k, v in encoder.state_dict().items() if not k.startswith("cls_")}
    state["module.MAE_decoder.blocks.blocks.0.norm1.weight"] = torch.ones(mae_kwargs["trans_dim"])
    state["module.mask_token"] = torch.zeros(1, 1, mae_kwargs["trans_dim"])
    return {"base_model": state, "epoch": 300}


def test_point_mae_layout_loads_without_reduce_dim(tiny, points):
    mae = dict(tiny, encoder_dims=tiny["trans_dim"], reduce_dim=False)
    target = PointTransformerClassifier(4, BackboneConfig(**mae)).eval()
    assert not any(k.startswith("reduce_dim.") for k in target.state_dict())
    ckpt = _point_mae_checkpoint(mae, points)
    report = load_pretrained(target, ckpt)
    assert report.mismatched == []
    assert set(report.unexpected) == {"MAE_decoder.blocks.blocks.0.norm1.weight", "mask_token"}
    assert {k for k in report.missing if not k.startswith("cls_head_finetune.")} == {"cls_token", "cls_pos"}
    assert torch.equal(target.encoder.second_conv[3].weight,
                       ckpt["base_model"]["module.MAE_encoder.encoder.second_conv.3.weight"])


@pytest.mark.parametrize("model_encoder_dims", [32, 48], ids=["widths-differ", "widths-equal"])
def test_point_mae_layout_into_reduce_dim_model_is_refused(tiny, points, model_encoder_dims):
    """Also when the shapes happen to fit: a random reduce_dim between pre-trained layers is no load."""
    mae = dict(tiny, encoder_dims=tiny["trans_dim"], reduce_dim=False)
    model = PointTransformerClassifier(4, BackboneConfig(**dict(tiny, encoder_dims=model_encoder_dims)))
    with pytest.raises(PointSDError, match=rf"no reduce_dim.*--no-reduce-dim --encoder-dims {tiny['trans_dim']}"):
        load_pretrained(model, _point_mae_checkpoint(mae, points))


def test_reduce_dim_checkpoint_into_point_mae_layout_is_refused(tiny, points):
    mae = dict(tiny, encoder_dims=tiny["trans_dim"], reduce_dim=False)
    ckpt = _trained_backbone(dict(tiny, encoder_dims=tiny["trans_dim"]), points).state_dict()
    with pytest.raises(PointSDError, match="drop --no-reduce-dim"):
        load_pretrained(PointTransformerClassifier(4, BackboneConfig(**mae)), ckpt)


def test_without_reduce_dim_encoder_must_match_width(tiny):
    with pytest.raises(PointSDError, match="encoder_dims == trans_dim, got encoder_dims 32 and trans_dim 48"):
        PointTransformer(BackboneConfig(**dict(tiny, reduce_dim=False)))
