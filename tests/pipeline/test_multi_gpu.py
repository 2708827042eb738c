"""``gpus: N`` turns every pre-training and fine-tuning job into an N-process ``accelerate launch``
that requests N GPUs; ``gpus: 1`` keeps the plain ``pointsd`` command that dvc.yaml also runs."""

from __future__ import annotations

from conftest import snakemake_jobs

LAUNCH = "accelerate launch --multi_gpu --num_processes 4 --num_machines 1 --mixed_precision no --dynamo_backend no"


def test_gpus_param_launches_one_process_per_gpu():
    jobs = snakemake_jobs("results/table.md", "--config", "gpus=4")
    training = {out: job for out, job in jobs.items() if job["rule"] in
                {"pretrain_stage1", "pretrain_stage2", "finetune", "finetune_scratch", "finetune_modelnet10"}}
    assert len(training) == 11
    assert all(job["cmd"].startswith(f"{LAUNCH} -m pointsd ") for job in training.values())
    others = [job for out, job in jobs.items() if out not in training and job["cmd"]]
    assert all(job["cmd"].startswith("pointsd ") for job in others)
