"""The argparse types refuse bad values with a one-line reason, and live outside the CLI package."""

import argparse
import subprocess
import sys

import pytest

from pointsd.utils.arg_types import existing_path, non_negative_float, positive_int


def test_numbers_are_parsed_or_refused_with_the_reason():
    assert positive_int("3") == 3 and non_negative_float("0") == 0.0 and non_negative_float("2.5") == 2.5
    for parse, value, reason in [(positive_int, "x", "not an integer"), (positive_int, "0", "must be > 0"),
                                 (non_negative_float, "y", "not a number"), (non_negative_float, "-1", ">= 0"),
                                 (non_negative_float, "inf", "finite"), (non_negative_float, "nan", "finite")]:
        with pytest.raises(argparse.ArgumentTypeError, match=reason):
            parse(value)


def test_existing_path(tmp_path):
    assert existing_path(str(tmp_path)) == tmp_path
    with pytest.raises(argparse.ArgumentTypeError, match="no such file"):
        existing_path(str(tmp_path / "absent"))


def test_the_benchmarks_do_not_import_the_cli():
    code = ("import sys, pointsd.bench.ops, pointsd.bench.finetune, pointsd.bench.pretrain, pointsd.bench.render; "
            "print(sorted(m for m in sys.modules if m.startswith('pointsd.cli')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
