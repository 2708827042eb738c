"""workflow/stages.yaml → the jobs of one resolved params dict, for Snakemake and for DVC.

    python workflow/stage_table.py dvc [--profile NAME] [--check]   # write (or compare) dvc.yaml
    python workflow/stage_table.py targets [--profile NAME]         # the stages `dvc repro` needs
    python workflow/stage_table.py args STAGE [--key K] [--profile NAME]  # its `pointsd` arguments, by hand

The Snakemake rules call :class:`StageTable` (workflow/rules/common.smk) for their inputs, outputs and
arguments; ``dvc.yaml`` is :func:`dvc_yaml` of the same table. Like pipeline_params it does not import
the ``pointsd`` package.
"""

from __future__ import annotations

import argparse
import itertools
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import jsonschema
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import code_deps
from pipeline_params import PARAMS, ParamsError, load

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "workflow" / "stages.yaml"
SCHEMA = ROOT / "workflow" / "schemas" / "stages.schema.yaml"
DVC_YAML = ROOT / "dvc.yaml"
FINAL = "report_table"
OWN_STAGE2 = "runs/pretrain/stage2/ckpt-stage2.pt"
FIELD = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")
THREADS_VAR = "OMP_NUM_THREADS"  # what Snakemake sets from a rule's `threads`; torch reads it
DVC_HEADER = """\
# GENERATED from workflow/stages.yaml and params.yaml by `make dvc.yaml`: do not edit.
# The same DAG as the Snakefile, stage for stage and command for command (each run on the threads its
# Snakemake rule gets, through OMP_NUM_THREADS): `dvc repro` regenerates results/table.md. Values come
# from params.yaml by ${...} interpolation, so DVC records exactly the params each stage uses.
# `make dvc-paper` regenerates it for profile `paper` and runs `dvc exp run`.

"""


class StageError(ValueError):
    """The stage table does not validate or names an unknown stage, block, key or list."""


