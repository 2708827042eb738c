"""Metric functions against hand-computed cases; the honest split."""

import numpy as np
import pytest
import torch

from pointsd.errors import PointSDError
from pointsd.train import metrics
from pointsd.train.splits import stratified_split


def test_overall_and_per_class_accuracy():
    pred = torch.tensor([0, 1, 1, 2, 2, 0])
    target = torch.tensor([0, 1, 2, 2, 2, 1])
    assert metrics.overall_accuracy(pred, target) == pytest.approx(100 * 4 / 6)
    per_class = metrics.per_class_accuracy(pred, target, ["a", "b", "c", "d"])
    # class a: 1/1, b: 1/2, c: 2/3, d absent
    assert per_class == pytest.approx({"a": 100.0, "b": 50.0, "c": 200 / 3})
    assert metrics.mean_class_accuracy(per_class) == pytest.approx((100 + 50 + 200 / 3) / 3)


def test_accuracy_rejects_mismatched_shapes():
    with pytest.raises(PointSDError):
        metrics.overall_accuracy(torch.zeros(3), torch.zeros(4))


def test_voting_averages_logits_and_can_flip_a_prediction():
    # vote 1 prefers class 0 slightly, vote 2 prefers class 1 strongly → mean picks class 1
    logits = torch.tensor([[[1.0, 0.9]], [[0.0, 2.0]]])
    voted = metrics.vote_logits(logits)
    assert torch.allclose(voted, torch.tensor([[0.5, 1.45]]))
    assert voted.argmax(1).item() == 1
    assert logits[0].argmax(1).item() == 0


def test_shape_iou_with_absent_part_counts_one():
    parts = [4, 5, 6]
    gt = torch.tensor([4, 4, 5, 5])
    pred = torch.tensor([4, 5, 5, 5])
    # part 4: inter 1, union 2 → 0.5; part 5: inter 2, union 3 → 2/3; part 6 absent in both → 1
    assert metrics.shape_part_iou(pred, gt, parts) == pytest.approx(100 * (0.5 + 2 / 3 + 1) / 3)
    # part predicted but not in gt → IoU 0 for that part
    assert metrics.shape_part_iou(torch.tensor([6, 6]), torch.tensor([4, 4]), [4, 6]) == 0.0


def test_restrict_to_parts_ignores_other_categories():
    logits = torch.tensor([[9.0, 1.0, 2.0], [9.0, 3.0, 2.0]])
    assert metrics.restrict_to_parts(logits, [1, 2]).tolist() == [2, 1]


def test_miou_summary_class_vs_instance():
    ious = [100.0, 50.0, 80.0]
    cats = [0, 0, 1]
    out = metrics.miou_summary(ious, cats, ["plane", "bag"])
    assert out["instance_miou"] == pytest.approx(230 / 3)
    assert out["class_miou"] == pytest.approx((75 + 80) / 2)
    assert out["per_category"] == {"plane": 75.0, "bag": 80.0}


def test_fold_aggregation_population_std():
    recs = [{"way": 5, "shot": 10, "fold": f, "test": {"overall_acc": a}} for f, a in enumerate([90.0, 100.0])]
    recs.append({"way": 10, "shot": 20, "fold": 0, "test": {"overall_acc": 80.0}})
    out = metrics.aggregate_folds(recs)
    assert out["5w10s"]["mean"] == pytest.approx(95.0)
    assert out["5w10s"]["std"] == pytest.approx(5.0)  # ddof=0
    assert out["5w10s"]["n_folds"] == 2
    assert out["10w20s"]["std"] == 0.0
    with pytest.raises(PointSDError, match="twice"):
        metrics.aggregate_folds(recs + [recs[0]])


def test_seed_aggregation_dotted_keys():
    recs = [{"test": {"overall_acc": 90.0}, "last_epoch_acc": 88.0},
            {"test": {"overall_acc": 94.0}, "last_epoch_acc": 90.0}]
    out = metrics.aggregate_seeds(recs, ["test.overall_acc", "last_epoch_acc"])
    assert out["test.overall_acc"] == {"mean": 92.0, "std": 2.0, "n": 2}
    assert out["last_epoch_acc"]["mean"] == 89.0
    with pytest.raises(PointSDError, match="voting_acc"):
        metrics.aggregate_seeds(recs, ["test.voting_acc"])


def test_stratified_split_disjoint_stratified_seeded():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    tr, va = stratified_split(labels, 0.2, seed=3)
    assert set(tr).isdisjoint(va) and len(tr) + len(va) == labels.size
    assert np.bincount(labels[va]).tolist() == [2, 4, 6, 8]
    _, va2 = stratified_split(labels, 0.2, seed=3)
    assert np.array_equal(va, va2)
    assert not np.array_equal(va, stratified_split(labels, 0.2, seed=4)[1])
    with pytest.raises(PointSDError):
        stratified_split(labels, 1.5, seed=0)


def test_honest_split_keeps_every_class_when_the_fraction_is_too_small() -> None:
    from pointsd.train.splits import stratified_split

    labels = np.repeat(np.arange(40), 6)  # 240 samples: 10 % would be 24 < 40 classes
    train_idx, val_idx = stratified_split(labels, 0.1, seed=0)
    assert set(labels[val_idx]) == set(range(40)) and set(labels[train_idx]) == set(range(40))
    assert not set(train_idx) & set(val_idx) and len(train_idx) + len(val_idx) == 240


def test_majority_rate_is_the_most_frequent_label_share():
    assert metrics.majority_rate(torch.tensor([0, 1, 1, 2])) == pytest.approx(50.0)
    with pytest.raises(metrics.PointSDError):
        metrics.majority_rate(torch.tensor([], dtype=torch.long))
    assert metrics.majority_rate(torch.arange(15)) == pytest.approx(100 / 15)
