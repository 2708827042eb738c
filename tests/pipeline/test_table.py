"""The results table: rows, mean ± std over seeds and folds, provenance columns, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pointsd.cli import main
from pointsd.errors import PointSDError
from pointsd.results.table import ROWS, SYNTHETIC_NOTE, build_rows, read_metrics


def _meta(seed: int = 0, data_profile: str = "synthetic") -> dict:
    return {"profile": "default", "protocol": "honest", "seed": seed, "data_profile": data_profile}


def _write(tmp: Path, name: str, obj: dict) -> Path:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(obj))
    return path


def _all_metrics(tmp: Path) -> list[Path]:
    files = []
    for i, task in enumerate(["scan_objbg", "scan_objonly", "scan_hardest", "modelnet40"]):
        rec = {"task": task, "meta": _meta(), "init": "stage2", "protocol": "honest",
               "test": {"overall_acc": 50.0 + i}, "chance": {"overall_acc": 100 / 15}}
        if task == "modelnet40":
            rec["test"]["voting_acc"] = 61.0
        files.append(_write(tmp, task, rec))
    files.append(_write(tmp, "mn10", {"task": "modelnet10", "meta": _meta(data_profile="real"),
                                      "init": "stage2", "protocol": "honest", "test": {"overall_acc": 88.5},
                                      "chance": {"overall_acc": 11.0}}))
    settings = {f"{w}w{s}s": {"way": w, "shot": s, "mean": 70.0, "std": 5.0, "n_folds": 2,
                              "folds": {"0": 65.0, "1": 75.0}}
                for w in (5, 10) for s in (10, 20)}
    files.append(_write(tmp, "fewshot", {"settings": settings, "meta": _meta(), "init": "stage2",
                                         "protocol": "honest"}))
    files.append(_write(tmp, "partseg", {"task": "partseg", "meta": _meta(), "init": "stage2",
                                         "protocol": "honest",
                                         "test": {"class_miou": 40.0, "instance_miou": 45.0},
                                         "chance": {"class_miou": 20.0, "instance_miou": 22.5}}))
    files.append(_write(tmp, "probe", {"task": "probe", "meta": _meta(), "init": "stage2", "protocol": "honest",
                                       "test": {"overall_acc": 80.0}, "chance": {"overall_acc": 2.5}}))
    return files


def test_every_paper_cell_gets_a_row(tmp_path):
    rows = build_rows(read_metrics(p) for p in _all_metrics(tmp_path))
    assert [(r.benchmark, r.metric) for r in rows] == [(s.benchmark, s.metric) for s in ROWS]
    by_name = {(r.benchmark, r.metric): r for r in rows}
    assert by_name[("ScanObjectNN PB_T50_RS", "OA (%)")].ours == "52.00"
    assert by_name[("ModelNet40 + voting", "OA (%)")].mean == 61.0
    assert by_name[("ModelNet40 few-shot 10w20s", "OA (%)")].ours == "70.00 ± 5.00"
    assert by_name[("ModelNet40 few-shot 10w20s", "OA (%)")].paper == "95.9 ± 2.6"
    assert by_name[("ShapeNetPart", "Inst.mIoU (%)")].mean == 45.0
    mn10 = by_name[("ModelNet10 (real data)", "OA (%)")]
    assert mn10.data_profile == "real" and SYNTHETIC_NOTE not in mn10.note
    assert by_name[("ScanObjectNN OBJ_BG", "OA (%)")].note == SYNTHETIC_NOTE


def test_seeds_are_reported_as_mean_and_std(tmp_path):
    files = _all_metrics(tmp_path)
    files.append(_write(tmp_path, "objbg_seed1", {"task": "scan_objbg", "meta": _meta(seed=1), "init": "stage2",
                                                  "protocol": "honest", "test": {"overall_acc": 54.0},
                                                  "chance": {"overall_acc": 100 / 15}}))
    row = build_rows(read_metrics(p) for p in files)[0]
    assert (row.mean, row.std, row.n) == (52.0, 2.0, 2)
    assert row.ours == "52.00 ± 2.00" and row.spread_over == "seeds 0, 1"


def test_missing_row_and_mixed_protocols_are_errors(tmp_path):
    files = _all_metrics(tmp_path)
    with pytest.raises(PointSDError, match="task 'probe'"):
        build_rows(read_metrics(p) for p in files[:-1])
    files.append(_write(tmp_path, "objbg_paper", {"task": "scan_objbg", "meta": _meta(seed=1), "init": "stage2",
                                                  "protocol": "paper", "test": {"overall_acc": 54.0}}))
    with pytest.raises(PointSDError, match="disagree on protocol"):
        build_rows(read_metrics(p) for p in files)


def test_cli_writes_markdown_and_json(tmp_path, capsys):
    out = tmp_path / "results" / "table.md"
    code = main(["report", "table", "--metrics", *map(str, _all_metrics(tmp_path)), "--out", str(out)])
    assert code == 0
    text = out.read_text()
    assert text.count("\n| ") == len(ROWS) + 1  # header + one line per row
    assert "shows learning, not the paper's accuracy" in text
    assert "| ScanObjectNN OBJ_BG | OA (%) | 50.00 | 6.67 | — | 95.18 |" in text
    table = json.loads(out.with_suffix(".json").read_text())
    assert len(table["rows"]) == len(ROWS) and len(table["sources"]) == 8


def test_cli_names_an_unreadable_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["report", "table", "--metrics", str(bad), "--out", str(tmp_path / "t.md")]) == 2
    assert str(bad) in capsys.readouterr().err


def test_chance_column_comes_from_the_runs(tmp_path):
    rows = {(r.benchmark, r.metric): r for r in build_rows(read_metrics(p) for p in _all_metrics(tmp_path))}
    assert rows[("ScanObjectNN OBJ_BG", "OA (%)")].chance == pytest.approx(100 / 15)
    assert rows[("ModelNet40 few-shot 10w20s", "OA (%)")].chance == 10.0
    assert rows[("ModelNet40 few-shot 5w10s", "OA (%)")].chance == 20.0
    assert rows[("ShapeNetPart", "Inst.mIoU (%)")].chance == 22.5
    assert rows[("ShapeNetPart", "Cls.mIoU (%)")].chance == 20.0


def test_scratch_runs_fill_the_scratch_column_of_their_task(tmp_path):
    scratch = [read_metrics(_write(tmp_path, f"scratch{seed}", {
        "task": "scan_objbg", "meta": _meta(seed=seed), "init": "scratch", "protocol": "honest",
        "test": {"overall_acc": 30.0 + 4 * seed}, "chance": {"overall_acc": 100 / 15}})) for seed in (0, 1)]
    rows = build_rows([read_metrics(p) for p in _all_metrics(tmp_path)], scratch)
    assert rows[0].scratch == "32.00 ± 2.00" and rows[0].scratch_mean == 32.0
    assert all(r.scratch == "—" and r.scratch_mean is None for r in rows[1:])


def test_a_benchmark_not_run_shows_its_reason(tmp_path, capsys):
    files = [p for p in _all_metrics(tmp_path) if p.stem != "mn10"]
    run = tmp_path / "runs" / "modelnet10"
    assert main(["report", "not-run", "--task", "modelnet10", "--reason", "no data at /nowhere",
                 "--hint", "see README", "--out", str(run)]) == 0
    out = tmp_path / "table.md"
    assert main(["report", "table", "--metrics", *map(str, files), str(run / "metrics.json"), "--out", str(out)]) == 0
    row = next(r for r in json.loads(out.with_suffix(".json").read_text())["rows"]
               if r["benchmark"] == "ModelNet10 (real data)")
    assert row["benchmark"] == "ModelNet10 (real data)" and row["mean"] is None
    assert row["ours"] == "not run: no data at /nowhere" and row["note"] == "see README"
    assert "| ModelNet10 (real data) | OA (%) | not run: no data at /nowhere | — |" in out.read_text()
    record = json.loads((run / "metrics.json").read_text())
    record["reason"] = ""
    (run / "metrics.json").write_text(json.dumps(record))
    assert main(["report", "table", "--metrics", *map(str, files), str(run / "metrics.json"), "--out", str(out)]) == 2
    assert "without a reason" in capsys.readouterr().err


def test_random_init_probes_fill_the_probe_rows_scratch_cell(tmp_path):
    randoms = [read_metrics(_write(tmp_path, f"random_seed{seed}", {
        "task": "probe", "meta": _meta(seed=seed), "init": "random", "protocol": "honest",
        "test": {"overall_acc": 60.0 + 10 * seed}, "chance": {"overall_acc": 2.5}})) for seed in (0, 1, 2)]
    rows = {(r.benchmark, r.metric): r for r in build_rows([read_metrics(p) for p in _all_metrics(tmp_path)], randoms)}
    probe = rows[("Linear probe, frozen (ModelNet40)", "OA (%)")]
    assert (probe.mean, probe.scratch_mean, probe.chance) == (80.0, 70.0, 2.5)
    assert probe.scratch.startswith("70.00 ± ")


def test_scratch_few_shot_summary_and_modelnet10_fill_their_rows(tmp_path):
    """The few-shot rows' Scratch cells are mean ± std over the scratch summary's folds; ModelNet10's from its
    scratch run; two scratch few-shot summaries are an error naming both."""
    settings = {f"{w}w{s}s": {"way": w, "shot": s, "mean": 40.0 + w + s, "std": 3.0, "n_folds": 2,
                              "folds": {"0": 37.0 + w + s, "1": 43.0 + w + s}}
                for w in (5, 10) for s in (10, 20)}
    summary = read_metrics(_write(tmp_path, "fewshot_scratch", {"settings": settings, "meta": _meta(),
                                                                "init": "scratch", "protocol": "honest"}))
    mn10 = read_metrics(_write(tmp_path, "mn10_scratch", {
        "task": "modelnet10", "meta": _meta(data_profile="real"), "init": "scratch", "protocol": "honest",
        "test": {"overall_acc": 81.0}, "chance": {"overall_acc": 11.0}}))
    records = [read_metrics(p) for p in _all_metrics(tmp_path)]
    rows = {r.benchmark: r for r in build_rows(records, [summary, mn10])}
    assert rows["ModelNet40 few-shot 10w20s"].scratch == "70.00 ± 3.00"
    assert rows["ModelNet40 few-shot 5w10s"].scratch_mean == 55.0
    assert rows["ModelNet10 (real data)"].scratch == "81.00"
    assert rows["ScanObjectNN OBJ_BG"].scratch == "—"
    with pytest.raises(PointSDError, match="more than one few-shot summary given: .*fewshot_scratch.json"):
        build_rows(records, [summary, summary])
