"""The whole Snakemake DAG on the embedded default, in a copy of the repository (minutes).

Checks: every table row is present and parses; every row learns (the floors of the embedded
default: classification ≥ 3× its chance column, ShapeNetPart instance mIoU ≥ 40 %, real ModelNet10
≥ 80 %); the scratch column and the curves are there; the scratch runs start where pre-training starts
and pre-training falls at most a few points below them; the teacher learned the renders; stage 1 records
its conditioning check; the report bundles them; a second run has nothing to do; changing one
fine-tuning parameter re-runs exactly that task's jobs and the outputs that read them.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# The DAG takes minutes on 2 cores: more than the suite-wide per-test timeout allows.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2700)]


def _snakemake(cwd: Path, *args: str, timeout: int = 2400) -> str:
    proc = subprocess.run(["snakemake", "--cores", "2", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    logs = "".join(f"\n--- {p}\n{p.read_text()[-2000:]}" for p in sorted((cwd / "logs").glob("*.log")))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + logs[-6000:]
    return proc.stdout + proc.stderr


def _planned_jobs(output: str) -> dict[str, int]:
    """``{rule: count}`` from the dry run's job stats table (empty when nothing is to be done)."""
    if "Nothing to be done" in output:
        return {}
    block = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, copy_checkout) -> Path:
    work = tmp_path_factory.mktemp("pipeline")
    copy_checkout(work)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["paths"]["modelnet10"] = str((ROOT / params["paths"]["modelnet10"]).resolve())
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _snakemake(work, "results/table.md")
    return work


def _rows(workdir: Path) -> dict[tuple[str, str], dict]:
    table = json.loads((workdir / "results" / "table.json").read_text())
    return {(r["benchmark"], r["metric"]): r for r in table["rows"]}


def test_table_has_every_row(workdir):
    from pointsd.results.table import ROWS, SYNTHETIC_NOTE

    table = json.loads((workdir / "results" / "table.json").read_text())
    rows = {(r["benchmark"], r["metric"]): r for r in table["rows"]}
    assert set(rows) == {(s.benchmark, s.metric) for s in ROWS}
    for key, row in rows.items():
        assert 0.0 <= row["mean"] <= 100.0 and row["std"] >= 0.0, key
        assert float(row["ours"].split(" ± ")[0]) == pytest.approx(row["mean"], abs=0.006), key
        assert row["protocol"] in ("paper", "honest") and row["init"].endswith("ckpt-stage2.pt"), key
    assert rows[("ModelNet10 (real data)", "OA (%)")]["data_profile"] == "real"
    assert rows[("ScanObjectNN OBJ_BG", "OA (%)")]["note"] == SYNTHETIC_NOTE
    assert rows[("ModelNet40 few-shot 5w10s", "OA (%)")]["n"] == 2  # folds 0, 1 of the default
    markdown = (workdir / "results" / "table.md").read_text()
    assert markdown.count("\n| ") == len(ROWS) + 1


MODELNET10_FLOOR = 80.0
# Every synthetic classification row must reach 3x its chance column (#12). Measured on a bare clone
# (2026-11-26): PB_T50_RS 25.6 % (chance 6.67 %; 20 epochs with scale_rotate, the same with 1 or 2 threads;
# seed 1 gives 19.3 %, so the margin is a few test shapes), ModelNet40 25.8 %, + voting 28.3 % (2.5 %).
FLOOR_X_CHANCE = 3.0


def test_every_row_learns(workdir):
    """The floors of the embedded default (3x chance): a regression that stops learning fails here."""
    rows = _rows(workdir)
    for (benchmark, metric), row in rows.items():
        if metric.startswith("OA") and row["data_profile"] == "synthetic":
            floor = FLOOR_X_CHANCE * row["chance"]
            assert row["mean"] >= floor, (benchmark, row["mean"], row["chance"])
    assert rows[("ShapeNetPart", "Inst.mIoU (%)")]["mean"] >= 40.0
    assert rows[("ModelNet10 (real data)", "OA (%)")]["mean"] >= MODELNET10_FLOOR


def test_scratch_column_and_curves(workdir):
    rows = _rows(workdir)
    with_scratch = {key for key, row in rows.items() if row["scratch_mean"] is not None}
    assert with_scratch == {key for key in rows if not key[0].startswith("ShapeNetPart")}  # every row but partseg
    probe = rows[("Linear probe, frozen (ModelNet40)", "OA (%)")]
    assert probe["scratch"].count(" ± ") == 1  # the random-init backbones: params probe.random_inits (3) seeds
    figures = {p.name for p in (workdir / "results" / "curves").glob("*.png")}
    assert {"pretrain_stage1.png", "pretrain_stage2.png", "finetune_scan_objbg.png",
            "finetune_scratch_modelnet40.png", "fewshot_5w10s_fold0.png", "partseg.png"} <= figures
    assert len(figures) == 21  # 2 stages, 4 + 4 scratch tasks, ModelNet10 + scratch, 8 folds, partseg


CLASSIFICATION = ("ScanObjectNN OBJ_BG", "ScanObjectNN OBJ_ONLY", "ScanObjectNN PB_T50_RS", "ModelNet40",
                  "ModelNet40 + voting")
FEWSHOT = tuple(f"ModelNet40 few-shot {w}w{s}s" for w in (5, 10) for s in (10, 20))


