"""``pointsd data synth`` / ``data inspect`` / ``render`` through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pointsd.cli import main


def test_inspect_json_and_error_exit(synth_root: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["data", "inspect", "--format", "scanobjectnn", str(synth_root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["hardest/train"]["count"] == 30
    assert main(["data", "inspect", "--format", "shapenetpart", str(synth_root)]) == 0
    assert "Airplane=1" in capsys.readouterr().out
    bad = tmp_path / "ShapeNet55-34"
    (bad / "ShapeNet-55").mkdir(parents=True)
    (bad / "shapenet_pc").mkdir()
    (bad / "ShapeNet-55" / "train.txt").write_text("a-b.npy\n")
    (bad / "ShapeNet-55" / "test.txt").write_text("a-b.npy\n")
    np.save(bad / "shapenet_pc" / "a-b.npy", np.full((8, 3), np.nan, np.float32))
    assert main(["data", "inspect", "--format", "shapenet55", str(tmp_path)]) == 2
    assert "a-b.npy" in capsys.readouterr().err


def test_render_cli(synth_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    split = tmp_path / "few.txt"
    ids = (synth_root / "ShapeNet55-34/ShapeNet-55/test.txt").read_text().split()
    split.write_text(ids[0] + "\n")
    out = tmp_path / "renders"
    assert main(["render", "--points", str(synth_root), "--split-list", str(split), "--out", str(out),
                 "--views", "3", "--size", "24", "--seed", "0"]) == 0
    assert "views/s" in capsys.readouterr().out
    assert main(["data", "inspect", "--format", "renders", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["views_per_shape"] == {"3": 1} and report["contact_sheets"] == ["contact_sheet_few.png"]
