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
