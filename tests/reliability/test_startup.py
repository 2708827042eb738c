"""Start-up: ``pointsd --help`` and the light commands import no torch, diffusers or transformers, and a
failing command's first stderr line is its error (no library warnings before it)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.cli_flags import PRETRAIN
from tests.reliability.conftest import ROOT, one_line, pointsd_process

HEAVY = ("torch", "diffusers", "transformers", "accelerate", "sklearn")
PROBE = """
import json, sys
from pointsd.cli import main
codes = []
for argv in json.loads(sys.argv[1]):
    try:
        codes.append(main(argv))
    except SystemExit as exit:
        codes.append(exit.code)
print(json.dumps({{"codes": codes, "heavy": sorted(m for m in {heavy} if m in sys.modules)}}))
"""


def test_light_commands_import_no_heavy_library(synth_root, tmp_path):
    record = {"task": "modelnet10", "protocol": "paper", "init": "scratch", "meta": {"seed": 0},
              "test": {"overall_acc": 90.0, "mean_class_acc": 89.0}, "last_epoch_acc": 88.0}
    (tmp_path / "m.json").write_text(json.dumps(record))
    fold = {**record, "task": "fewshot", "way": 5, "shot": 10, "fold": 0}
    (tmp_path / "f.json").write_text(json.dumps(fold))
    runs = [["--help"], ["finetune", "--help"], ["bench", "--help"],
            ["data", "inspect", "--format", "scanobjectnn", str(synth_root)],
            ["report", "table", "--metrics", str(tmp_path / "m.json"), "--out", str(tmp_path / "t.md")],
            ["finetune-aggregate", "--inputs", str(tmp_path / "m.json"), "--out", str(tmp_path / "a.json")],
            ["fewshot-aggregate", "--inputs", str(tmp_path / "f.json"), "--out", str(tmp_path / "b.json")]]
    proc = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), json.dumps(runs)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    # report table reads and checks the one metrics file, then stops: the table needs every task's run
    assert result == {"codes": [0, 0, 0, 0, 2, 0, 0], "heavy": []}, proc.stderr
    assert "no metrics file for" in proc.stderr


def test_error_is_the_first_and_only_stderr_line(tmp_path):
    """``pointsd pretrain`` imports diffusers (and transformers): no torchvision warnings before the error."""
    proc = pointsd_process("pretrain", *PRETRAIN, "--stage", "1", "--data-root", tmp_path, "--sd", tmp_path / "no-sd",
                           "--out", tmp_path / "run")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    assert one_line(err).startswith("pointsd pretrain: error: ") and "no-sd" in err
