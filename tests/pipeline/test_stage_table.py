"""The stage table (workflow/stages.yaml): every setting of params.yaml reaches a command, and a
broken table or params file stops with one error naming the stage, block or key."""

from __future__ import annotations

import pytest
import yaml

from conftest import ROOT
from pipeline_params import load
from stage_table import DvcWriter, StageError, StageTable, load_table

# Settings the engines read instead of a command: the launcher (N processes) and a `when` condition;
# paths and init are the stages' inputs (deps), not arguments.
ENGINE_KEYS = {"gpus", "finetune_common.scratch_baseline"}


def _leaves(tree: dict, prefix: str = "") -> list[str]:
    return [leaf for key, value in tree.items()
            for leaf in (_leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"])]


def test_every_setting_reaches_a_command():
    params = load()
    writer = DvcWriter(StageTable(params))
    read = {key.replace("${key}", task) for name in writer.t.stages for key in writer.params(name)
            for task in params["finetune"]}
    unused = [leaf for leaf in _leaves({k: v for k, v in params.items() if k != "profiles"})
              if not leaf.startswith(("paths.", "init")) and leaf not in ENGINE_KEYS
              and not any(leaf == key or leaf.startswith(key + ".") for key in read)]
    assert unused == []
    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    assert 'P["gpus"]' in common and "scratch_baseline" in (ROOT / "workflow" / "stages.yaml").read_text()


def test_warmup_and_protocol_reach_fewshot_and_partseg():
    table = StageTable(load())
    for name in ("fewshot", "partseg"):
        args = table.arguments(name, table.entries(name)[0])
        assert " --warmup-epochs 1 " in args and " --protocol honest " in args and " --weight-decay 0.05 " in args


def test_unknown_block_is_named(tmp_path):
    table = yaml.safe_load((ROOT / "workflow" / "stages.yaml").read_text())
    table["stages"]["partseg"]["args"].append("backbon")
    path = tmp_path / "stages.yaml"
    path.write_text(yaml.safe_dump(table))
    with pytest.raises(StageError, match=r"stages\.partseg\.args: unknown block 'backbon'"):
        load_table(path)


def test_schema_violation_is_named(tmp_path):
    table = yaml.safe_load((ROOT / "workflow" / "stages.yaml").read_text())
    del table["stages"]["render"]["cmd"]
    path = tmp_path / "stages.yaml"
    path.write_text(yaml.safe_dump(table))
    with pytest.raises(StageError, match=r"stages\.render: 'cmd' is a required property"):
        load_table(path)


def test_missing_params_key_is_named():
    params = load()
    del params["partseg"]["weight_decay"]
    table = StageTable(params)
    with pytest.raises(StageError, match=r"'partseg\.weight_decay'"):
        table.arguments("partseg", table.entries("partseg")[0])
