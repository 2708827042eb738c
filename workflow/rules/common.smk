# Validated parameters and the flag strings the rules pass to the `pointsd` CLI.
# Each flag string is the text dvc.yaml writes with ${...} for the same stage.

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))
from pipeline_params import ParamsError, resolve  # noqa: E402

try:
    P = resolve(config, config.get("profile"))
except ParamsError as err:
    raise WorkflowError(str(err)) from None

FINETUNE_TASKS = list(P["finetune"])
CLASSIFICATION_RUNS = expand("runs/finetune/{task}", task=[*FINETUNE_TASKS, "modelnet10"])
# The Scratch column: each synthetic classification task again from scratch, same budget.
SCRATCH_RUNS = (
    expand("runs/finetune_scratch/{task}", task=FINETUNE_TASKS)
    if P["finetune_common"]["scratch_baseline"]
    else []
)
# Real ModelNet10 is optional: without it, its row records "not run" and why.
MODELNET10 = P["paths"]["modelnet10"]
MODELNET10_PRESENT = Path(MODELNET10).exists()
FEWSHOT_GRID = P["fewshot"]["grid"]
FEWSHOT_RUNS = expand(
    "runs/fewshot/{way}w{shot}s/fold{fold}",
    way=FEWSHOT_GRID["ways"],
    shot=FEWSHOT_GRID["shots"],
    fold=FEWSHOT_GRID["folds"],
)


OWN_STAGE2 = "runs/pretrain/stage2/ckpt-stage2.pt"


def init_input():
    """What the benchmarks' ``--init`` needs built: the stage-2 run folder for the pipeline's own
    checkpoint, else the given checkpoint file (and no pre-training)."""
    return rules.pretrain_stage2.output.run if P["init"] == OWN_STAGE2 else P["init"]


def launcher():
    """The training command: ``pointsd``, or with ``gpus`` > 1 ``accelerate launch`` of it, one process
    per GPU of the job's node (data parallel: --batch-size is per process). DVC runs ``pointsd``."""
    if P["gpus"] == 1:
        return "pointsd"
    return (
        f"accelerate launch --multi_gpu --num_processes {P['gpus']} --num_machines 1 "
        "--mixed_precision no --dynamo_backend no -m pointsd"
    )


def log(name):
    return f"logs/{name}.log"


def bench(name):
    return f"logs/benchmarks/{name}.tsv"


def run_flags():
    """Device, seed and the provenance every metrics file records."""
    return f"--device {P['device']} --seed {P['seed']} --profile {P['profile']} --no-progress"


def backbone_flags():
    """The backbone architecture flags shared by every training command."""
    b = P["backbone"]
    return (
        f"--trans-dim {b['trans_dim']} --depth {b['depth']} --num-heads {b['num_heads']} "
        f"--encoder-dims {b['encoder_dims']} --patch-width {b['patch_width']} "
        f"--drop-path-rate {b['drop_path_rate']}"
    )


def grouping_flags(t):
    return f"--npoints {t['npoints']} --num-group {t['num_group']} --group-size {t['group_size']}"


def pretrain_flags():
    """Data, grouping and optimisation flags shared by both pre-training stages."""
    t = P["pretrain"]
    return (
        f"{backbone_flags()} {grouping_flags(t)} --image-size {P['sd']['image_size']} "
        f"--epochs {t['epochs']} --batch-size {t['batch_size']} --lr {t['lr']} "
        f"--weight-decay {t['weight_decay']} --warmup-epochs {t['warmup_epochs']} "
        f"--grad-clip {t['grad_clip']} --mix-prob {t['mix_prob']} --probe-every {t['probe_every']} "
        f"--max-steps-per-epoch {t['max_steps_per_epoch']} --probe-points {t['npoints']} "
        f"--data-profile {P['data_profile']} {run_flags()}"
    )


def schedule_flags(t):
    """Optimiser, schedule and protocol flags: ``t``'s lr, epochs, batch size and augmentation,
    ``finetune_common``'s optimiser, warm-up, weight decay, clipping and protocol."""
    c = P["finetune_common"]
    return (
        f"{backbone_flags()} {grouping_flags(t)} --lr {t['lr']} --epochs {t['epochs']} "
        f"--batch-size {t['batch_size']} --augment {t['augment']} --optimizer {c['optimizer']} "
        f"--warmup-epochs {c['warmup_epochs']} --weight-decay {c['weight_decay']} "
        f"--grad-clip {c['grad_clip']} --protocol {c['protocol']} {run_flags()}"
    )


def finetune_flags(t):
    """Every flag of one classification task's params ``t``."""
    return f"{schedule_flags(t)} --votes {t['votes']}"


def fewshot_flags():
    """Every flag of each few-shot fold."""
    return schedule_flags(P["fewshot"])


def fewshot_grid_flags():
    """``--ways 5 10 --shots 10 20 --folds 0 1``: the text DVC renders for ``${fewshot.grid}``."""
    return " ".join(
        f"--{key} {' '.join(map(str, values))}" for key, values in FEWSHOT_GRID.items()
    )


def partseg_flags():
    """Grouping and optimisation (AdamW) flags of the part-segmentation run."""
    t, c = P["partseg"], P["finetune_common"]
    return (
        f"{backbone_flags()} {grouping_flags(t)} --lr {t['lr']} --weight-decay {t['weight_decay']} "
        f"--epochs {t['epochs']} --batch-size {t['batch_size']} --augment {t['augment']} "
        f"--warmup-epochs {c['warmup_epochs']} --grad-clip {c['grad_clip']} --protocol {c['protocol']} "
        f"{run_flags()}"
    )


def table_metrics():
    """The metrics files the table reads, in row order (few-shot summary and part seg last)."""
    runs = [f"{run}/metrics.json" for run in CLASSIFICATION_RUNS]
    metrics = " ".join([*runs, "results/fewshot.json", "runs/partseg/metrics.json"])
    scratch = " ".join(f"{run}/metrics.json" for run in SCRATCH_RUNS)
    return f"{metrics} --scratch {scratch}" if scratch else metrics


def curve_runs():
    """Every run folder with a metrics log, in table order (pre-training first)."""
    runs = [] if P["init"] != OWN_STAGE2 else ["runs/pretrain/stage1", "runs/pretrain/stage2"]
    trained = CLASSIFICATION_RUNS if MODELNET10_PRESENT else CLASSIFICATION_RUNS[:-1]
    return [*runs, *trained, *SCRATCH_RUNS, *FEWSHOT_RUNS, "runs/partseg"]
