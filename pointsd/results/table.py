"""The results table: every benchmark's metrics JSON → one row per cell of the paper's table.

Rows follow SPEC §4 (ScanObjectNN ×3, ModelNet40 with and without voting, few-shot ×4,
ShapeNetPart class / instance mIoU) plus the real ModelNet10 run. Several files of one task (seeds)
are reported as mean ± std over seeds; few-shot cells are mean ± std over folds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from pointsd.errors import PointSDError
from pointsd.train.metrics import aggregate_seeds

SYNTHETIC_NOTE = "synthetic data: checks mechanics, not accuracy"


@dataclass(frozen=True)
class RowSpec:
    """One cell of the paper's table: which metrics file (``task``) and which value in it."""

    benchmark: str
    metric: str
    task: str
    key: str
    paper: str


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
    RowSpec("ShapeNetPart", "Cls.mIoU (%)", "partseg", "test.class_miou", "84.5"),
    RowSpec("ShapeNetPart", "Inst.mIoU (%)", "partseg", "test.instance_miou", "86.1"),
    RowSpec("ModelNet10 (real data)", "OA (%)", "modelnet10", "test.overall_acc", "—"),
)


@dataclass(frozen=True)
class Row:
    """A filled row: our value (mean, std over ``n`` seeds or folds) beside the paper's."""

    benchmark: str
    metric: str
    ours: str
    mean: float
    std: float
    n: int
    spread_over: str
    paper: str
    data_profile: str
    protocol: str
    init: str
    note: str


def read_metrics(path: str | Path) -> dict[str, Any]:
    """One metrics JSON, with its path recorded under ``_source``."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise PointSDError(f"cannot read metrics file {path}: {err}") from err
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


def build_rows(records: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Fill every :data:`ROWS` cell from ``records``; a cell without a metrics file is an error."""
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        by_task.setdefault(task_of(record), []).append(record)
    if len(by_task.get("fewshot", [])) > 1:
        sources = ", ".join(str(r.get("_source")) for r in by_task["fewshot"])
        raise PointSDError(f"more than one few-shot summary given: {sources}")
    rows = []
    for spec in ROWS:
        if spec.task not in by_task:
            raise PointSDError(f"no metrics file for {spec.benchmark} {spec.metric} (task {spec.task!r})")
        rows.append(_fill(spec, by_task[spec.task]))
    return rows


def _fill(spec: RowSpec, runs: Sequence[Mapping[str, Any]]) -> Row:
    if spec.task == "fewshot":
        summary = runs[0]
        cell = summary["settings"].get(spec.key)
        if cell is None:
            raise PointSDError(f"few-shot summary {summary.get('_source')} lacks setting {spec.key!r}")
        mean, std, n, over = float(cell["mean"]), float(cell["std"]), int(cell["n_folds"]), "folds"
    else:
        stats = aggregate_seeds(runs, [spec.key])[spec.key]
        mean, std, n, over = stats["mean"], stats["std"], int(stats["n"]), "seeds"
    first = runs[0]
    meta = first.get("meta") or {}
    data_profile = _same(runs, lambda r: (r.get("meta") or {}).get("data_profile"), "meta.data_profile")
    protocol = _same(runs, lambda r: r.get("protocol", (r.get("meta") or {}).get("protocol")), "protocol")
    init = _same(runs, lambda r: r.get("init"), "init")
    if over == "seeds":
        seeds = sorted({(r.get("meta") or {}).get("seed") for r in runs}, key=str)
        over = f"seeds {', '.join(map(str, seeds))}"
    else:
        over = f"{n} folds"
    ours = f"{mean:.2f} ± {std:.2f}" if n > 1 else f"{mean:.2f}"
    note = SYNTHETIC_NOTE if data_profile == "synthetic" else f"real data ({meta.get('profile', '?')} profile)"
    return Row(spec.benchmark, spec.metric, ours, mean, std, n, over, spec.paper, data_profile, protocol,
               init, note)


def _same(runs: Sequence[Mapping[str, Any]], get: Callable[[Mapping[str, Any]], Any], name: str) -> str:
    """The one value of field ``name`` shared by all runs of a row (a mix is an error)."""
    values = {get(r) for r in runs}
    if None in values:
        missing = next(r.get("_source") for r in runs if get(r) is None)
        raise PointSDError(f"metrics file {missing} lacks {name}")
    if len(values) > 1:
        raise PointSDError(f"runs of one row disagree on {name}: {sorted(map(str, values))}")
    return str(values.pop())


COLUMNS = ("Benchmark", "Metric", "Ours", "Paper", "Data", "Protocol", "Seeds / folds", "Init", "Note")


def to_markdown(rows: Sequence[Row]) -> str:
    """The table as Markdown, with a header saying what synthetic rows mean."""
    lines = [
        "# PointSD results",
        "",
        "Our value beside the paper's (SPEC §4). Mean ± std over seeds or few-shot folds where there",
        "are several. Rows on **synthetic** data check that every mechanism runs end to end; they say",
        "nothing about accuracy. The ModelNet10 row is trained and tested on real shapes.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for r in rows:
        cells = (r.benchmark, r.metric, r.ours, r.paper, r.data_profile, r.protocol, r.spread_over, r.init, r.note)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_json(rows: Sequence[Row], sources: Sequence[str]) -> dict[str, Any]:
    """The table as data: every row's fields, plus the metrics files it was built from."""
    return {"rows": [asdict(r) for r in rows], "sources": list(sources)}
