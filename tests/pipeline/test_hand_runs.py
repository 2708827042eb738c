"""Hand runs (pointsd/cli/_defaults.py): a command given only what the pipeline cannot know (its output,
which task / fold / stage) takes every other value from params.yaml, the same values the pipeline passes."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from pipeline_params import load
from stage_table import StageTable

from pointsd import cli
from pointsd.cli import _defaults

IGNORED = {"command_parser", "stage_for", "func", "params"}
# What a hand run must give beyond the table's entry (generate: the clouds to draw from, a user's choice).
EXTRA = {"generate": ["--dataset", "shapenet55"]}


def _parse(parser, argv: list[str]) -> dict:
    args = cli._with_params_defaults(parser, argv, parser.parse_args(argv))
    return {k: v for k, v in vars(args).items() if k not in IGNORED}


def _hand_argv(parser, table: StageTable, name: str, full: list[str]) -> list[str]:
    """``full`` without the flags a hand run may leave out (fillable, not required by argparse)."""
    command = _subparser(parser, table.stages[name]["cmd"].split())
    required = {o for a in command._actions if a.required for o in a.option_strings}
    drop = {flag for flag, template in table.flags(name) if flag is not None and template is not True
            and _defaults._fillable(str(template)) and flag not in required} - {"--profile"}
    words, keep = table.stages[name]["cmd"].split(), True
    for word in full[len(words):]:
        if word.startswith("--"):
            keep = word not in drop
        if keep:
            words.append(word)
    return words


def _subparser(parser, words: list[str]):
    import argparse

    for word in words:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[word]
    return parser


@pytest.mark.parametrize("profile", ["default", "paper"])
def test_a_hand_run_gets_exactly_the_pipelines_values(profile, tmp_path, monkeypatch):
    """For every stage with hand defaults: its job's arguments as the pipeline passes them, and the same
    command with every fillable flag left out, parse to the same values."""
    table = StageTable(load(profile=profile))
    parser = cli.build_parser()
    cwd = tmp_path / "a" / "b"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    checked = []
    for name, stage in table.stages.items():
        command = _subparser(parser, stage["cmd"].split())
        if "help_stage" not in command._defaults:
            continue
        full = shlex.split(table.arguments(name, table.entries(name)[0])) + EXTRA.get(name, [])
        if "--profile" not in full:  # commands the pipeline gives no --profile: a hand run names it
            full += ["--profile", profile]
        for word in full:  # inputs must exist (existing_path); here, empty stand-ins
            if "/" in word and not word.startswith("-"):
                (cwd / word).mkdir(parents=True, exist_ok=True)
        hand = _hand_argv(parser, table, name, full)
        if parser.parse_args(hand).stage_for(parser.parse_args(hand))[0] != name:
            continue  # finetune_scratch: a hand run of `finetune` is the `finetune` stage (--init from params)
        assert len(hand) < len(full), name
        assert _parse(parser, hand) == _parse(parser, full), name
        checked.append(name)
    assert {"pretrain_stage1", "pretrain_stage2", "finetune", "fewshot", "partseg", "render", "data_synth",
            "sd_tiny", "generate"} <= set(checked)


def test_the_readme_hand_runs(tmp_path, monkeypatch):
    """`pointsd finetune --task scan_hardest --profile paper --init ckpt-stage2.pt --out runs/x` gets the
    paper's ScanObjectNN settings; `pointsd render --points P --out R` the renders' size and views."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["profiles"]["paper"]["paths"]["data_root"] = str(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    parser = cli.build_parser()
    got = _parse(parser, ["finetune", "--task", "scan_hardest", "--profile", "paper", "--init", "ckpt-stage2.pt",
                          "--out", "runs/x"])
    paper = load(tmp_path / "params.yaml", "paper")
    task = paper["finetune"]["scan_hardest"]
    assert (got["lr"], got["epochs"], got["npoints"], got["num_group"]) == (task["lr"], 300, 2048, 128)
    assert (got["optimizer"], got["momentum"], got["trans_dim"], got["depth"]) == ("sgd", 0.9, 384, 12)
    assert got["data_root"] == tmp_path and got["init"] == "ckpt-stage2.pt" and got["profile"] == "paper"
    got = _parse(parser, ["render", "--points", str(tmp_path), "--out", "R"])
    assert (got["views"], got["size"], got["seed"]) == (params["render"]["views"], params["render"]["size"], 0)


def test_without_params_the_missing_settings_are_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_defaults, "project_root", lambda: None)
    code = None
    try:
        cli.main(["sd", "tiny", "--out", str(tmp_path / "sd")])
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and "--seed, --data-root, --renders, --image-size, --vae-steps, --unet-steps, --batch-size, --lr, "\
        "--kl-weight, --caption-dropout: not given, and no params.yaml" in err and "--params FILE" in err
    assert not (tmp_path / "sd").exists()


def test_help_names_each_settings_params_key():
    proc = subprocess.run([sys.executable, "-m", "pointsd", "finetune", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    for key in ("[finetune.<task>.lr]", "[paths.data_root]", "[finetune_common.momentum]", "[backbone.trans_dim]",
                "[init]"):
        assert key in text, key


def test_a_bad_params_file_is_named(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump({**yaml.safe_load((ROOT / "params.yaml").read_text()), "seed": "x"}))
    code = cli.main(["sd", "tiny", "--out", str(tmp_path / "sd"), "--params", str(bad)])
    assert code == 2 and f"{bad}: seed" in capsys.readouterr().err
    assert not Path(tmp_path / "sd").exists()


def test_a_flag_given_however_spelt_is_not_filled(tmp_path, monkeypatch):
    """An abbreviation (``--epoch``) or ``--flag=value`` is the user's value; the table's never replaces it."""
    monkeypatch.chdir(tmp_path)
    parser = cli.build_parser()
    got = _parse(parser, ["finetune", "--task", "scan_objbg", "--out", "x", "--init", "scratch", "--epoch", "3",
                          "--lr=0.5", "--data-root", str(tmp_path)])
    assert (got["epochs"], got["lr"]) == (3, 0.5)


def test_every_fillable_flag_defaults_to_none():
    """What tells a given flag from one to fill (``_defaults.given_flags``): only a value other than None."""
    table = StageTable(load())
    parser = cli.build_parser()
    for name, stage in table.stages.items():
        command = _subparser(parser, stage["cmd"].split())
        if "help_stage" not in command._defaults:
            continue
        actions = {o: a for a in command._actions for o in a.option_strings}
        for flag, template in table.flags(name):
            if flag is not None and template is not True and _defaults._fillable(str(template)):
                assert actions[flag].default is None, f"{name}: {flag} defaults to {actions[flag].default!r}"
