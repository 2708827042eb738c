# Validated parameters and the stage table (workflow/stages.yaml): every rule takes its inputs,
# outputs and `pointsd` arguments from there, as dvc.yaml does (workflow/stage_table.py).

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))
from pipeline_params import ParamsError, resolve  # noqa: E402
from stage_table import SnakemakeView, StageError, StageTable  # noqa: E402

try:
    P = resolve(config, config.get("profile"))
    STAGES = StageTable(P, root=Path.cwd())
    S = SnakemakeView(STAGES)
except (ParamsError, StageError) as err:
    raise WorkflowError(str(err)) from None

FINETUNE_TASKS = list(P["finetune"])

# Every job's shell execs its one command: no shell stays between Snakemake and the command, so the
# signal SLURM sends a job step before its time limit (or on scancel, preemption) reaches the command,
# which saves its state and exits (75), instead of killing the shell (a non-interactive bash dies of
# SIGTERM) and, with it, the job before the command could save.
shell.prefix("set -euo pipefail; exec ")


def stage_input(name):
    return S.inputs(name)


def stage_output(name):
    return S.outputs(name, directory)


def stage_threads(name):
    """The job's CPU threads, from the stage table (DVC runs the stage with as many)."""
    return S.t.threads(name)


def stage_code(name):
    """The content hash of the code the stage runs (workflow/code_deps.py): an edit reruns the rule."""
    return S.code_fingerprint(name)


def stage_args(name):
    """The rule's `pointsd` arguments (a function of the job's wildcards)."""
    return S.arguments(name)


def is_training(name):
    return STAGES.stages[name].get("launch") == "training"


def launcher(name):
    """``pointsd``; for a stage with ``launch`` workflow/launch.py of it (as its own job step under SLURM, so
    that SLURM's signals reach it): ``training``, ``gpus`` processes on each of ``nodes`` nodes (data
    parallel: --batch-size is per process); ``single``, one process. DVC runs ``pointsd``."""
    launch = STAGES.stages[name].get("launch")
    if launch is None:
        return "pointsd"
    nodes, gpus = (P["nodes"], P["gpus"]) if launch == "training" else (1, 1)
    return f"python {Path(workflow.basedir) / 'workflow' / 'launch.py'} --nodes {nodes} --gpus {gpus} --"


def stage_resources(name, gpu=0):
    """The job's resources: ``runtime`` (minutes) and ``mem_mb`` from params ``jobs``; GPUs: ``gpu``, or for
    a training stage params ``gpus`` per node (SLURM: ``--gpus``, or ``--gres`` on each of ``nodes`` nodes,
    where workflow/launch.py starts one task per node itself: the plugin's ``mpi`` mode)."""
    resources = S.t.job_resources(name)
    if is_training(name) and P["nodes"] > 1:
        return {**resources, "nodes": P["nodes"], "tasks": P["nodes"], "mpi": "srun", "gres": f"gpu:{P['gpus']}"}
    if is_training(name):
        return {**resources, "gpu": P["gpus"]}
    return {**resources, "gpu": gpu} if gpu else resources


def log(name):
    return f"logs/{name}.log"


def bench(name):
    return f"logs/benchmarks/{name}.tsv"
