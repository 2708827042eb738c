"""The stage table (workflow/stages.yaml): every setting of params.yaml reaches a command, and a
broken table or params file stops with one error naming the stage, block or key."""

from __future__ import annotations

import pytest
import yaml

from conftest import ROOT, dvc_stages
from pipeline_params import load
from stage_table import FIELD, DvcWriter, StageError, StageTable, load_table, lookup

# Settings the engines read instead of a command: the launcher (N processes on M nodes), a `when`
# condition, and what a job asks a cluster for (jobs.*); paths and init are the stages' inputs (deps).
ENGINE_KEYS = {"gpus", "nodes", "finetune_common.scratch_baseline"}


def _leaves(tree: dict, prefix: str = "") -> list[str]:
    return [leaf for key, value in tree.items()
            for leaf in (_leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"])]


def test_every_setting_reaches_a_command():
    params = load()
    writer = DvcWriter(StageTable(params))
    read = {key.replace("${key}", task) for name in writer.t.stages for key in writer.params(name)
            for task in params["finetune"]}
    unused = [leaf for leaf in _leaves({k: v for k, v in params.items() if k != "profiles"})
              if not leaf.startswith(("paths.", "init", "jobs.")) and leaf not in ENGINE_KEYS
              and not any(leaf == key or leaf.startswith(key + ".") for key in read)]
    assert unused == []
    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    assert 'P["gpus"]' in common and 'P["nodes"]' in common and "job_resources" in common
    assert "scratch_baseline" in (ROOT / "workflow" / "stages.yaml").read_text()


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


def _subparser(words: list[str]):
    import argparse

    from pointsd.cli import build_parser

    parser = build_parser()
    for word in words:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[word]
    return parser


def _owned_flags(table: StageTable, name: str) -> list[str]:
    """The flags of stage ``name`` whose value is a params key (not a path of the stage, a literal, a
    derived list or a bare flag); an unpacked params mapping gives one flag per key."""
    flags = []
    for flag, template in table.flags(name):
        if flag is None:
            flags += [f"--{key}" for key in lookup(table.params, template.strip("{}"))]
        elif template is not True and any(not f.startswith(("deps.", "outs.")) for f in FIELD.findall(template)):
            flags.append(flag)
    return flags


def test_cli_keeps_no_default_for_a_pipeline_value():
    """Every flag the table fills from a params key has no CLI default: params.yaml is the one copy."""
    table = StageTable(load())
    for name, stage in table.stages.items():
        actions = {o: a for a in _subparser(stage["cmd"].split())._actions for o in a.option_strings}
        for flag in _owned_flags(table, name):
            assert flag in actions, f"{name}: `pointsd {stage['cmd']}` has no flag {flag}"
            assert actions[flag].default is None, f"{name}: {flag} has a CLI default {actions[flag].default!r}"


def test_args_command_prints_a_stage_for_hand_use():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "workflow/stage_table.py", "args", "finetune", "--key", "modelnet40",
                           "--profile", "paper"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("finetune --task modelnet40 ") and " --lr 0.017 " in proc.stdout
    assert " --votes 10 " in proc.stdout and " --optimizer sgd " in proc.stdout


def test_each_stage_names_the_cli_module_of_its_command():
    """``code:`` is the module that registers the stage's command (``add_parser("finetune", ...)``)."""
    import ast

    for name, stage in load_table()["stages"].items():
        tree = ast.parse((ROOT / stage["code"]).read_text())
        registered = {node.args[0].value for node in ast.walk(tree) if isinstance(node, ast.Call)
                      and getattr(node.func, "attr", "") == "add_parser" and isinstance(node.args[0], ast.Constant)}
        assert stage["cmd"].split()[0] in registered, f"{name}: {stage['code']} does not register {stage['cmd']!r}"


def test_dvc_lists_exactly_each_stages_code(root):
    table = StageTable(load())
    for stage in dvc_stages(root).values():
        assert sorted(stage["code"]) == sorted(table.code(stage["name"].split("@")[0])), stage["name"]


def test_code_closure_follows_lazy_and_by_name_imports():
    """The closure of `pointsd finetune` holds what its handler imports inside functions (the training
    code), the ops backends imported by name, the Triton kernels, and no other command's module."""
    import code_deps

    code = set(StageTable(load()).code("finetune"))
    assert {"pointsd/train/finetune.py", "pointsd/train/loop.py", "pointsd/ops/cpu.py", "pointsd/ops/reference.py",
            "kernels/pointsd_kernels/fps.py", "pointsd/__init__.py", "pointsd/train/__init__.py"} <= code
    assert "pointsd/cli/pretrain.py" not in code and "pointsd/train/pretrain.py" not in code
    assert "pointsd/train/finetune.py" not in StageTable(load()).code("pretrain_stage1")
    assert code_deps.module_file("numpy") is None and code_deps.module_file("pointsd.no_such") is None


def test_snakemake_code_param_follows_the_files(tmp_path, copy_checkout):
    """The rule param is the hash of exactly the stage's files: an edit to one of them changes it."""
    import code_deps

    checkout = copy_checkout(tmp_path / "c")
    files = code_deps.closure("pointsd/cli/finetune.py", checkout)
    before = code_deps.fingerprint(files, checkout)
    assert before == code_deps.fingerprint(StageTable(load()).code("finetune"), ROOT)
    with open(checkout / "pointsd/train/finetune.py", "a") as f:
        f.write("# edited\n")
    assert code_deps.fingerprint(files, checkout) != before
    assert code_deps.fingerprint(code_deps.closure("pointsd/cli/pretrain.py", checkout), checkout) == \
        code_deps.fingerprint(StageTable(load()).code("pretrain_stage1"), ROOT)


def test_jobs_key_naming_no_stage_is_named():
    params = load()
    params["jobs"]["runtime"]["pretrain_stage3"] = 5
    with pytest.raises(StageError, match=r"jobs\.runtime\.pretrain_stage3: no such stage"):
        StageTable(params).job_resources("render")
