"""dvc.yaml and the Snakefile describe the same DAG: same outputs, same `pointsd` commands."""

from __future__ import annotations

from conftest import dvc_stages, snakemake_jobs


def test_same_outputs_and_commands():
    jobs = snakemake_jobs()
    stages = dvc_stages()
    assert set(jobs) == set(stages), "outputs only in one DAG: " + str(set(jobs) ^ set(stages))
    for out, job in jobs.items():
        assert sorted(job["outputs"]) == sorted(stages[out]["outputs"]), out
        assert job["cmd"] == stages[out]["cmd"], f"{job['rule']} vs {stages[out]['name']}"
    assert len(jobs) >= 21  # synth, render, sd, 2 stages, 4 + 1 finetune, 8 folds, summary, partseg, table


def test_benchmarks_from_a_given_checkpoint_skip_pre_training(tmp_path):
    """``init`` = a checkpoint file (e.g. the official ckpt-stage2.pt): no pre-training job, every
    benchmark command starts from that file."""
    ckpt = tmp_path / "ckpt-stage2.pt"
    ckpt.write_bytes(b"")
    jobs = snakemake_jobs("results/table.md", "--config", f"init={ckpt}")
    rules = {job["rule"] for job in jobs.values()}
    assert not rules & {"pretrain_stage1", "pretrain_stage2", "render", "sd_tiny"}, rules
    starts = [job for job in jobs.values() if "--init" in (job["cmd"] or "") and job["rule"] != "finetune_scratch"]
    assert len(starts) >= 14 and all(f"--init {ckpt} " in job["cmd"] for job in starts)
    scratch = [job for job in jobs.values() if job["rule"] == "finetune_scratch"]
    assert len(scratch) == 4 and all("--init scratch " in job["cmd"] for job in scratch)


def test_dvc_graph_builds():
    """DVC accepts the stages' dependencies (``${init}`` is a file inside stage 2's output folder)."""
    from dvc.repo import Repo

    from conftest import ROOT

    with Repo(str(ROOT)) as repo:
        graph = repo.index.graph
        init_users = [s.addressing for s in repo.index.stages if any(d.def_path.endswith("ckpt-stage2.pt")
                                                                  for d in s.deps)]
        stage2 = next(s for s in repo.index.stages if s.addressing == "pretrain_stage2")
        assert init_users and all(graph.has_edge(u, stage2) for u in repo.index.stages
                                  if u.addressing in init_users)
