"""dvc.yaml and the Snakefile describe the same DAG, structurally (jobs, commands, outputs, the edges
between jobs, external inputs), for the default profile, the paper profile and ``init=<file>``; and
the committed dvc.yaml is exactly what workflow/stage_table.py generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, dvc_stages, snakemake_jobs, structure

sys.path.insert(0, str(ROOT / "workflow"))
import pipeline_params  # noqa: E402


def _generate(checkout: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "workflow/stage_table.py", "dvc", *args], cwd=checkout,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def _assert_same(checkout: Path, *snakemake_args: str) -> dict[str, tuple]:
    smk, dvc = structure(snakemake_jobs(*snakemake_args, cwd=checkout)), structure(dvc_stages(checkout))
    assert set(smk) == set(dvc), "jobs only in one DAG: " + str(set(smk) ^ set(dvc))
    for key in smk:
        assert smk[key] == dvc[key], key
    return smk


@pytest.mark.skipif(not (ROOT / pipeline_params.load()["paths"]["modelnet10"]).exists(),
                    reason="the committed dvc.yaml is generated with the real ModelNet10 present (../shared)")
def test_committed_dvc_yaml_is_generated():
    proc = subprocess.run([sys.executable, "workflow/stage_table.py", "dvc", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr + " (run `make dvc.yaml`)"


def test_default_profile():
    dag = _assert_same(ROOT)
    rules = {job[0].split(" --")[0] for job in dag.values()}
    assert {"pointsd data synth", "pointsd render", "pointsd sd tiny", "pointsd pretrain", "pointsd report table"} <= rules
    assert len(dag) == 37  # synth, render, sd, 2 stages, 4 + 4 scratch + 1 finetune (ModelNet10) + its scratch,
    # 8 + 8 scratch folds, 2 summaries, partseg, probe, 2 reports
    # each job runs on the same thread count in both engines (Snakemake's threads, DVC's OMP_NUM_THREADS)
    assert [job[4] for job in dag.values() if job[0].startswith("pointsd pretrain")] == [2, 2]
    assert {job[4] for job in dag.values() if job[0].startswith("pointsd fewshot")} == {1}


def _paper_checkout(tmp: Path, copy_checkout) -> Path:
    """A copy whose paper paths exist outside it (empty folders: a dry DAG needs them, not their contents)."""
    dest = copy_checkout(tmp / "checkout")
    raw = yaml.safe_load((dest / "params.yaml").read_text())
    for key in raw["profiles"]["paper"]["paths"]:
        (tmp / "paper-data" / key).mkdir(parents=True)
        raw["profiles"]["paper"]["paths"][key] = str(tmp / "paper-data" / key)
    (dest / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return dest


def test_paper_profile(tmp_path, copy_checkout):
    """`make dvc-paper` (dvc.yaml generated for the paper, params set as `dvc exp run -S` sets them)
    runs exactly the jobs of `snakemake --config profile=paper`: no render, data synthesis or tiny SD."""
    checkout = _paper_checkout(tmp_path, copy_checkout)
    smk_jobs = snakemake_jobs("--config", "profile=paper", cwd=checkout)
    _generate(checkout, "--profile", "paper")
    raw = yaml.safe_load((checkout / "params.yaml").read_text())
    (checkout / "params.yaml").write_text(yaml.safe_dump(pipeline_params.resolve(raw, "paper"), sort_keys=False))
    dag = _assert_same(checkout, "--config", "profile=paper")
    assert len(smk_jobs) == len(dag) == 2 + 4 + 1 + 40 + 1 + 1 + 1 + 2  # stages, tasks, mn10, 4x10 folds, probe, ...
    assert not any(cmd.startswith(("pointsd render", "pointsd data synth", "pointsd sd tiny")) for cmd, *_ in dag.values())


def test_benchmarks_from_a_given_checkpoint_skip_pre_training(tmp_path, copy_checkout):
    """``init`` = a checkpoint file (e.g. the official ckpt-stage2.pt): no pre-training job in either DAG,
    every benchmark command starts from that file."""
    checkout = copy_checkout(tmp_path / "checkout")
    ckpt = tmp_path / "ckpt-stage2.pt"
    ckpt.write_bytes(b"")
    raw = yaml.safe_load((checkout / "params.yaml").read_text())
    raw["init"] = str(ckpt)
    (checkout / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    _generate(checkout)
    dag = _assert_same(checkout)
    cmds = [cmd for cmd, *_ in dag.values()]
    assert not [c for c in cmds if c.startswith(("pointsd pretrain", "pointsd render", "pointsd sd tiny"))]
    starts = [c for c in cmds if " --init " in c and " --init scratch " not in c]
    # 4 tasks, 8 folds, part segmentation, probe (no ModelNet10 beside the copy: its row is "not run")
    assert len(starts) == 14 and all(f" --init {ckpt} " in c for c in starts)
    assert len([c for c in cmds if " --init scratch " in c]) == 4 + 8  # tasks, few-shot folds


def test_dvc_graph_builds():
    """DVC accepts the stages' dependencies (``${init}`` is a file inside stage 2's output folder)."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        graph = repo.index.graph
        init_users = [s.addressing for s in repo.index.stages if any(d.def_path.endswith("ckpt-stage2.pt")
                                                                  for d in s.deps)]
        stage2 = next(s for s in repo.index.stages if s.addressing == "pretrain_stage2")
        assert init_users and all(graph.has_edge(u, stage2) for u in repo.index.stages
                                  if u.addressing in init_users)
