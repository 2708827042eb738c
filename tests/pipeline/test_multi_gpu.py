"""``gpus: N`` (and ``nodes: M``) turn every pre-training and fine-tuning job into workflow/launch.py of
it (N processes on each of M nodes) that requests N GPUs per node; ``gpus: 1`` keeps the plain ``pointsd``
command that dvc.yaml also runs. Every job asks for the run time and memory params.yaml ``jobs`` gives its
stage."""

from __future__ import annotations

import re
import subprocess

from conftest import ROOT, snakemake_jobs
from pipeline_params import load

TRAINING = {"pretrain_stage1", "pretrain_stage2", "finetune", "finetune_scratch", "finetune_modelnet10",
            "finetune_modelnet10_scratch"}


def test_gpus_param_launches_one_process_per_gpu():
    """Training jobs: N processes; few-shot and part segmentation: one, through the launcher too (their
    own SLURM step); the others: plain ``pointsd``."""
    jobs = snakemake_jobs("results/table.md", "--config", "gpus=4")
    training = {out: job for out, job in jobs.items() if job["rule"] in TRAINING}
    assert len(training) == 12  # 2 stages, 4 + 4 scratch tasks, ModelNet10 + scratch
    launch = f"python {ROOT}/workflow/launch.py --nodes 1 --gpus {{}} -- "
    assert all(job["launch"] == job["cmd"].replace("pointsd ", launch.format(4), 1) for job in training.values())
    single = [job for job in jobs.values() if job["rule"] in ("fewshot", "fewshot_scratch", "partseg")]
    assert single and all(job["launch"].startswith(launch.format(1)) for job in single)
    others = [job for out, job in jobs.items() if out not in training and job not in single and job["cmd"]]
    assert all(job["launch"].startswith("pointsd ") for job in others)


def test_jobs_ask_for_their_stages_runtime_and_memory():
    """The dry run's resources of each rule are params.yaml ``jobs`` (the stage's value, else ``default``),
    and on several nodes a training job asks for them with one task and N GPUs on each."""
    jobs = load()["jobs"]
    proc = subprocess.run(["snakemake", "-n", "--forceall", "--cores", "64", "--config", "nodes=2", "gpus=3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = {}
    for rule, resources in re.findall(r"^rule (\w+):\n(?:.*\n)*?\s+resources: (.*)$", proc.stdout, re.MULTILINE):
        seen[rule] = dict(item.split("=", 1) for item in resources.split(", "))
    for rule, got in ((r, g) for r, g in seen.items() if r != "all"):
        for key in ("runtime", "mem_mb"):
            assert int(got[key]) == jobs[key].get(rule, jobs[key]["default"]), (rule, key, got)
    assert {k: seen["pretrain_stage1"][k] for k in ("nodes", "tasks", "mpi", "gres")} == \
        {"nodes": "2", "tasks": "2", "mpi": "srun", "gres": "gpu:3"}
    assert "gpu" in seen["fewshot"] and "nodes" not in seen["data_synth"]
