"""The results table: every benchmark's metrics JSON → one row per cell of the paper's table.

Rows follow SPEC §4 (ScanObjectNN ×3, ModelNet40 with and without voting, few-shot ×4,
ShapeNetPart class / instance mIoU) plus the real ModelNet10 run and the linear probe of the frozen
backbone (its Scratch cell: the same architecture at random init, mean ± std over seeds). Several
files of one task (seeds) are reported as mean ± std over seeds; few-shot cells (ours and scratch)
are mean ± std over folds.

Beside our value: the chance level of the cell (the best constant prediction, recorded by each run:
majority class, ``1/way`` for few-shot's balanced test sets, the category's majority part for
ShapeNetPart) and, where given, the same task trained from scratch with the same budget. A metrics
file with ``"status": "not run"`` (a benchmark whose data is absent) fills its row with the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from pointsd.errors import PointSDError
from pointsd.train.metrics import aggregate_seeds
from pointsd.utils import json_io

SYNTHETIC_NOTE = "synthetic data: shows learning, not the paper's accuracy"
NOT_RUN = "not run"


@dataclass(frozen=True)
class RowSpec:
    """One cell of the paper's table: which metrics file (``task``) and which value in it."""

    benchmark: str
    metric: str
    task: str
    key: str
    paper: str
    chance_key: str = "chance.overall_acc"


ROWS: tuple[RowSpec, ...] = (
    RowSpec("ScanObjectNN OBJ_BG", "OA (%)", "scan_objbg", "test.overall_acc", "95.18"),
    RowSpec("ScanObjectNN OBJ_ONLY", "OA (%)", "scan_objonly", "test.overall_acc", "93.63"),
    RowSpec("ScanObjectNN PB_T50_RS", "OA (%)", "scan_hardest", "test.overall_acc", "90.08"),
    RowSpec("ModelNet40", "OA (%)", "modelnet40", "test.overall_acc", "—"),
    RowSpec("ModelNet40 + voting", "OA (%)", "modelnet40", "test.voting_acc", "93.7"),
    RowSpec("ModelNet40 few-shot 5w10s", "OA (%)", "fewshot", "5w10s", "97.7 ± 1.8"),
    RowSpec("ModelNet40 few-shot 5w20s", "OA (%)", "fewshot", "5w20s", "99.0 ± 0.9"),
    RowSpec("ModelNet40 few-shot 10w10s", "OA (%)", "fewshot", "10w10s", "93.8 ± 3.6"),
    RowSpec("ModelNet40 few-shot 10w20s", "OA (%)", "fewshot", "10w20s", "95.9 ± 2.6"),
    RowSpec("ShapeNetPart", "Cls.mIoU (%)", "partseg", "test.class_miou", "84.5", "chance.class_miou"),
    RowSpec("ShapeNetPart", "Inst.mIoU (%)", "partseg", "test.instance_miou", "86.1", "chance.instance_miou"),
    RowSpec("ModelNet10 (real data)", "OA (%)", "modelnet10", "test.overall_acc", "—"),
    RowSpec("Linear probe, frozen (ModelNet40)", "OA (%)", "probe", "test.overall_acc", "—"),
)


@dataclass(frozen=True)
class Row:
    """A filled row: our value (mean, std over ``n`` seeds or folds; ``None`` when not run) beside the
    chance level, the from-scratch value (``scratch_mean`` ``None`` when there is none) and the paper's."""

    benchmark: str
    metric: str
    ours: str
    mean: float | None
    std: float | None
    n: int
    spread_over: str
    chance: float | None
    scratch: str
    scratch_mean: float | None
    paper: str
    data_profile: str
    protocol: str
    init: str
    note: str


def read_metrics(path: str | Path) -> dict[str, Any]:
    """One metrics JSON, with its path recorded under ``_source``."""
    path = Path(path)
    record = json_io.read_json(path, "metrics file")
    if not isinstance(record, dict):
        raise PointSDError(f"metrics file {path} must hold a JSON object")
    record["_source"] = str(path)
    return record


def task_of(record: Mapping[str, Any]) -> str:
    """``fewshot`` for the few-shot summary (it has ``settings``), else the file's ``task``."""
    if "settings" in record:
        return "fewshot"
    if "task" not in record:
        raise PointSDError(f"metrics file {record.get('_source')} has no 'task'")
    return str(record["task"])


