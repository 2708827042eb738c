"""Classification fine-tuning on tiny data in the official layouts: every task runs an epoch,
protocols select as stated, checkpoints load (or fail clearly), runs resume exactly."""

import json
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from pointsd.cli import main as cli_main
from pointsd.errors import PointSDError
from pointsd.models.backbone import PointTransformer
from pointsd.models.checkpoints import save_backbone
from pointsd.models.classifier import PointTransformerClassifier
from pointsd.models.config import BackboneConfig
from pointsd.train import finetune as ft
from pointsd.train import loop, supervised
from tests.cli_flags import FINETUNE

TINY = {"npoints": 64, "batch_size": 8, "eval_batch_size": 16, "warmup_epochs": 0, "lr": 0.01, "progress": False,
        "backbone": BackboneConfig(trans_dim=32, depth=1, num_heads=2, num_group=8, group_size=8, encoder_dims=32,
                                   drop_path_rate=0.0)}
TINY_FLAGS = [*FINETUNE, "--npoints", "64", "--num-group", "8", "--group-size", "8", "--batch-size", "8",
              "--eval-batch-size", "16", "--warmup-epochs", "0", "--trans-dim", "32", "--depth", "1",
              "--num-heads", "2", "--encoder-dims", "32", "--epochs", "1", "--no-progress", "--seed", "0"]


