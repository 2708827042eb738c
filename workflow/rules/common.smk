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


def launcher(name):
    """``pointsd``; for a training stage with ``gpus`` > 1, ``accelerate launch`` of it, one process per
    GPU of the job's node (data parallel: --batch-size is per process). DVC runs ``pointsd``."""
    if P["gpus"] == 1 or STAGES.stages[name].get("launch") != "training":
        return "pointsd"
    return (
        f"accelerate launch --multi_gpu --num_processes {P['gpus']} --num_machines 1 "
        "--mixed_precision no --dynamo_backend no -m pointsd"
    )


def log(name):
    return f"logs/{name}.log"


def bench(name):
    return f"logs/benchmarks/{name}.tsv"
