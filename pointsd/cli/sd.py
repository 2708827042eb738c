"""``pointsd sd tiny --out DIR``: write the embedded random-init tiny Stable Diffusion folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from pointsd.cli._defaults import add_params_flags, setting


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sd", help="Stable Diffusion folders")
    sub = p.add_subparsers(dest="sd_command", required=True, metavar="SD_COMMAND")
    tiny = sub.add_parser("tiny", help="write a tiny random-init SD (SD1.5 block types, small widths)")
    tiny.add_argument("--out", type=Path, required=True)
    setting(tiny, "--seed", type=int)
    add_params_flags(tiny, "sd_tiny", with_profile=True)
    tiny.set_defaults(func=run_tiny)


def run_tiny(args: argparse.Namespace) -> int:
    from pointsd.diffusion.stable_diffusion import write_tiny_sd

    out = write_tiny_sd(args.out, seed=args.seed)
    print(f"tiny Stable Diffusion written to {out}")
    return 0
