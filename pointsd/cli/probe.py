"""``pointsd probe``: linear probe of a pre-trained backbone beside the same architecture at random init.

The first question about a self-supervised encoder: do its frozen features beat random ones? Logistic
regression (the pre-training probe, SPEC §2: C = 0.316, 1000 iterations) on ModelNet40 global features,
for ``--init`` and for ``--random-inits`` freshly initialised backbones of the same size (seeds 0..N-1,
PyTorch's default initialisation as pre-training starts from). Writes ``OUT/pretrained.json`` and
``OUT/random_seed{S}.json`` (the table's probe row and its Scratch cell).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pointsd.cli._args import add_backbone_flags, add_overwrite_flag, add_run_flags, backbone_from_args
from pointsd.cli._defaults import add_params_flags, setting
from pointsd.errors import PointSDError
from pointsd.train.presets import PROTOCOLS
from pointsd.utils.arg_types import existing_path, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("probe", help="linear probe: a pre-trained backbone vs random init")
    setting(p, "--init", type=existing_path, help="the backbone checkpoint (any public layout)")
    setting(p, "--data-root", type=Path, help="SPEC §5 data root (its ModelNet40)")
    p.add_argument("--out", type=Path, required=True, help="run folder for the metrics files")
    setting(p, "--npoints", type=positive_int, help="points per cloud (FPS)")
    setting(p, "--random-inits", type=positive_int, help="random-init backbones to probe (seeds 0..N-1)")
    setting(p, "--policy", choices=PROTOCOLS,
            help="paper: fit on train; honest: fit on a stratified 80 %% of train (test scored either way)")
    add_backbone_flags(p)
    add_run_flags(p)
    add_overwrite_flag(p)
    add_params_flags(p, "probe")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from pointsd.data.modelnet40 import ModelNet40
    from pointsd.models.checkpoints import load_pretrained
    from pointsd.train.probe import ProbeConfig, probe_record
    from pointsd.utils import json_io
    from pointsd.utils.run_info import run_metadata, set_seed

    config = backbone_from_args(args)
    config.validate(args.npoints)
    train_set = ModelNet40(args.data_root, "train", num_points=args.npoints)
    test_set = ModelNet40(args.data_root, "test", num_points=args.npoints)
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    probe = ProbeConfig(policy=args.policy, num_points=args.npoints, seed=args.seed)
    records: dict[str, dict] = {}
    for name, seed, init in [("pretrained", args.seed, args.init),
                             *((f"random_seed{s}", s, None) for s in range(args.random_inits))]:
        set_seed(seed)
        backbone = config.build().to(device)
        if init is not None:
            report = load_pretrained(backbone, init)
            if report.missing:
                raise PointSDError(f"checkpoint {init}: backbone keys missing, they would stay random: "
                                   f"{report.missing[:5]}")
        meta = run_metadata(profile=args.profile, protocol=args.policy, seed=seed, device=device,
                            data_profile=args.data_profile)
        records[name] = {"task": "probe", "init": str(init) if init is not None else "random",
                         "protocol": args.policy, "meta": meta,
                         **probe_record(backbone, train_set, test_set, probe, device)}
        print(f"probe {name}: {records[name]['test']['overall_acc']:.2f} %")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, record in records.items():
        json_io.write_json(args.out / f"{name}.json", record)
    return 0
