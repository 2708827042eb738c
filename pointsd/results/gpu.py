"""The GPU results file of ``benchmarks/gpu.sh``: the benches' JSON outputs → one JSON document.

``{"meta": {"device", "commit", "date", "torch", "triton"}, "targets": [{"name", "measured",
"target", "met"}], "rows": [...], "tests": {...}, "missing": {...}}``: meta and targets come from
``pointsd bench ops --json`` (targets named ``ops.<op>.<size>.vs_<baseline>``); the fine-tuning
bench adds its ``finetune.*`` targets; the ``pretrain.*`` targets are judged on the rows of every
bench named ``pretrain*`` together (the GPU run measures the two stages in separate invocations).
Rows are every bench's rows tagged with ``"bench"``; a bench whose output is absent or unreadable is
listed under ``missing`` with the reason (meta then describes the machine the helper runs on). Run as ``python -m pointsd.results.gpu --ops ops.json [--bench
NAME=FILE ...] [--tests-rc N --tests-log FILE] --out gpu-<date>.json``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

from pointsd.utils import json_io
from pointsd.utils.run_info import run_metadata

META_KEYS = ("device", "commit", "date", "torch")


def _read(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON object in ``path`` (a bench's stdout), or ``None`` and why not."""
    try:
        text = path.read_text()
    except OSError as exc:
        return None, f"no output ({exc.strerror})"
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return None, f"not JSON: {text.strip()[-200:] or 'empty'}"
    return (doc, None) if isinstance(doc, dict) else (None, "not a JSON object")


def _triton_version() -> str | None:
    try:
        return importlib.metadata.version("triton")
    except importlib.metadata.PackageNotFoundError:
        return None


def assemble(ops_path: Path, benches: dict[str, Path], tests: dict[str, Any] | None = None,
             triton: str | None = None) -> dict[str, Any]:
    """The results document from ``pointsd bench ops --json`` output at ``ops_path`` and other
    benches' ``--json`` outputs (name → path); ``tests`` is recorded as given."""
    ops_doc, why = _read(ops_path)
    missing = {} if ops_doc is not None else {"ops": why}
    ops_meta = (ops_doc or {}).get("meta", {})
    here = run_metadata(profile="gpu", protocol="gpu-results", seed=0, device="cuda")  # if ops has none
    meta = {key: ops_meta.get(key) or here[key] for key in META_KEYS}
    meta["triton"] = triton
    rows = [dict(row, bench="ops") for row in (ops_doc or {}).get("rows", [])]
    targets = list((ops_doc or {}).get("targets", []))
    pretrain_rows: list[dict[str, Any]] = []
    for name, path in benches.items():
        doc, why = _read(path)
        if doc is None:
            missing[name] = why
            continue
        rows += [dict(row, bench=name) for row in doc.get("rows", [])]
        if name.startswith("pretrain"):
            pretrain_rows += doc.get("rows", [])
        else:
            targets += doc.get("targets", [])
    if pretrain_rows:
        from pointsd.bench.pretrain import summarise

        targets += summarise(pretrain_rows)[1]
    return {"meta": meta, "targets": targets, "rows": rows, "tests": tests or {}, "missing": missing}


def _tests(rc: int | None, log: Path | None) -> dict[str, Any]:
    """Pytest's exit code and the last line of its log."""
    last = ""
    if log is not None and log.is_file():
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        last = lines[-1] if lines else ""
    return {"rc": rc, "passed": rc == 0, "summary": last}


def main(argv: list[str] | None = None) -> int:
    """Write the results file; exit 0 when it is written (the targets are judged by reading it)."""
    p = argparse.ArgumentParser(prog="python -m pointsd.results.gpu", description=__doc__.splitlines()[0])
    p.add_argument("--ops", type=Path, required=True, help="output of pointsd bench ops --device cuda --json")
    p.add_argument("--bench", action="append", default=[], metavar="NAME=FILE", help="another bench's JSON")
    p.add_argument("--tests-rc", type=int, default=None)
    p.add_argument("--tests-log", type=Path, default=None)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    benches = dict(item.split("=", 1) for item in args.bench)
    doc = assemble(args.ops, {k: Path(v) for k, v in benches.items()}, _tests(args.tests_rc, args.tests_log),
                   _triton_version())
    json_io.write_json(args.out, doc)
    met = sum(t["met"] for t in doc["targets"])
    print(f"{args.out}: {met}/{len(doc['targets'])} targets met, tests rc {doc['tests']['rc']}, "
          f"missing {sorted(doc['missing']) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