def _by_task(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        by_task.setdefault(task_of(record), []).append(record)
    return by_task


def build_rows(records: Iterable[Mapping[str, Any]], scratch: Iterable[Mapping[str, Any]] = ()) -> list[Row]:
    """Fill every :data:`ROWS` cell from ``records`` (``scratch``: from-scratch runs of some tasks);
    a cell without a metrics file is an error."""
    by_task, scratch_by_task = _by_task(records), _by_task(scratch)
    rows = []
    for spec in ROWS:
        if spec.task not in by_task:
            raise PointSDError(f"no metrics file for {spec.benchmark} {spec.metric} (task {spec.task!r})")
        runs = by_task[spec.task]
        if any(r.get("status") == NOT_RUN for r in runs):
            rows.append(_not_run(spec, runs[0]))
            continue
        row = _fill(spec, runs)
        if spec.task in scratch_by_task:
            mean, std, n = _stats(spec, scratch_by_task[spec.task])
            row = replace(row, scratch=_mean_std(mean, std, n), scratch_mean=mean)
        rows.append(row)
    return rows


def _stats(spec: RowSpec, runs: Sequence[Mapping[str, Any]]) -> tuple[float, float, int]:
    """``(mean, std, n)`` of the row's value: over the folds of the one few-shot summary, else over the runs."""
    if spec.task == "fewshot":
        if len(runs) > 1:
            raise PointSDError(f"more than one few-shot summary given: {', '.join(str(r.get('_source')) for r in runs)}")
        cell = runs[0]["settings"].get(spec.key)
        if cell is None:
            raise PointSDError(f"few-shot summary {runs[0].get('_source')} lacks setting {spec.key!r}")
        return float(cell["mean"]), float(cell["std"]), int(cell["n_folds"])
    stats = aggregate_seeds(runs, [spec.key])[spec.key]
    return stats["mean"], stats["std"], int(stats["n"])


def _not_run(spec: RowSpec, record: Mapping[str, Any]) -> Row:
    """The row of a benchmark that did not run: its reason in place of a value."""
    reason = record.get("reason")
    if not reason:
        raise PointSDError(f"metrics file {record.get('_source')} says 'not run' without a reason")
    data_profile = str((record.get("meta") or {}).get("data_profile", "?"))
    return Row(spec.benchmark, spec.metric, f"{NOT_RUN}: {reason}", None, None, 0, "—", None, "—", None,
               spec.paper, data_profile, "—", "—", str(record.get("hint", "")))


def _mean_std(mean: float, std: float, n: int) -> str:
    return f"{mean:.2f} ± {std:.2f}" if n > 1 else f"{mean:.2f}"


def _chance(spec: RowSpec, runs: Sequence[Mapping[str, Any]]) -> float:
    """The row's chance level: ``100/way`` for few-shot, else the runs' recorded ``spec.chance_key``."""
    if spec.task == "fewshot":
        return 100.0 / int(runs[0]["settings"][spec.key]["way"])
    return aggregate_seeds(runs, [spec.chance_key])[spec.chance_key]["mean"]


def _fill(spec: RowSpec, runs: Sequence[Mapping[str, Any]]) -> Row:
    mean, std, n = _stats(spec, runs)
    first = runs[0]
    meta = first.get("meta") or {}
    data_profile = _same(runs, lambda r: (r.get("meta") or {}).get("data_profile"), "meta.data_profile")
    protocol = _same(runs, lambda r: r.get("protocol", (r.get("meta") or {}).get("protocol")), "protocol")
    init = _same(runs, lambda r: r.get("init"), "init")
    if spec.task == "fewshot":
        over = f"{n} folds"
    else:
        seeds = sorted({(r.get("meta") or {}).get("seed") for r in runs}, key=str)
        over = f"seeds {', '.join(map(str, seeds))}"
    note = SYNTHETIC_NOTE if data_profile == "synthetic" else f"real data ({meta.get('profile', '?')} profile)"
    return Row(spec.benchmark, spec.metric, _mean_std(mean, std, n), mean, std, n, over, _chance(spec, runs),
               "—", None, spec.paper, data_profile, protocol, init, note)


def _same(runs: Sequence[Mapping[str, Any]], get: Callable[[Mapping[str, Any]], Any], name: str) -> str:
    """The one value of field ``name`` shared by all runs of a row (a mix is an error)."""
    values = {get(r) for r in runs}
    if None in values:
        missing = next(r.get("_source") for r in runs if get(r) is None)
        raise PointSDError(f"metrics file {missing} lacks {name}")
    if len(values) > 1:
        raise PointSDError(f"runs of one row disagree on {name}: {sorted(map(str, values))}")
    return str(values.pop())


COLUMNS = ("Benchmark", "Metric", "Ours", "Chance", "Scratch", "Paper", "Data", "Protocol", "Seeds / folds",
           "Init", "Note")


def to_markdown(rows: Sequence[Row]) -> str:
    """The table as Markdown, with a header saying what synthetic rows mean."""
    lines = [
        "# PointSD results",
        "",
        "Our value beside the paper's (SPEC §4). Mean ± std over seeds or few-shot folds where there",
        "are several. *Chance*: the best constant prediction (majority class; 1/way for few-shot; the",
        "category's majority part for ShapeNetPart). *Scratch*: the same task and budget without",
        "pre-training; for the linear probe, the same backbone at random initialisation. Rows on",
        "**synthetic** data show that every mechanism runs and learns; they say nothing about the",
        "paper's accuracy. The ModelNet10 row is trained and tested on real shapes.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for r in rows:
        chance = "—" if r.chance is None else f"{r.chance:.2f}"
        cells = (r.benchmark, r.metric, r.ours, chance, r.scratch, r.paper, r.data_profile, r.protocol,
                 r.spread_over, r.init, r.note)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_json(rows: Sequence[Row], sources: Sequence[str]) -> dict[str, Any]:
    """The table as data: every row's fields, plus the metrics files it was built from."""
    return {"rows": [asdict(r) for r in rows], "sources": list(sources)}
