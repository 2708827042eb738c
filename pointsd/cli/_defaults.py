"""Hand runs: every setting a command is not given comes from params.yaml, as the pipeline passes it.

The pipeline passes every value explicitly. By hand, ``pointsd finetune --task scan_hardest --profile
paper --init ckpt-stage2.pt --out runs/x`` is enough: the values of the command's stage in the stage
table (workflow/stages.yaml) for that profile fill the rest, so params.yaml stays the one copy of each
setting (no argparse default repeats one). Filled are the flags whose value is a params key or one of
the stage's inputs as the pipeline names it (``--data-root`` from ``paths.data_root``, ``--init`` from
``init``, stage 2's ``--stage1`` runs/pretrain/stage1); never an output (``--out`` is always the
user's), a path built from an input, or a bare flag. A command given every setting reads no params
file at all.

Where the files are: the stage table and its reader (``workflow/``) beside the project's
``params.yaml``: the checkout this package was installed from (editable installs, a source tree) or
``$POINTSD_ROOT`` (the image sets it). The params file: ``--params FILE``, else ``./params.yaml``
when the working directory has one, else the project's.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from pointsd.errors import PointSDError

ENV_ROOT = "POINTSD_ROOT"
# ``stage_for(args) -> (stage, entry)``: which stage of the table a command runs, and which of its jobs.
StageFor = Callable[[argparse.Namespace], tuple[str, dict[str, Any]]]
_ONE_INPUT = re.compile(r"^\{deps\.\w+\}$")


def add_params_flags(p: argparse.ArgumentParser, stage: str, *, pick: StageFor | None = None,
                     with_profile: bool = False) -> None:
    """``--params`` (and ``--profile`` where the command has none): where a hand run's defaults come from.
    They are the values of ``stage`` of the table (``--help`` names each one's key), or of the stage and
    job ``pick(args)`` chooses for a command that runs several (a task, a fold, stage 1 or 2)."""
    p.add_argument("--params", type=Path, default=None,
                   help="params file for the values not given (default: ./params.yaml, else the project's)")
    if with_profile:
        p.add_argument("--profile", default=None, help="params profile for the values not given (default: its own)")
    p.set_defaults(stage_for=pick or (lambda args: (stage, {})), command_parser=p, help_stage=stage)


def setting(p: argparse.ArgumentParser | argparse._ArgumentGroup, *flags: str, **kwargs: Any) -> argparse.Action:
    """A flag whose value the pipeline owns: no argparse default; a hand run takes it from params.yaml."""
    action = p.add_argument(*flags, default=None, **kwargs)
    action.pipeline_setting = True  # type: ignore[attr-defined]
    action.help = f"{action.help + '; ' if action.help else ''}default: params.yaml"
    return action


def project_root() -> Path | None:
    """The folder holding ``workflow/stages.yaml`` and ``params.yaml`` (see the module docstring)."""
    candidates = [os.environ.get(ENV_ROOT), Path(__file__).resolve().parents[2]]
    for folder in (Path(c) for c in candidates if c):
        if (folder / "workflow" / "stages.yaml").is_file():
            return folder
    return None


def params_file(explicit: Path | None, root: Path | None) -> Path | None:
    """The params file a hand run reads (None when there is none)."""
    if explicit is not None:
        if not explicit.is_file():
            raise PointSDError(f"--params {explicit}: no such file")
        return explicit
    for candidate in (Path("params.yaml"), root / "params.yaml" if root else None):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _stage_table_module(root: Path) -> ModuleType:
    """workflow/stage_table.py of ``root``, imported by path (it is not part of the package)."""
    name = "pointsd_stage_table"
    spec = importlib.util.spec_from_file_location(name, root / "workflow" / "stage_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def stage_defaults(args: argparse.Namespace, given: set[str]) -> tuple[list[str], str]:
    """The ``--flag value`` words the command's stage would pass for the flags not in ``given``, and
    the params file they come from."""
    root = project_root()
    path = params_file(getattr(args, "params", None), root)
    if path is None or root is None:
        return [], ""
    st = _stage_table_module(root)
    try:
        table = st.StageTable(st.load(path, getattr(args, "profile", None)), root=Path.cwd())
        name, entry = args.stage_for(args)
        if "key" in entry:  # a foreach job: its params entry (finetune.<task>)
            entry["item"] = st.lookup(table.params, table.stages[name]["foreach"]).get(entry["key"])
        words: list[str] = []
        for flag, template in table.flags(name):
            if flag is None or flag in given or template is True or not _fillable(str(template)):
                continue
            value = table.value(name, template, st.Entry(**entry))
            words += [flag, *map(str, value if isinstance(value, list) else [value])]
    except (st.ParamsError, st.StageError) as err:
        raise PointSDError(str(err)) from None
    return words, str(path)


def _fillable(template: str) -> bool:
    """A params value, or exactly one of the stage's inputs; not an output or a path built from an input."""
    if "{outs." in template:
        return False
    return "{deps." not in template or bool(_ONE_INPUT.match(template))


def given_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> set[str]:
    """The option strings of every action with a value in ``args``: what the user gave, however spelt
    (``--flag=value``, an abbreviation); every flag a hand run may be given from the table defaults to None."""
    return {o for a in parser._actions for o in a.option_strings if getattr(args, a.dest, None) is not None}


def missing_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The pipeline settings (:func:`setting`) still without a value."""
    return [a.option_strings[0] for a in parser._actions
            if getattr(a, "pipeline_setting", False) and getattr(args, a.dest) is None]


def params_keys(stage: str) -> dict[str, str]:
    """``{flag: where its default comes from}`` for ``stage``'s fillable flags (``finetune.<task>.lr``,
    ``paths.data_root``), for ``--help``; empty when the stage table cannot be found."""
    root = project_root()
    if root is None:
        return {}
    st = _stage_table_module(root)
    table = st.load_table()
    spec = table["stages"][stage]
    out = {}
    for flag, template in st.StageTable({}, table).flags(stage):
        if flag is not None and template is not True and _fillable(str(template)):
            out[flag] = ", ".join(_source(spec, field, st.FIELD) for field in st.FIELD.findall(str(template)))
    return out


def _source(spec: dict[str, Any], field: str, pattern: re.Pattern) -> str:
    """Where a template field's value comes from, in words a user can look up in params.yaml."""
    if field.startswith("item."):
        return f"{spec['foreach']}.<task>.{field[5:]}" if "foreach" in spec else f"--{field[5:]}"
    if field.startswith("deps."):
        path = spec["deps"][field[5:]]
        keys = pattern.findall(path)
        return ", ".join(keys) if keys else f"{path} (the pipeline's)"
    return field