def load_table(path: Path = TABLE) -> dict[str, Any]:
    """Read and schema-check the stage table; unknown blocks are errors."""
    table = yaml.safe_load(path.read_text())
    errors = sorted(jsonschema.Draft202012Validator(yaml.safe_load(SCHEMA.read_text())).iter_errors(table),
                    key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        key = ".".join(map(str, errors[0].absolute_path)) or "(top level)"
        raise StageError(f"{path}: {key}: {errors[0].message}")
    for name, stage in table["stages"].items():
        for entry in stage["args"]:
            if isinstance(entry, str) and not entry.startswith("{") and entry not in table["blocks"]:
                raise StageError(f"{path}: stages.{name}.args: unknown block {entry!r}")
    return table


def lookup(params: Mapping[str, Any], dotted: str) -> Any:
    """``params["a"]["b"]`` for ``"a.b"``; a missing key is a :class:`StageError` naming it."""
    value: Any = params
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise StageError(f"params key {dotted!r} (used by workflow/stages.yaml) does not exist")
        value = value[part]
    return value


def text(value: Any) -> str:
    """A value as a command argument: lists space-separated, as DVC writes them."""
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


@dataclass(frozen=True)
class Entry:
    """One job of a stage: ``key`` of a foreach stage, ``item`` its params entry or matrix values."""

    key: str | None = None
    item: Mapping[str, Any] | None = None


class StageTable:
    """The stage table bound to one resolved params dict ``params``."""

    def __init__(self, params: Mapping[str, Any], table: Mapping[str, Any] | None = None,
                 root: Path = ROOT) -> None:
        self.params, self.table, self.root = params, table or load_table(), root
        self.stages: Mapping[str, Any] = self.table["stages"]

    # -- which stages and jobs exist ------------------------------------------------------------
    def condition(self, name: str) -> bool:
        """The value of a `when` condition (CONDITIONS)."""
        return CONDITIONS[name](self)

    def included(self, name: str) -> bool:
        when = self.stages[name].get("when")
        return when is None or self.condition(when)

    def entries(self, name: str) -> list[Entry]:
        stage = self.stages[name]
        if "foreach" in stage:
            return [Entry(key, item) for key, item in lookup(self.params, stage["foreach"]).items()]
        if "matrix" in stage:
            axes = {axis: lookup(self.params, key) for axis, key in stage["matrix"].items()}
            return [Entry(item=dict(zip(axes, combo))) for combo in itertools.product(*axes.values())]
        return [Entry()]

    # -- concrete values (Snakemake, reachability) ------------------------------------------------
    def field(self, name: str, dotted: str, entry: Entry) -> Any:
        """The value of ``{dotted}`` in stage ``name`` for ``entry``."""
        stage = self.stages[name]
        if dotted == "key":
            return entry.key
        if dotted.startswith("item."):
            return lookup(entry.item or {}, dotted[5:])
        if dotted.startswith(("deps.", "outs.")):
            group, _, label = dotted.partition(".")
            return self.value(name, stage.get(group, {})[label], entry)
        return lookup(self.params, dotted)

    def value(self, name: str, template: Any, entry: Entry) -> Any:
        """A template rendered: a list for ``<derived>``, else a string (``True`` stays a bare flag)."""
        if template is True:
            return True
        if isinstance(template, str) and template.startswith("<"):
            return DERIVED[template.strip("<>")](self)
        return FIELD.sub(lambda m: text(self.field(name, m.group(1), entry)), str(template))

    def paths(self, name: str, group: str, entry: Entry) -> dict[str, list[str]]:
        """``{label: [path, ...]}`` of a stage's ``deps`` or ``outs`` for one entry."""
        out = {}
        for label, template in self.stages[name].get(group, {}).items():
            value = self.value(name, template, entry)
            out[label] = value if isinstance(value, list) else [value]
        return out

    def arguments(self, name: str, entry: Entry) -> str:
        """``data synth --out data/synthetic ...``: the command after ``pointsd``, shell-quoted."""
        words = self.stages[name]["cmd"].split()
        for flag, template in self.flags(name):
            if flag is None:  # "{a.b}": a params mapping unpacked
                mapping = lookup(self.params, FIELD.fullmatch(template).group(1))
                words += [w for k, v in mapping.items() for w in (f"--{k}", *map(str, _as_list(v)))]
                continue
            value = self.value(name, template, entry)
            if value is True:
                words.append(flag)
            elif value != []:
                words += [flag, *_as_list(value)]
        return " ".join(shlex.quote(str(w)) for w in words)

    def threads(self, name: str) -> int:
        """The CPU threads of stage ``name``'s jobs (default 1)."""
        return int(self.stages[name].get("threads", 1))

    def job_resources(self, name: str) -> dict[str, int]:
        """What a job of stage ``name`` asks a cluster for: params ``jobs`` (``runtime`` minutes, ``mem_mb``),
        the stage's own value or ``default``. A key of ``jobs`` that names no stage is a :class:`StageError`."""
        out = {}
        for resource, values in lookup(self.params, "jobs").items():
            unknown = sorted(set(values) - {"default", *self.stages})
            if unknown:
                raise StageError(f"params key jobs.{resource}.{unknown[0]}: no such stage; one of default, "
                                 f"{', '.join(self.stages)}")
            out[resource] = int(values.get(name, values["default"]))
        return out

    def code(self, name: str) -> tuple[str, ...]:
        """The repository's source files stage ``name`` runs (workflow/code_deps.py)."""
        return code_deps.closure(self.stages[name]["code"], ROOT)

    def flags(self, name: str) -> list[tuple[str | None, Any]]:
        """``[(flag, template), ...]`` in command order, blocks expanded (``None`` flag: unpacked mapping)."""
        out: list[tuple[str | None, Any]] = []
        for entry in self.stages[name]["args"]:
            if isinstance(entry, str) and entry.startswith("{"):
                out.append((None, entry))
            else:
                out += list((self.table["blocks"][entry] if isinstance(entry, str) else entry).items())
        return out

    def jobs(self) -> list[dict[str, Any]]:
        """Every job of the included stages upstream of ``report_table``: name, cmd, deps, outs."""
        jobs = [{"stage": name, "entry": entry, "cmd": f"pointsd {self.arguments(name, entry)}",
                 "deps": [p for ps in self.paths(name, "deps", entry).values() for p in ps],
                 "outs": [p for ps in self.paths(name, "outs", entry).values() for p in ps]}
                for name in self.stages if self.included(name) for entry in self.entries(name)]
        return upstream(jobs, FINAL)


class SnakemakeView:
    """A :class:`StageTable` as Snakemake rules use it: paths with wildcards, arguments per job."""

    def __init__(self, table: StageTable) -> None:
        self.t = table
        self.folders = [o for j in table.jobs() for o in j["outs"]]

    def pattern(self, name: str, template: str) -> str | list[str]:
        """``runs/finetune/{key}`` stays a wildcard pattern (``{item.way}`` → ``{way}``); params filled in."""
        if template.startswith("<"):
            return DERIVED[template.strip("<>")](self.t)
        return FIELD.sub(lambda m: "{" + m.group(1).removeprefix("item.") + "}"
                         if m.group(1) == "key" or m.group(1).startswith("item.")
                         else text(self.t.field(name, m.group(1), Entry())), template)

    def inputs(self, name: str) -> dict[str, Any]:
        """Named inputs; a file inside another job's output folder is that folder (Snakemake tracks outputs)."""
        out = {}
        for label, template in self.t.stages[name].get("deps", {}).items():
            value = self.pattern(name, template)
            out[label] = [self.producer(v) for v in value] if isinstance(value, list) else self.producer(value)
        return out

    def producer(self, path: str) -> str:
        return next((f for f in self.folders if path != f and inside(path, f)), path)

    def outputs(self, name: str, folder: Callable[[str], Any]) -> dict[str, Any]:
        """Named outputs, folders (no dot in the last component) wrapped by Snakemake's ``directory``."""
        out = {}
        for label, template in self.t.stages[name]["outs"].items():
            path = self.pattern(name, template)
            out[label] = folder(path) if "." not in Path(path).name else path
        return out

    def code_fingerprint(self, name: str) -> str:
        """The content hash of the code stage ``name`` runs: a rule param, so an edit reruns the rule."""
        return code_deps.fingerprint(self.t.code(name), ROOT)

    def arguments(self, name: str) -> Callable[[Any], str]:
        """``wildcards → "finetune --task ... --no-progress"`` for the rule's ``params``."""
        stage = self.t.stages[name]

        def render(wildcards: Any) -> str:
            if "foreach" in stage:
                key = wildcards.key
                entry = Entry(key, lookup(self.t.params, stage["foreach"])[key])
            elif "matrix" in stage:
                entry = Entry(item={axis: wildcards[axis] for axis in stage["matrix"]})
            else:
                entry = Entry()
            return self.t.arguments(name, entry)

        return render


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or below it."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def upstream(jobs: list[dict[str, Any]], final_stage: str) -> list[dict[str, Any]]:
    """The jobs ``final_stage`` needs (itself included), in table order."""
    need = [j for j in jobs if j["stage"] == final_stage]
    seen = {id(j) for j in need}
    while need:
        job = need.pop()
        for other in jobs:
            if id(other) not in seen and any(inside(d, o) or inside(o, d) for d in job["deps"] for o in other["outs"]):
                seen.add(id(other))
                need.append(other)
    return [j for j in jobs if id(j) in seen]


# -- conditions and derived lists: what a `when` or a `<name>` of the table means ----------------------
def _modelnet10_present(t: StageTable) -> bool:
    return (t.root / t.params["paths"]["modelnet10"]).exists()


CONDITIONS: dict[str, Callable[[StageTable], bool]] = {
    "scratch_baseline": lambda t: bool(t.params["finetune_common"]["scratch_baseline"]),
    "modelnet10_present": _modelnet10_present,
    "modelnet10_missing": lambda t: not _modelnet10_present(t),
    "modelnet10_scratch": lambda t: _modelnet10_present(t) and CONDITIONS["scratch_baseline"](t),
    "by_hand": lambda t: False,  # run by hand only; its entry gives a hand run its values (pointsd/cli/_defaults.py)
}


def _runs(t: StageTable, stage: str) -> list[str]:
    if not t.included(stage):
        return []
    return [t.value(stage, t.stages[stage]["outs"]["run"], e) for e in t.entries(stage)]


def _classification_runs(t: StageTable) -> list[str]:
    return [*_runs(t, "finetune"), "runs/finetune/modelnet10"]


def _scratch_runs(t: StageTable) -> list[str]:
    """The from-scratch classification runs (synthetic tasks, then ModelNet10 when it runs)."""
    return [*_runs(t, "finetune_scratch"), *_runs(t, "finetune_modelnet10_scratch")]


def _fewshot_scratch_summary(t: StageTable) -> list[str]:
    return [t.stages["fewshot_scratch_aggregate"]["outs"]["summary"]] if t.included("fewshot_scratch_aggregate") else []


def _curve_runs(t: StageTable) -> list[str]:
    """Every run folder with a metrics log, in table order (pre-training first when it is ours)."""
    own = t.params["init"] == OWN_STAGE2
    pretrain = [*_runs(t, "pretrain_stage1"), *_runs(t, "pretrain_stage2")] if own else []
    return [*pretrain, *_runs(t, "finetune"), *_runs(t, "finetune_modelnet10"), *_scratch_runs(t),
            *_runs(t, "fewshot"), *_runs(t, "partseg")]


DERIVED: dict[str, Callable[[StageTable], list[str]]] = {
    "fewshot_runs": lambda t: _runs(t, "fewshot"),
    "fewshot_scratch_runs": lambda t: _runs(t, "fewshot_scratch"),
    "curve_runs": _curve_runs,
    "table_runs": lambda t: [*_classification_runs(t), *_scratch_runs(t), "results/fewshot.json",
                             *_fewshot_scratch_summary(t), "runs/partseg", "runs/probe"],
    "table_metrics": lambda t: [*(f"{r}/metrics.json" for r in _classification_runs(t)), "results/fewshot.json",
                                "runs/partseg/metrics.json", "runs/probe/pretrained.json"],
    "scratch_metrics": lambda t: [*(f"{r}/metrics.json" for r in _scratch_runs(t)), *_fewshot_scratch_summary(t),
                                  *(f"runs/probe/random_seed{s}.json" for s in range(t.params["probe"]["random_inits"]))],
}


# -- dvc.yaml --------------------------------------------------------------------------------------
class DvcWriter:
    """dvc.yaml of a :class:`StageTable`: values as ``${...}``, derived lists and conditions resolved."""

    def __init__(self, table: StageTable) -> None:
        self.t = table

    def template(self, name: str, template: Any) -> str | list[str]:
        """A value in DVC's syntax: ``{a.b}`` → ``${a.b}``, ``{deps.x}`` → that dep's template."""
        if isinstance(template, str) and template.startswith("<"):
            return DERIVED[template.strip("<>")](self.t)

        def field(m: re.Match) -> str:
            dotted = m.group(1)
            if dotted.startswith(("deps.", "outs.")):
                group, _, label = dotted.partition(".")
                return str(self.template(name, self.t.stages[name][group][label]))
            return "${" + dotted + "}"

        return FIELD.sub(field, str(template))

    def cmd(self, name: str) -> str:
        """``OMP_NUM_THREADS=N pointsd ...``: the thread count Snakemake gives the rule, then the command."""
        words = [f"{THREADS_VAR}={self.t.threads(name)}", "pointsd", *self.t.stages[name]["cmd"].split()]
        for flag, template in self.t.flags(name):
            value = self.template(name, template)
            if flag is not None and template is not True and value == []:
                continue
            words += [] if flag is None else [flag]
            if template is not True:
                words += value if isinstance(value, list) else [value]
        return " ".join(_dvc_quote(w) for w in words)

    def params(self, name: str) -> list[str]:
        """The params keys the command reads (paths reached through deps/outs are deps, not params)."""
        stage, keys = self.t.stages[name], []
        for flag, template in self.t.flags(name):
            for dotted in FIELD.findall(str(template)) if template is not True else []:
                if dotted.startswith("item.") and "foreach" in stage:
                    keys.append(f"{stage['foreach']}.${{key}}.{dotted[5:]}")
                elif dotted.startswith("item."):
                    keys.append(stage["matrix"][dotted[5:]])
                elif not dotted.startswith(("deps.", "outs.")) and dotted != "key":
                    keys.append(dotted)
        return list(dict.fromkeys(keys))

    def stage(self, name: str) -> dict[str, Any]:
        spec = self.t.stages[name]
        body: dict[str, Any] = {"cmd": self.cmd(name)}
        deps = [self.template(name, v) for v in spec.get("deps", {}).values()]
        body["deps"] = [d for v in deps for d in (v if isinstance(v, list) else [v])] + list(self.t.code(name))
        if self.params(name):
            body["params"] = self.params(name)
        outs = [str(self.template(name, v)) for v in spec.get("outs", {}).values()]
        own_metrics = {str(self.template(name, m)) for m in spec.get("metrics", [])}
        plain = [o if not o.startswith("results/") else {o: {"cache": False}} for o in outs if o not in own_metrics]
        if plain:
            body["outs"] = plain
        if own_metrics & set(outs):
            body["metrics"] = [{o: {"cache": False}} for o in outs if o in own_metrics]
        if "foreach" in spec:
            return {"foreach": "${" + spec["foreach"] + "}", "do": body}
        if "matrix" in spec:
            return {"matrix": {axis: "${" + key + "}" for axis, key in spec["matrix"].items()}, **body}
        return body

    def document(self) -> dict[str, Any]:
        """The whole dvc.yaml: the stages `report_table` needs, top-level metrics and plots."""
        jobs = self.t.jobs()
        names = list(dict.fromkeys(j["stage"] for j in jobs))
        metrics, plots = [], []
        for job in jobs:
            outs = set(job["outs"])
            for m in self.t.stages[job["stage"]].get("metrics", []):
                path = self.t.value(job["stage"], m, job["entry"])
                metrics += [] if path in outs else [path]
            for path, ys in self.t.stages[job["stage"]].get("plots", {}).items():
                plots.append({self.t.value(job["stage"], path, job["entry"]): {"x": "step", "y": ys}})
        return {"stages": {n: self.stage(n) for n in names}, "metrics": metrics, "plots": plots}


def _dvc_quote(word: str) -> str:
    """Shell-quote like :func:`shlex.quote`, but leave ``${...}`` alone (DVC substitutes it first)."""
    return word if re.fullmatch(r"[\w@%+=:,./${}-]+", word) else shlex.quote(word)


def dvc_text(params: Mapping[str, Any]) -> str:
    """The text of dvc.yaml for resolved ``params``."""
    document = DvcWriter(StageTable(params)).document()
    return DVC_HEADER + yaml.safe_dump(document, sort_keys=False, width=110, default_flow_style=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("dvc", "targets", "args"))
    parser.add_argument("stage", nargs="?", help="args: the stage whose `pointsd` arguments to print")
    parser.add_argument("--key", help="args: the entry of a foreach stage (e.g. a finetune task)")
    parser.add_argument("--item", nargs="*", default=[], metavar="AXIS=VALUE", help="args: a matrix entry")
    parser.add_argument("--profile", default=None, help="profile merged over params.yaml (default: its own)")
    parser.add_argument("--params", type=Path, default=PARAMS)
    parser.add_argument("--check", action="store_true", help="dvc: exit 1 when dvc.yaml differs")
    args = parser.parse_args(argv)
    try:
        params = load(args.params, args.profile)
        table = StageTable(params)
        if args.action == "targets":
            print(" ".join(dict.fromkeys(j["stage"] for j in table.jobs())))
        elif args.action == "args":
            print(table.arguments(_stage_name(table, args.stage), _entry(table, args)))
        else:
            return _write_dvc(dvc_text(params), args.check)
    except (ParamsError, StageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _stage_name(table: StageTable, name: str | None) -> str:
    if name not in table.stages:
        raise StageError(f"unknown stage {name!r}; one of {', '.join(table.stages)}")
    return name


def _entry(table: StageTable, args: argparse.Namespace) -> Entry:
    """The job ``--key`` / ``--item`` selects of a foreach / matrix stage (the first when not given)."""
    entries = table.entries(args.stage)
    if args.key is not None:
        entries = [e for e in entries if e.key == args.key]
    for pair in args.item:
        axis, _, value = pair.partition("=")
        entries = [e for e in entries if str((e.item or {}).get(axis)) == value]
    if not entries:
        raise StageError(f"stage {args.stage} has no entry --key {args.key} --item {' '.join(args.item)}")
    return entries[0]


def _write_dvc(fresh: str, check: bool) -> int:
    """Write dvc.yaml atomically, or with ``check`` compare it (exit 1 when it differs)."""
    if check:
        same = DVC_YAML.is_file() and DVC_YAML.read_text() == fresh
        print("dvc.yaml is up to date" if same else "dvc.yaml differs from `make dvc.yaml`", file=sys.stderr)
        return 0 if same else 1
    tmp = DVC_YAML.with_suffix(".yaml.tmp")
    tmp.write_text(fresh)
    tmp.replace(DVC_YAML)
    return 0


if __name__ == "__main__":
    sys.exit(main())
