"""``pointsd sd tiny --out DIR``: write the embedded tiny Stable Diffusion, trained on the rendered views.

Given ``--data-root`` and ``--renders`` (the pipeline's ``sd_tiny`` stage gives both), its VAE and UNet
first learn the view of every ShapeNet-55 training shape, captioned "a rendering of a {category}" from the
taxonomy (:mod:`pointsd.diffusion.tiny_sd_training`); without them, or with ``--vae-steps 0 --unet-steps
0``, it stays at its random initialisation.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pointsd.cli._defaults import add_params_flags, setting
from pointsd.errors import PointSDError
from pointsd.utils.arg_types import non_negative_float, non_negative_int, positive_int

if TYPE_CHECKING:
    import torch


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sd", help="Stable Diffusion folders")
    sub = p.add_subparsers(dest="sd_command", required=True, metavar="SD_COMMAND")
    tiny = sub.add_parser("tiny", help="write the tiny SD (SD1.5 block types, small widths), trained on renders")
    tiny.add_argument("--out", type=Path, required=True)
    setting(tiny, "--seed", type=int)
    setting(tiny, "--data-root", type=Path, help="SPEC §5 data root (its ShapeNet-55 train split lists the views)")
    setting(tiny, "--renders", type=Path, help="ULIP renders folder")
    setting(tiny, "--image-size", type=positive_int, help="training image size (params sd.image_size)")
    setting(tiny, "--vae-steps", type=non_negative_int)
    setting(tiny, "--unet-steps", type=non_negative_int)
    setting(tiny, "--batch-size", type=positive_int)
    setting(tiny, "--lr", type=non_negative_float)
    setting(tiny, "--kl-weight", type=non_negative_float)
    setting(tiny, "--caption-dropout", type=non_negative_float,
            help="probability of the all-zero context instead of a view's caption (1: unconditional)")
    add_params_flags(tiny, "sd_tiny", with_profile=True)
    tiny.set_defaults(func=run_tiny)


def run_tiny(args: argparse.Namespace) -> int:
    from pointsd.diffusion.stable_diffusion import TRAINING_REPORT, write_tiny_sd
    from pointsd.diffusion.tiny_sd_training import TinySDTraining

    training = TinySDTraining(vae_steps=args.vae_steps, unet_steps=args.unet_steps, batch_size=args.batch_size,
                              lr=args.lr, kl_weight=args.kl_weight, caption_dropout=args.caption_dropout,
                              seed=args.seed)
    training.validate()
    images = captions = None
    if args.vae_steps or args.unet_steps:
        if args.data_root is None or args.renders is None:
            raise PointSDError("training the tiny SD needs --data-root and --renders (or --vae-steps 0 --unet-steps 0)")
        images, captions = rendered_views(args.data_root, args.renders, args.image_size)
    out = write_tiny_sd(args.out, seed=args.seed, images=images, training=training if images is not None else None,
                        captions=captions)
    print(f"tiny Stable Diffusion written to {out}" + (f" ({out / TRAINING_REPORT})" if images is not None else ""))
    return 0


def rendered_views(data_root: Path, renders: Path, image_size: int) -> tuple[torch.Tensor, list[str]]:
    """View 0 of every ShapeNet-55 training shape, as pre-training reads it, and its mirror → ``(2N,3,S,S)``,
    with their 2N captions "a rendering of a {category}" (the taxonomy's name of the shape's synset)."""
    import torch

    from pointsd.data.paths import SHAPENET55
    from pointsd.data.shapenet55 import category_names
    from pointsd.data.ulip_renders import ShapeNet55Pretrain

    views = ShapeNet55Pretrain(data_root / SHAPENET55, renders, "train", npoints=1, image_size=image_size,
                               augment=False, subset="whole")
    names = category_names(data_root / SHAPENET55)
    synsets = [shape_id.split("-")[0] for shape_id in views.ids]
    unknown = sorted(set(synsets) - set(names))
    if unknown:
        raise PointSDError(f"ShapeNet-55 taxonomy under {data_root / SHAPENET55} lacks synsets {unknown[:3]}")
    captions = [f"a rendering of a {names[synset]}" for synset in synsets]
    images = torch.stack([views.view_image(i, flip) for flip in (False, True) for i in range(len(views))])
    return images, captions + captions
