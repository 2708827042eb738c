"""params.yaml → one validated dict: the selected profile deep-merged over the top level.

Used by the Snakefile (before any rule runs), by the tests, and by ``make dvc-paper``:

    python workflow/pipeline_params.py validate [--profile NAME]   # exit 1 with one clear line
    python workflow/pipeline_params.py dvc-set NAME                 # `-S key=value` flags for `dvc exp run`

It deliberately does not import the ``pointsd`` package: the DAG only calls the ``pointsd`` CLI.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parent.parent
PARAMS = ROOT / "params.yaml"
SCHEMA = ROOT / "workflow" / "schemas" / "params.schema.yaml"
DEFAULT = "default"


class ParamsError(ValueError):
    """A params file that does not validate; the message names the file and the key."""


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it: mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve(raw: Mapping[str, Any], profile: str | None = None, source: str = "params.yaml") -> dict[str, Any]:
    """Merge profile ``profile`` (default: ``raw["profile"]``) over ``raw`` and validate the result."""
    name = profile or str(raw.get("profile", DEFAULT))
    profiles = raw.get("profiles") or {}
    if name != DEFAULT and name not in profiles:
        known = ", ".join([DEFAULT, *profiles]) or DEFAULT
        raise ParamsError(f"{source}: profile {name!r} is not defined under `profiles` (known: {known})")
    params = deep_merge(raw, profiles.get(name, {})) if name != DEFAULT else dict(raw)
    params["profile"] = name
    validate(params, source)
    return params


def validate(params: Mapping[str, Any], source: str = "params.yaml") -> None:
    """Raise one :class:`ParamsError` naming the first offending key (by schema path order)."""
    schema = yaml.safe_load(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        err = errors[0]
        key = ".".join(map(str, err.absolute_path)) or "(top level)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ParamsError(f"{source}: {key}: {err.message}{more}")


def load(path: str | Path = PARAMS, profile: str | None = None) -> dict[str, Any]:
    """Read and resolve a params file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ParamsError(f"{path}: cannot read: {err}") from err
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: top level must be a mapping")
    return resolve(raw, profile, source=str(path))


def dvc_set_flags(raw: Mapping[str, Any], profile: str) -> list[str]:
    """``dvc exp run`` flags that turn params.yaml into profile ``profile`` (one ``-S`` per leaf)."""
    resolve(raw, profile)
    flags = ["-S", f"profile={profile}"]
    for key, value in _leaves(raw["profiles"][profile]):
        flags += ["-S", f"{key}={json.dumps(value)}"]
    return flags


def _leaves(tree: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        out += _leaves(value, dotted + ".") if isinstance(value, Mapping) else [(dotted, value)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    check = sub.add_parser("validate", help="validate params.yaml (merged with --profile)")
    check.add_argument("--params", default=str(PARAMS))
    check.add_argument("--profile", default=None)
    dvc = sub.add_parser("dvc-set", help="print `-S key=value` flags for `dvc exp run`")
    dvc.add_argument("profile")
    dvc.add_argument("--params", default=str(PARAMS))
    args = parser.parse_args(argv)
    try:
        if args.cmd == "validate":
            params = load(args.params, args.profile)
            print(f"{args.params}: profile {params['profile']!r} is valid")
        else:
            raw = yaml.safe_load(Path(args.params).read_text())
            print(" ".join(f"'{f}'" for f in dvc_set_flags(raw, args.profile)))
    except ParamsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
