"""``pointsd data synth`` (embedded synthetic data in every real format), ``pointsd data inspect`` and
``pointsd data modelnet40-cache`` (the FPS ``.dat`` of a ModelNet40 folder, written once by its owner)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pointsd.data.inspect import INSPECTORS, format_report, inspect
from pointsd.cli._defaults import add_params_flags, setting
from pointsd.data.synth import PRESETS, sizes_for
from pointsd.utils import json_io


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data synth`` and ``data inspect``."""
    parser = subparsers.add_parser("data", help="synthesise or validate datasets")
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    synth = sub.add_parser("synth", help="write the synthetic datasets in the SPEC §5 tree (no renders)")
    synth.add_argument("--out", type=Path, required=True, help="data root to write")
    setting(synth, "--size", choices=sorted(PRESETS), help="tiny: the embedded default")
    setting(synth, "--seed", type=int)
    add_params_flags(synth, "data_synth", with_profile=True)
    synth.set_defaults(func=_synth)

    insp = sub.add_parser("inspect", help="validate a dataset folder and count shapes per split and class")
    insp.add_argument("--format", dest="fmt", choices=sorted(INSPECTORS), required=True)
    insp.add_argument("path", type=Path)
    insp.add_argument("--json", action="store_true", help="print the report as JSON")
    insp.set_defaults(func=_inspect)

    cache = sub.add_parser("modelnet40-cache", help="write modelnet40_{train,test}_{N}pts_fps.dat from the txt clouds")
    cache.add_argument("root", type=Path, help="data root or its modelnet40_normal_resampled folder")
    cache.add_argument("--points", type=int, required=True, help="points per shape (SPEC: 8192)")
    cache.set_defaults(func=_modelnet40_cache)


def _synth(args: argparse.Namespace) -> int:
    from pointsd.data.synth import synthesize

    synthesize(args.out, sizes_for(args.size), args.seed)
    print(f"wrote synthetic '{args.size}' data (seed {args.seed}) under {args.out}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    report = inspect(args.fmt, args.path)
    print(json_io.dumps(report) if args.json else format_report(report))
    return 0


def _modelnet40_cache(args: argparse.Namespace) -> int:
    from pointsd.data.modelnet40 import SPLITS, build_cache
    from pointsd.data.paths import MODELNET40, dataset_dir

    folder = dataset_dir(args.root, MODELNET40)
    for split in SPLITS:
        print(f"wrote {build_cache(folder, split, args.points)}")
    return 0