def _mean(rows: dict, names: tuple[str, ...], column: str) -> float:
    return sum(rows[(name, "OA (%)")][column] for name in names) / len(names)


def test_pre_training_against_scratch_from_the_same_init(workdir):
    """Pre-trained vs the same budget from the initialisation pre-training starts from (#24;
    ``finetune_common.scratch_init: pytorch``, recorded by every scratch run). Measured 2026-12-07 on an AMD
    EPYC 2-core machine, seeds 0 / 1 / 2, pre-trained minus scratch: the classification mean -1.24 / -0.05 /
    -2.46, the few-shot mean -0.06 / -0.06 / -0.38, real ModelNet10 -0.33 / -0.99 / +1.54 points. Pre-training at
    this scale neither helps nor hurts fine-tuning (with Point-MAE's init the Scratch column was 42 points
    lower: the initialisation, not pre-training; benchmarks/RESULTS.md). Asserted: a pre-training that
    damages the backbone (collapsed or non-finite weights fine-tune far below their own init) fails; a gain
    is not asserted, there is none."""
    rows = _rows(workdir)
    scratch_runs = sorted((workdir / "runs").glob("*_scratch/**/metrics.json"))
    assert len(scratch_runs) == 4 + 1 + 8  # the synthetic tasks, ModelNet10, the few-shot folds
    for run in scratch_runs:
        assert json.loads(run.read_text())["init_report"]["scratch_init"] == "pytorch", run
    assert _mean(rows, CLASSIFICATION, "mean") >= _mean(rows, CLASSIFICATION, "scratch_mean") - 5.0
    assert _mean(rows, FEWSHOT, "mean") >= _mean(rows, FEWSHOT, "scratch_mean") - 3.0
    mn10 = rows[("ModelNet10 (real data)", "OA (%)")]
    assert mn10["mean"] >= mn10["scratch_mean"] - 3.0


def test_report_bundles_table_and_curves(workdir):
    proc = subprocess.run(["snakemake", "--report", "report.html"], cwd=workdir, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (workdir / "report.html").read_text(errors="replace")
    assert "finetune_scan_objbg.png" in html and "table.md" in html and "contact_sheet" in html


def test_second_run_has_nothing_to_do(workdir):
    assert _planned_jobs(_snakemake(workdir, "-n", "results/table.md")) == {}


def test_editing_finetune_code_reruns_exactly_the_jobs_that_run_it(workdir):
    """Code is an input (workflow/code_deps.py): an edit of pointsd/train/finetune.py plans every
    classification and few-shot fine-tune (they run it), what reads them, and nothing upstream."""
    source = workdir / "pointsd" / "train" / "finetune.py"
    original = source.read_text()
    source.write_text(original + "# an edit\n")
    try:
        planned = _planned_jobs(_snakemake(workdir, "-n", "results/table.md"))
    finally:
        source.write_text(original)
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    grid = params["fewshot"]["grid"]
    tasks = len(params["finetune"])
    folds = len(grid["ways"]) * len(grid["shots"]) * len(grid["folds"])
    assert planned == {"finetune": tasks, "finetune_scratch": tasks, "finetune_modelnet10": 1,
                       "finetune_modelnet10_scratch": 1, "fewshot": folds, "fewshot_scratch": folds,
                       "fewshot_aggregate": 1, "fewshot_scratch_aggregate": 1, "report_table": 1,
                       "report_curves": 1}, planned
    assert _planned_jobs(_snakemake(workdir, "-n", "results/table.md")) == {}


def test_changing_one_finetune_param_reruns_only_that_branch(workdir):
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["finetune"]["scan_objbg"]["lr"] = params["finetune"]["scan_objbg"]["lr"] * 2
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = _snakemake(workdir, "-n")
    assert _planned_jobs(out) == {"finetune": 1, "finetune_scratch": 1, "report_table": 1, "report_curves": 1,
                                  "all": 1}
    assert out.count("wildcards: key=scan_objbg") == 2


def test_the_teacher_learned_the_renders(workdir):
    """The `sd_tiny` stage trains the tiny SD on the rendered views before PointSD uses it (#24): its
    recorded denoising loss on the views is well below the untrained UNet's (measured 1.07 → 0.13)."""
    report = json.loads((workdir / "models" / "sd-tiny" / "training.json").read_text())
    assert report["views"] > 0 and report["denoising_after"] < 0.5 * report["denoising_before"], report
    assert report["vae_reconstruction_after"] < 0.2 * report["vae_reconstruction_before"], report


def test_stage1_records_whether_it_conditions_sd(workdir):
    """Stage 1's summary holds the UNet's denoising MSE with its point tokens and with zero tokens (the
    unconditional UNet). On the embedded default the tokens do not help yet (#24; measured 0.0621 vs 0.0470
    on seed 0, 1.21-1.32x over seeds 0-2, benchmarks/RESULTS.md), so a gain is not asserted; tokens that
    wreck the UNet (non-finite or exploding weights) fail."""
    conditioning = json.loads((workdir / "runs/pretrain/stage1/summary.json").read_text())["conditioning"]
    assert 0 < conditioning["zero_tokens"] < 0.2, conditioning
    assert 0 < conditioning["with_points"] < 2 * conditioning["zero_tokens"], conditioning
