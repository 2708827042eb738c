"""The image, built and run: docker/Dockerfile's CPU variant with podman on a local Debian base.

Builds pointsd:cpu (docker/build-image.sh cpu) from a copy of the checkout salted with what .dockerignore
must keep out, then runs the whole DAG inside it (on the smoke configuration of
tests/smoke_params.py) as uid 1000 with `--network none` and only a bind-mounted results folder: the table appears on the host with every row, nothing is written
outside the mount, a second run has nothing to do. Then the image's own default command (paper
profile) is dry-run with /data and /models/sd15 mounted. Needs root and podman (.ci/run installs it
with docker/podman-host.sh); skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.prerequisites import missing_prerequisite
from tests.smoke_params import smoke

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/pointsd:cpu"
# The image's DAG on the smoke configuration (tests/smoke_params.py, written next to the results): the
# container's mechanics, not the learning (tests/e2e runs the embedded default itself on the host).
EMBEDDED = ["snakemake", "--snakefile", "/opt/pointsd/Snakefile", "--configfile", "/results/smoke-params.yaml",
            "--directory", "/results", "--cores", "2", "results/table.md"]
# Files a developer or a run leaves in a checkout; none may reach the image.
DECOYS = [".git/HEAD", ".venv/bin/python", "venv/pyvenv.cfg", "results/table.md", "runs/x/metrics.json",
          "data/synthetic/x.h5", "models/sd-tiny/x.bin", "logs/x.log", ".snakemake/x", "report.html",
          "pointsd/__pycache__/x.cpython-311.pyc", "pointsd.egg-info/PKG-INFO", ".pytest_cache/x",
          ".ruff_cache/x", "build/lib/x.py", "dist/x.whl"]
# Build (5 min on 2 cores, seconds with cached layers) plus the smoke DAG (25 jobs, minutes).
pytestmark = [pytest.mark.container, pytest.mark.timeout(3600)]


def _skip_reason() -> str | None:
    """Why this machine cannot run the test, or None."""
    if shutil.which("podman") is None:
        return "podman is not installed (as root, docker/podman-host.sh installs it; .ci/run does)"
    if os.geteuid() != 0:
        return "needs root: rootful podman, a results folder owned by uid 1000"
    if subprocess.run(["podman", "info"], check=False, capture_output=True).returncode != 0:
        return "podman is installed but `podman info` fails (host settings: docker/podman-host.sh)"
    return None


def _run(cmd: list[str], timeout: int, **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd``; fail the test with its output tail when it fails."""
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def _podman_run(mounts: dict[Path, str], command: list[str], name: str | None = None) -> str:
    """``podman run`` IMAGE as uid 1000 without network; kept (for ``podman diff``) when named.
    A failure shows the output's tail and the tails of the jobs' logs in the results folder."""
    keep = ["--name", name] if name else ["--rm"]
    volumes = [arg for host, spec in mounts.items() for arg in ("-v", f"{host}:{spec}")]
    proc = subprocess.run(["podman", "run", *keep, "--user", "1000:1000", "--network", "none", *volumes,
                           IMAGE, *command], check=False, capture_output=True, text=True, timeout=2700)
    results = next(host for host, spec in mounts.items() if spec == "/results")
    logs = "".join(f"\n--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(results.glob("logs/*.log")))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + logs[-6000:]
    return proc.stdout + proc.stderr


def _changed_paths(results: Path, command: list[str]) -> set[str]:
    """The paths ``command`` changes in the container's own layer (``podman diff``), results mounted."""
    name = f"pointsd-smoke-{os.getpid()}"
    try:
        _podman_run({results: "/results"}, command, name)
        diff = _run(["podman", "diff", name], 60).stdout.split()
    finally:
        subprocess.run(["podman", "rm", "-f", name], check=False, capture_output=True, timeout=120)
    return set(diff[1::2])  # `podman diff` prints each path after its kind (A, C, D)


def _build(context: Path, tag: str, commit: str) -> str:
    """docker/build-image.sh cpu on ``context`` as ``tag``; prints its summary line, returns its output."""
    proc = _run(["bash", str(context / "docker" / "build-image.sh"), "cpu", str(context)], 1800,
                env={**os.environ, "IMAGE": tag, "POINTSD_COMMIT": commit})
    print(proc.stdout.strip().splitlines()[-1])
    return proc.stdout + proc.stderr


def _checkout_with_decoys(dest: Path) -> list[str]:
    """Copy the checkout's files (tracked and untracked, not ignored) to ``dest``, add every decoy;
    returns the copied files' relative paths."""
    listing = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, check=True, timeout=60).stdout
    files = [f for f in listing.decode().split("\0") if f and (ROOT / f).is_file()]
    archive = subprocess.run(["tar", "-c", "--null", "-T", "-"], cwd=ROOT, capture_output=True, check=True,
                             input="\0".join(files).encode(), timeout=120).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True, timeout=120)
    for rel in DECOYS:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text("decoy\n")
    return files


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> tuple[Path, list[str]]:
    """Build IMAGE from a salted copy of the checkout; returns that context and the copied files."""
    reason = _skip_reason()
    if reason:
        missing_prerequisite(reason)
    context = tmp_path_factory.mktemp("context")
    files = _checkout_with_decoys(context)
    commit = _run(["git", "rev-parse", "HEAD"], 60, cwd=ROOT).stdout.strip()
    _build(context, IMAGE, commit)
    return context, files


@pytest.fixture(scope="module")
def embedded(image, tmp_path_factory) -> tuple[Path, set[str]]:
    """The image's DAG run once in IMAGE on the smoke configuration: the host results folder and the
    paths it changed in the container's layer."""
    out = tmp_path_factory.mktemp("results")
    params = smoke(yaml.safe_load((ROOT / "params.yaml").read_text()))
    (out / "smoke-params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for path in (out, out / "smoke-params.yaml"):
        os.chown(path, 1000, 1000)
    start = time.monotonic()
    changed = _changed_paths(out, EMBEDDED)
    print(f"smoke DAG in the container: {time.monotonic() - start:.0f} s")
    return out, changed


def test_image_holds_the_sources_and_nothing_dockerignore_excludes(image):
    _, files = image
    listing = _run(["podman", "run", "--rm", "--network", "none", IMAGE,
                    "find", "/opt/pointsd", "-type", "f", "-printf", "%P\\n"], 120).stdout.split()
    expected = {f for f in files if not f.startswith((".ci/", "tests/"))}
    assert {"Snakefile", "params.yaml", "workflow/rules/common.smk", "pointsd/cli/__init__.py"} <= expected
    assert set(listing) == expected
    assert not set(DECOYS) & set(listing)


def test_the_dag_writes_every_row_on_the_host(embedded):
    from pointsd.results.table import ROWS

    out, _ = embedded
    table = json.loads((out / "results" / "table.json").read_text())
    assert {(r["benchmark"], r["metric"]) for r in table["rows"]} == {(s.benchmark, s.metric) for s in ROWS}
    assert (out / "results" / "table.md").read_text().count("\n| ") == len(ROWS) + 1
    assert all(p.stat().st_uid == 1000 for p in out.rglob("*"))


def test_nothing_written_outside_the_mounted_folder(embedded, tmp_path):
    _, changed = embedded
    os.chown(tmp_path, 1000, 1000)
    podman_own = _changed_paths(tmp_path, ["true"])  # what podman itself changes (/etc: hosts, …)
    assert changed <= podman_own, sorted(changed - podman_own)


def test_image_installs_exactly_the_cpu_lock_and_no_compiler(image):
    """Every Python package is the lock's version (torch: constraints.txt's CPU build), and the CPU
    image carries no compiler and no Triton: nothing there could use them."""
    freeze = _run(["podman", "run", "--rm", "--network", "none", IMAGE, "pip", "freeze", "--all"], 120).stdout
    installed = dict(line.split("==", 1) for line in freeze.split() if "==" in line)
    installed = {name.lower().replace("_", "-").replace(".", "-"): v for name, v in installed.items()}
    pins = dict(line.split("==", 1) for line in (ROOT / "requirements" / "cpu.lock").read_text().split()
                if "==" in line and not line.startswith("#"))
    assert {name: installed.get(name) for name in pins} == pins
    torch = (ROOT / "constraints.txt").read_text().split("torch==", 1)[1].split()[0]
    assert installed["torch"] == f"{torch}+cpu" and "triton" not in installed
    tools = _run(["podman", "run", "--rm", "--network", "none", IMAGE, "sh", "-c",
                  "for t in gcc cc g++ clang; do command -v $t || true; done"], 120).stdout
    assert tools.strip() == "", tools


def test_a_hand_run_in_the_image_takes_its_values_from_params(image):
    """POINTSD_ROOT points the installed package at /opt/pointsd's params.yaml and stage table: every setting of
    `pointsd sd tiny` but the two step counts (0: no training, so no renders needed) comes from there."""
    out = _run(["podman", "run", "--rm", "--network", "none", IMAGE, "pointsd", "sd", "tiny", "--out", "/tmp/sd",
                "--vae-steps", "0", "--unet-steps", "0"], 300).stdout
    assert "tiny Stable Diffusion written to /tmp/sd" in out


def test_second_run_has_nothing_to_do(embedded):
    out, _ = embedded
    assert "Nothing to be done" in _podman_run({out: "/results"}, EMBEDDED)


def test_default_command_dry_runs_the_paper_profile(image, tmp_path):
    cmd = json.loads(_run(["podman", "image", "inspect", "--format", "{{json .Config.Cmd}}", IMAGE], 60).stdout)
    assert "profile=paper" in cmd
    mounts = {tmp_path / "data": "/data:ro", tmp_path / "sd15": "/models/sd15:ro", tmp_path / "out": "/results"}
    for host in mounts:
        host.mkdir()
    os.chown(tmp_path / "out", 1000, 1000)
    for sub in ("modelnet10", "rgb_depth_rendered_images"):  # folders the paper profile reads as a whole
        (tmp_path / "data" / sub).mkdir()
    plan = _podman_run(mounts, [*cmd, "-n"])
    # The paper DAG: both pre-training stages, 4 fine-tunings + ModelNet10, few-shot over 10 folds.
    for rule, count in {"pretrain_stage1": 1, "pretrain_stage2": 1, "finetune": 4, "finetune_modelnet10": 1,
                        "fewshot": 40, "partseg": 1, "report_table": 1}.items():
        assert re.search(rf"^{rule}\s+{count}$", plan, re.MULTILINE), (rule, plan[-3000:])
    assert "data_synth" not in plan and "sd_tiny" not in plan, plan[-3000:]


def test_code_change_keeps_the_dependency_layer(image):
    context, _ = image
    init = context / "pointsd" / "__init__.py"
    init.write_text(init.read_text() + "# a code change\n")
    tag = f"{IMAGE}-code-change"
    try:
        output = _build(context, tag, "code-change")
    finally:
        subprocess.run(["podman", "rmi", "-f", tag], check=False, capture_output=True, timeout=120)
    steps = output.split("STEP ")
    deps = next(step for step in steps if "pip check" in step)
    code = next(step for step in steps if "pip install --no-deps ." in step)
    assert "Using cache" in deps and "Using cache" not in code, deps[-500:] + code[-500:]
