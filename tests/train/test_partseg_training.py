"""ShapeNetPart: one epoch through the CLI on a tiny tree in the official layout; the evaluation
(restriction to the category's parts, absent-part rule, class vs instance mIoU) against a hand count."""

import json

import numpy as np
import pytest
import torch

from pointsd.cli import main as cli_main
from pointsd.train.partseg import CATEGORIES, EvalSet, evaluate_miou
from tests.cli_flags import PARTSEG

SYNSETS = {"Bag": ("02773838", [4, 5]), "Mug": ("03797390", [36, 37])}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "shapenetcore_partanno_segmentation_benchmark_v0_normal"
    rng = np.random.default_rng(0)
    (root / "train_test_split").mkdir(parents=True)
    (root / "synsetoffset2category.txt").write_text("".join(f"{c}\t{s}\n" for c, (s, _) in SYNSETS.items()))
    splits = {"train": [], "val": [], "test": []}
    for cat, (synset, parts) in SYNSETS.items():
        (root / synset).mkdir()
        for i in range(8):
            xyz = rng.uniform(-1, 1, size=(120, 3))
            axis = 1 if cat == "Bag" else 0
            part = np.where(xyz[:, axis] > 0, parts[0], parts[1])
            rows = np.concatenate([xyz, np.zeros_like(xyz), part[:, None]], 1)
            np.savetxt(root / synset / f"m{i}.txt", rows, fmt="%.5f")
            splits["train" if i < 4 else "val" if i < 6 else "test"].append(f"shape_data/{synset}/m{i}")
    for name, entries in splits.items():
        (root / "train_test_split" / f"shuffled_{name}_file_list.json").write_text(json.dumps(entries))
    return root.parent


@pytest.mark.parametrize(("protocol", "depth"), [("paper", 3), ("honest", 2)])
def test_one_epoch_through_the_cli(root, tmp_path, protocol, depth):
    out = tmp_path / "run"
    argv = ["partseg", *PARTSEG, "--data-root", str(root), "--out", str(out), "--protocol", protocol, "--epochs", "1",
            "--batch-size", "4", "--npoints", "64", "--num-group", "8", "--group-size", "8", "--trans-dim", "32",
            "--depth", str(depth), "--num-heads", "2", "--encoder-dims", "32", "--warmup-epochs", "0", "--no-progress"]
    assert cli_main(argv) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["task"] == "partseg" and m["protocol"] == protocol and m["selected_epoch"] == 1
    assert set(m["test"]["per_category"]) == {"Bag", "Mug"}
    assert 0 <= m["test"]["instance_miou"] <= 100 and 0 <= m["test"]["class_miou"] <= 100
    assert m["num_test"] == 4 and m["num_train"] == (8 if protocol == "honest" else 12)
    assert ("val_instance_miou" in m) == (protocol == "honest")


class PreferPart5(torch.nn.Module):
    """Logits: part 5 highest everywhere, all others equal (so Mug shapes get their first part, 36)."""

    def forward(self, points, category):
        logits = torch.zeros(points.shape[0], points.shape[1], 50)
        logits[..., 5] = 1.0
        return logits


def test_evaluation_restricts_parts_and_counts_absent_parts_as_one():
    bag, mug = CATEGORIES.index("Bag"), CATEGORIES.index("Mug")
    parts = torch.tensor([
        [4, 4, 5, 5],      # Bag: pred all 5 → part 4 IoU 0, part 5 IoU 2/4 → 25
        [5, 5, 5, 5],      # Bag: part 4 absent in pred and gt → 1, part 5 IoU 1 → 100
        [36, 37, 37, 37],  # Mug: pred all 36 → part 36 IoU 1/4, part 37 IoU 0 → 12.5
    ])
    split = EvalSet(torch.zeros(3, 4, 3), torch.tensor([bag, bag, mug]), parts)
    out = evaluate_miou(PreferPart5(), split, torch.device("cpu"), batch_size=2)
    assert out["instance_miou"] == pytest.approx((25 + 100 + 12.5) / 3)
    assert out["per_category"] == pytest.approx({"Bag": 62.5, "Mug": 12.5})
    assert out["class_miou"] == pytest.approx((62.5 + 12.5) / 2)
