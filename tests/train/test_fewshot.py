"""Few-shot: one fold through the CLI on a tiny pickle in the official layout, then aggregation."""

import json
import pickle

import numpy as np
import pytest

from pointsd.cli import main as cli_main
from tests.cli_flags import CLASSIFICATION

TINY_FLAGS = [*CLASSIFICATION, "--npoints", "64", "--num-group", "8", "--group-size", "8", "--batch-size", "8",
              "--eval-batch-size", "16", "--warmup-epochs", "0", "--trans-dim", "32", "--depth", "1",
              "--num-heads", "2", "--encoder-dims", "32", "--epochs", "1", "--no-progress"]


def fold(way: int, shot: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)

    def entries(n_per_class: int) -> list:
        out = []
        for c in range(way):
            for _ in range(n_per_class):
                pts = rng.normal(size=(100, 3)).astype(np.float32) * 0.1
                pts[:, c % 3] *= 4 + 3 * (c // 3)
                out.append((pts, np.int64(c), f"shape_{c}"))
        return out

    return {"train": entries(shot), "test": entries(3)}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for f in range(2):
        path = root / "ModelNetFewshot" / "5way2shot" / f"{f}.pkl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(fold(5, 2, f)))
    return root


@pytest.mark.parametrize("protocol", ["paper", "honest"])
def test_two_folds_and_aggregate(root, tmp_path, protocol):
    outs = []
    for f in range(2):
        out = tmp_path / "5w2s" / f"fold{f}"
        argv = ["fewshot", *TINY_FLAGS, "--data-root", str(root), "--way", "5", "--shot", "2", "--fold", str(f),
                "--out", str(out), "--protocol", protocol, "--val-fraction", "0.5", "--seed", str(f)]
        assert cli_main(argv) == 0
        m = json.loads((out / "metrics.json").read_text())
        assert (m["way"], m["shot"], m["fold"], m["task"]) == (5, 2, f, "fewshot")
        assert m["num_test"] == 15 and m["num_train"] + m["num_val"] == 10
        assert m["config"]["lr"] == 0.017 and m["config"]["warmup_epochs"] == 0  # the flags given, recorded
        outs.append(out / "metrics.json")
    agg_path = tmp_path / "agg.json"
    assert cli_main(["fewshot-aggregate", "--inputs", *map(str, outs), "--out", str(agg_path)]) == 0
    agg = json.loads(agg_path.read_text())["settings"]["5w2s"]
    accs = [json.loads(p.read_text())["test"]["overall_acc"] for p in outs]
    assert agg["n_folds"] == 2 and agg["mean"] == pytest.approx(np.mean(accs))
    assert agg["std"] == pytest.approx(np.std(accs))
    by_root = tmp_path / "by_root.json"
    assert cli_main(["fewshot-aggregate", "--root", str(tmp_path), "--ways", "5", "--shots", "2",
                     "--folds", "0", "1", "--out", str(by_root)]) == 0
    summary = json.loads(by_root.read_text())
    assert summary["settings"] == json.loads(agg_path.read_text())["settings"]
    assert summary["protocol"] == protocol and summary["meta"]["data_profile"] == "synthetic"


def test_missing_fold_is_a_clear_error(root, tmp_path, capsys):
    argv = ["fewshot", "--data-root", str(root), "--way", "5", "--shot", "2", "--fold", "7",
            "--out", str(tmp_path), *TINY_FLAGS]
    assert cli_main(argv) == 2
    assert "7.pkl" in capsys.readouterr().err