def blobs(n: int, classes: int, points: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class ``c``: a Gaussian blob stretched along axis ``c % 3`` (scale grows with ``c // 3``)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    clouds = rng.normal(size=(n, points, 3)) * 0.1
    for i, c in enumerate(labels):
        clouds[i, :, c % 3] *= 4 + 3 * (c // 3)
    return clouds.astype(np.float32), labels.astype(np.int64)


def write_h5(path: Path, n: int, classes: int, points: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data, label = blobs(n, classes, points, seed)
    with h5py.File(path, "w") as fh:
        fh["data"], fh["label"] = data, label


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A data root with ScanObjectNN (3 variants), ModelNet40 (.dat cache) and a ModelNet10-like h5 folder."""
    root = tmp_path_factory.mktemp("data")
    for folder, name in [("main_split", "{}_objectdataset.h5"), ("main_split_nobg", "{}_objectdataset.h5"),
                         ("main_split", "{}_objectdataset_augmentedrot_scale75.h5")]:
        for split, n, seed in [("training", 30, 1), ("test", 15, 2)]:
            write_h5(root / "ScanObjectNN" / folder / name.format(split), n, 15, 96, seed)
    mn = root / "ModelNet" / "modelnet40_normal_resampled"
    mn.mkdir(parents=True)
    (mn / "modelnet40_shape_names.txt").write_text("".join(f"c{i}\n" for i in range(40)))
    for split, n, seed in [("train", 80, 3), ("test", 40, 4)]:
        pts, lab = blobs(n, 40, 8192, seed)
        clouds = [np.concatenate([p, np.zeros_like(p)], 1) for p in pts]
        (mn / f"modelnet40_{split}_8192pts_fps.dat").write_bytes(
            pickle.dumps([clouds, [np.array([l], np.int32) for l in lab]]))
    mn10 = root / "modelnet10"
    write_h5(mn10 / "train.h5", 40, 4, 80, 5)
    write_h5(mn10 / "test.h5", 20, 4, 80, 6)
    (mn10 / "shape_names.txt").write_text("a\nb\nc\nd\n")
    return root


def cfg(out: Path, task: str = "modelnet10", **kw) -> ft.FinetuneConfig:
    settings = {"augment": "scale_translate", "votes": 0, "epochs": 1, "optimizer": "sgd", "weight_decay": 1e-4,
                "grad_clip": 10.0, "protocol": "paper"}
    return ft.FinetuneConfig(task=task, out_dir=out, **{**settings, **TINY, **kw})


@pytest.mark.parametrize("task", ["scan_objbg", "scan_objonly", "scan_hardest", "modelnet40", "modelnet10"])
def test_one_epoch_of_every_task_through_the_cli(task, root, tmp_path, capsys):
    data_root = root / "modelnet10" if task == "modelnet10" else root
    out = tmp_path / task
    argv = ["finetune", "--task", task, "--data-root", str(data_root), "--out", str(out), *TINY_FLAGS]
    if task == "modelnet40":
        argv += ["--votes", "2", "--protocol", "honest", "--val-fraction", "0.5"]
    assert cli_main(argv) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["task"] == task and m["init"] == "scratch" and m["meta"]["data_profile"] == "synthetic"
    assert 0 <= m["test"]["overall_acc"] <= 100 and m["selected_epoch"] == 1 and m["last_epoch"] == 1
    assert m["test"]["per_class_acc"] and "command" in m and (out / "best.pt").is_file()
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("val_acc" in x or "test_acc" in x for x in lines)
    if task == "modelnet40":
        assert m["protocol"] == "honest" and "val_acc" in m and m["test"]["votes"] == 2
        assert 0 <= m["test"]["voting_acc"] <= 100 and m["num_val"] == 40
    else:
        assert m["protocol"] == "paper" and "TEST set" in m["selection"] and "voting_acc" not in m["test"]


def test_training_learns_and_paper_protocol_reports_best_test_epoch(root, tmp_path):
    data = ft.load_task_data("modelnet10", root / "modelnet10")
    m = ft.run_finetune(cfg(tmp_path, epochs=8, batch_size=4, optimizer="adamw", lr=1e-2, weight_decay=0.0,
                            augment="none"), data)
    assert m["test"]["overall_acc"] >= 50.0  # 4 separable classes, chance is 25
    evals = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines() if "test_acc" in x]
    top = max(r["test_acc"] for r in evals)
    best = [r for r in evals if r["test_acc"] == top][-1]  # ties: the later epoch (pointsd/train/loop.py)
    assert m["selected_epoch"] == best["epoch"]
    assert m["test"]["overall_acc"] == pytest.approx(best["test_acc"])


def test_honest_selection_never_looks_at_the_test_set(root, tmp_path):
    data = ft.load_task_data("modelnet10", root / "modelnet10")
    shuffled = ft.load_task_data("modelnet10", root / "modelnet10")
    shuffled.test.labels = np.roll(shuffled.test.labels, 1)  # different test labels, same train
    runs = [ft.run_finetune(cfg(tmp_path / name, epochs=2, protocol="honest", val_fraction=0.25), d)
            for name, d in [("a", data), ("b", shuffled)]]
    assert runs[0]["selected_epoch"] == runs[1]["selected_epoch"]
    assert runs[0]["val_acc"] == runs[1]["val_acc"]
    assert runs[0]["num_train"] + runs[0]["num_val"] == len(data.train) and runs[0]["num_val"] == 10
    a = torch.load(tmp_path / "a" / "best.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_pretrained_checkpoint_changes_initial_weights(tmp_path):
    c = cfg(tmp_path)
    donor = PointTransformerClassifier(4, c.backbone)
    for p in donor.parameters():
        torch.nn.init.normal_(p)
    save_backbone(donor, tmp_path / "ckpt.pt")
    model = PointTransformerClassifier(4, c.backbone)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = supervised.initialise(model, str(tmp_path / "ckpt.pt"))
    after = model.state_dict()
    assert report["loaded"] > 0 and report["mismatched"] == 0
    assert torch.equal(after["blocks.blocks.0.attn.qkv.weight"], donor.state_dict()["blocks.blocks.0.attn.qkv.weight"])
    assert not torch.equal(after["reduce_dim.weight"], before["reduce_dim.weight"])
    assert torch.equal(after["cls_head_finetune.8.weight"], before["cls_head_finetune.8.weight"])  # head kept


def test_scratch_init_pytorch_is_where_pretraining_starts(tmp_path):
    """``scratch_init="pytorch"``: the trunk holds exactly a fresh PointTransformer's weights (what the stage-2
    student starts from, same RNG state), the head keeps its own; ``point_mae`` leaves the model as built
    (truncated normal, std 0.02: far narrower than PyTorch's default for these widths)."""
    c = cfg(tmp_path)
    torch.manual_seed(3)
    model = PointTransformerClassifier(4, c.backbone)
    head = model.cls_head_finetune[8].weight.clone()
    rng = torch.get_rng_state()
    report = supervised.initialise(model, "scratch", "pytorch")
    torch.set_rng_state(rng)
    fresh = PointTransformer(c.backbone).state_dict()
    assert report == {"init": "scratch", "scratch_init": "pytorch"}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in fresh.items())
    assert torch.equal(model.cls_head_finetune[8].weight, head)
    built = PointTransformerClassifier(4, c.backbone)
    before = {k: v.clone() for k, v in built.state_dict().items()}
    supervised.initialise(built, "scratch", "point_mae")
    assert all(torch.equal(built.state_dict()[k], v) for k, v in before.items())
    assert before["reduce_dim.weight"].std() < 0.5 * fresh["reduce_dim.weight"].std()


def test_bad_scratch_init_is_a_clear_error(tmp_path):
    with pytest.raises(PointSDError, match=r"scratch_init must be one of pytorch\|point_mae"):
        ft.FinetuneConfig(**{**vars(cfg(tmp_path)), "scratch_init": "kaiming"}).validate()


def test_checkpoint_that_does_not_fit_is_a_clear_error(root, tmp_path):
    wide = PointTransformerClassifier(4, BackboneConfig(trans_dim=48, depth=1, num_heads=2, num_group=8, group_size=8,
                                                        encoder_dims=32))
    save_backbone(wide, tmp_path / "wide.pt")
    data = ft.load_task_data("modelnet10", root / "modelnet10")
    with pytest.raises(PointSDError, match="reduce_dim.weight"):
        ft.run_finetune(cfg(tmp_path / "run", init=str(tmp_path / "wide.pt")), data)
    with pytest.raises(PointSDError, match="missing.pt"):
        ft.run_finetune(cfg(tmp_path / "run", init=str(tmp_path / "missing.pt")), data)


def test_point_mae_checkpoint_through_the_cli(root, tmp_path):
    """``--no-reduce-dim`` builds Point-MAE's layout, so a ``{"base_model": {"module.MAE_encoder.*"}}`` file loads."""
    mae = BackboneConfig(trans_dim=32, depth=1, num_heads=2, num_group=8, group_size=8, encoder_dims=32,
                         reduce_dim=False).build()
    state = {f"module.MAE_encoder.{k}": v for k, v in mae.state_dict().items() if not k.startswith("cls_")}
    torch.save({"base_model": state, "epoch": 300}, tmp_path / "pointmae.pth")
    argv = ["finetune", "--task", "modelnet10", "--data-root", str(root / "modelnet10"), *TINY_FLAGS, "--init",
            str(tmp_path / "pointmae.pth")]
    assert cli_main([*argv, "--out", str(tmp_path / "run"), "--no-reduce-dim"]) == 0
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["config"]["backbone"]["reduce_dim"] is False
    assert m["init_report"]["loaded"] == len(state) and m["init_report"]["mismatched"] == 0
    assert cli_main([*argv, "--out", str(tmp_path / "refused")]) == 2
    assert not (tmp_path / "refused" / "metrics.json").exists()


def test_resume_after_interruption_matches_an_uninterrupted_run(root, tmp_path, monkeypatch):
    data = ft.load_task_data("modelnet10", root / "modelnet10")
    whole = ft.run_finetune(cfg(tmp_path / "whole", epochs=2), data)
    save = loop._save_state

    def killed_after_first_checkpoint(path, state, *args):
        save(path, state, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_save_state", killed_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        ft.run_finetune(cfg(tmp_path / "split", epochs=2), data)
    monkeypatch.undo()
    assert not (tmp_path / "split" / "metrics.json").exists()
    resumed = ft.run_finetune(cfg(tmp_path / "split", epochs=2), data)
    assert resumed["last_epoch"] == 2
    assert resumed["last_epoch_acc"] == whole["last_epoch_acc"]
    a = torch.load(tmp_path / "whole" / "state" / "last.pt", weights_only=True)["modules"]["model"]
    b = torch.load(tmp_path / "split" / "state" / "last.pt", weights_only=True)["modules"]["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_flags_are_clear_errors(root, tmp_path):
    data = ft.load_task_data("modelnet10", root / "modelnet10")
    with pytest.raises(PointSDError, match="protocol"):
        ft.run_finetune(cfg(tmp_path, protocol="cheat"), data)
    with pytest.raises(PointSDError, match="npoints"):
        ft.run_finetune(cfg(tmp_path, npoints=128), data)  # clouds have 80 points
    with pytest.raises(PointSDError, match="data-root"):
        ft.load_task_data("scan_objbg", None)


def test_finetune_aggregate_over_seeds(tmp_path, capsys):
    paths = []
    for seed, acc in [(0, 90.0), (1, 94.0)]:
        rec = {"task": "modelnet10", "protocol": "honest", "init": "scratch", "meta": {"seed": seed},
               "test": {"overall_acc": acc, "mean_class_acc": acc - 1}, "last_epoch_acc": acc - 2}
        paths.append(tmp_path / f"{seed}.json")
        paths[-1].write_text(json.dumps(rec))
    assert cli_main(["finetune-aggregate", "--inputs", *map(str, paths), "--out", str(tmp_path / "agg.json")]) == 0
    agg = json.loads((tmp_path / "agg.json").read_text())
    assert agg["stats"]["test.overall_acc"] == {"mean": 92.0, "std": 2.0, "n": 2}
    assert agg["seeds"] == [0, 1]


class _RecordingModel(torch.nn.Module):
    """Stands in for a classifier: records every input ``(B,N,3)``, returns 2 logits per cloud."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """Record ``points`` and return their mean x and y as logits ``(B,2)``."""
        self.inputs.append(points.clone())
        return torch.stack([points[..., 0].mean(1), points[..., 1].mean(1)], 1)


def _rows_of(cloud: torch.Tensor, pool: torch.Tensor) -> bool:
    """Whether every point of ``cloud (N,3)`` is exactly one of the points of ``pool (M,3)``."""
    return bool((cloud[:, None, :] == pool[None, :, :]).all(-1).any(1).all())


@pytest.mark.parametrize("augment", ["none", "scale_translate", "scale_rotate"])
def test_voting_sees_the_runs_training_augmentation(augment):
    """A run trained without augmentation votes over plain random subsets of the FPS pool (no
    scale/translate the model never saw); with an augmentation, every vote gets exactly that one."""
    pool = torch.rand(6, 40, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    model = _RecordingModel()
    logits = ft.voting_logits(loop.make_accelerator("cpu"), model, pool, npoints=16, votes=3, batch_size=4, seed=0,
                              augment=augment)
    assert logits.shape == (6, 2)
    votes = torch.cat(model.inputs).reshape(3, 6, 16, 3)
    plain = [_rows_of(votes[v, i], pool[i]) for v in range(3) for i in range(6)]
    assert all(plain) if augment == "none" else not any(plain)


def test_run_votes_with_its_own_augmentation(root, tmp_path, monkeypatch):
    """run_finetune hands its --augment to voting (it used to vote with scale/translate regardless)."""
    seen: list[str] = []
    real = ft.voting_logits

    def spy(*args: object, **kwargs: object) -> torch.Tensor:
        seen.append(kwargs.get("augment", args[7] if len(args) > 7 else "default"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ft, "voting_logits", spy)
    data = ft.load_task_data("modelnet10", root / "modelnet10")
    m = ft.run_finetune(cfg(tmp_path, votes=2, augment="none"), data)
    assert seen == ["none"] and m["test"]["votes"] == 2
