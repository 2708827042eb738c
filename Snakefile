"""PointSD pipeline: data -> image assets (+ tiny SD) -> stage 1 -> stage 2 -> benchmarks -> table.

    snakemake --cores all results/table.md                          # embedded default (CPU, minutes)
    snakemake --cores all results/table.md --config profile=paper   # SPEC settings, real data, SD v1.5
    snakemake --profile workflow/profiles/slurm results/table.md    # the same DAG on a SLURM cluster
    snakemake --cores all results/table.md --config init=CKPT       # benchmarks from CKPT, no pre-training

params.yaml is the one source of truth; the selected profile is merged over its top level and
validated against workflow/schemas/params.schema.yaml before any rule is built
(workflow/rules/common.smk). Every rule takes its inputs, outputs and `pointsd` arguments from the
stage table workflow/stages.yaml, from which dvc.yaml is generated (`make dvc.yaml`;
tests/pipeline/test_dag_equality.py checks that both run the same jobs).
"""


configfile: "params.yaml"


report: "workflow/report/workflow.rst"


# The software of every rule: the project's CUDA image (docker/Dockerfile). Used with
# `--software-deployment-method apptainer`; without it, rules run in the current environment.
container: "docker://pointsd:cuda"


include: "workflow/rules/common.smk"


rule all:
    default_target: True
    input:
        "results/table.md",
        "results/table.json",
        "results/curves",


include: "workflow/rules/data.smk"
include: "workflow/rules/assets.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/fewshot.smk"
include: "workflow/rules/partseg.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/report.smk"
