"""PointSD pre-training, stage 1 (condition SD on points) and stage 2 (distil SD features), SPEC §2–§3.

The steps are plain functions of (models, batch) → loss; :func:`run_pretrain` wires data, models,
optimiser, schedule, probe and checkpoints into :func:`pointsd.train.loop.train`.
A batch is a dict with ``points (B,N,3)`` and ``image (B,3,S,S)`` in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from diffusers import AutoencoderKL, DDPMScheduler
from diffusers.optimization import get_cosine_schedule_with_warmup
from torch.utils.data import Dataset

from pointsd.diffusion.resampler import ResamplerConfig
from pointsd.diffusion.stable_diffusion import StableDiffusionParts, check_sd_folder, load_stable_diffusion
from pointsd.diffusion.stage_models import (
    STAGE1_FILES,
    Stage1Model,
    Stage2Student,
    load_stage1,
    read_backbone_config,
    save_stage1,
    save_stage2,
)
from pointsd.diffusion.teacher import Stage2Teacher
from pointsd.errors import PointSDError
from pointsd.models.backbone import PointTransformer
from pointsd.models.config import BackboneConfig
from pointsd.train.batches import shuffled_loader
from pointsd.train.conditioning import conditioning_losses
from pointsd.train.latent_cache import LatentCache, encode_latents
from pointsd.train.loop import LoopConfig, accelerator_for, steps_per_epoch, train
from pointsd.train.patch_mix import mix_images, swap_slots
from pointsd.train.presets import MIX_RESIZES, POINT_SUBSETS, STAGE2_GROUPINGS
from pointsd.train.probe import ProbeConfig, probe_accuracy
from pointsd.train.speed import SpeedPlan, cast_frozen_
from pointsd.train.training_config import TrainingConfig
from pointsd.utils import data_record, json_io, staging
from pointsd.utils.run_config import check_run_folder, record_run
from pointsd.utils.run_info import run_metadata, set_seed

SUMMARY = "summary.json"


@dataclass
class NoiseConfig:
    """Stage-1 diffusion noise and the patch mix: its probability and how the joined image is resized
    (:data:`pointsd.train.presets.MIX_RESIZES`; official ``nearest``)."""

    t_min: int = 500
    t_max: int = 1000
    mix_prob: float = 0.5
    mix_resize: str = "nearest"

    def __post_init__(self) -> None:
        if not 0 <= self.t_min < self.t_max <= 1000:
            raise PointSDError(f"need 0 <= t_min < t_max <= 1000, got t_min={self.t_min}, t_max={self.t_max}")
        if not 0.0 <= self.mix_prob <= 1.0:
            raise PointSDError(f"mix_prob must be in [0, 1], got {self.mix_prob}")
        if self.mix_resize not in MIX_RESIZES:
            raise PointSDError(f"mix_resize must be one of {MIX_RESIZES}, got {self.mix_resize!r}")


@dataclass(kw_only=True)
class PretrainConfig(TrainingConfig):
    """Everything one pre-training run needs (the CLI fills it from flags).

    ``probe_every``: probe every N optimiser steps, 0 = at the end of every epoch, None = never.
    ``render_root`` defaults to ``data_root/rgb_depth_rendered_images``. ``point_subset``: which stored
    points a sample uses, ``stage2_grouping`` how teacher and student get their input
    (:data:`pointsd.train.presets.POINT_SUBSETS`, ``STAGE2_GROUPINGS``; the first of each is the official).
    """

    stage: int
    sd_dir: Path
    data_root: Path | None = None
    render_root: Path | None = None
    stage1_dir: Path | None = None
    grad_accum: int = 1
    image_size: int
    view: int = 0
    noise: NoiseConfig
    backbone: BackboneConfig
    resampler: ResamplerConfig = field(default_factory=ResamplerConfig)
    probe: ProbeConfig
    probe_every: int | None
    teacher_mode: str = "down"
    point_subset: str = "first"
    stage2_grouping: str = "per_encoder"
    profile: str = "paper"
    data_profile: str = "real"
    log_every: int = 10

    def validate(self, sd_folder: bool = True) -> None:
        """Raise :class:`PointSDError` naming the path or key that is wrong (``sd_folder``: check ``sd_dir``)."""
        if self.stage not in (1, 2):
            raise PointSDError(f"stage must be 1 or 2, got {self.stage}")
        if sd_folder:
            check_sd_folder(self.sd_dir)
        if self.stage == 2:
            if self.stage1_dir is None:
                raise PointSDError("stage 2 needs --stage1 DIR (the stage-1 output folder)")
            for name in STAGE1_FILES:
                if not (Path(self.stage1_dir) / name).is_file():
                    raise PointSDError(f"stage-1 checkpoint missing: {Path(self.stage1_dir) / name}")
        if self.point_subset not in POINT_SUBSETS:
            raise PointSDError(f"point_subset must be one of {POINT_SUBSETS}, got {self.point_subset!r}")
        if self.stage2_grouping not in STAGE2_GROUPINGS:
            raise PointSDError(f"stage2_grouping must be one of {STAGE2_GROUPINGS}, got {self.stage2_grouping!r}")
        if self.batch_size < 2:
            raise PointSDError(f"batch_size must be >= 2 (patch mix pairs samples), got {self.batch_size}")


# ---------------------------------------------------------------- steps


def group_random_start(backbone: PointTransformer, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Group ``points (B,N,3)`` with FPS starting at a random point of each cloud (the official pre-training's
    ``fps`` draws its start; the backbone's starts at the first point) → ``(B,G,K,3)``, ``(B,G,3)``."""
    B, N, _ = points.shape
    start = torch.randint(0, N, (B, 1), device=points.device)
    order = (torch.arange(N, device=points.device) + start) % N
    return backbone.group(torch.gather(points, 1, order.unsqueeze(-1).expand(-1, -1, 3)))


def encoder_input(
    backbone: PointTransformer, points: torch.Tensor, mixed: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """One point encoder's own input: grouped from a random start, patch slots swapped within pairs when
    ``mixed`` (its own ``lam`` and slots) → ``(neighborhood (B,G,K,3), center (B,G,3))``."""
    neighborhood, center = group_random_start(backbone, points)
    if mixed:
        neighborhood, center, _ = swap_slots(neighborhood, center)
    return neighborhood, center


def draw_mix(images: torch.Tensor, noise: NoiseConfig) -> tuple[torch.Tensor, bool]:
    """With probability ``noise.mix_prob`` join the pairs' images (patch mix) → ``(images, mixed)``."""
    if torch.rand(()).item() < noise.mix_prob:
        return mix_images(images, noise.mix_resize), True
    return images, False


def batch_latents(vae: AutoencoderKL, images: torch.Tensor, batch: dict[str, torch.Tensor], mixed: bool,
                  cache: LatentCache | None) -> torch.Tensor:
    """Scaled latents of the batch's ``images``: sampled from ``cache`` for unmixed views, else encoded."""
    if cache is not None and not mixed:
        return cache.sample(batch["index"], batch["flip"])
    return encode_latents(vae, images)


def stage1_loss(
    model: Stage1Model | torch.nn.Module, vae: AutoencoderKL, noise_scheduler: DDPMScheduler,
    batch: dict[str, torch.Tensor], noise: NoiseConfig, cache: LatentCache | None = None,
) -> torch.Tensor:
    """Denoising MSE of the point-conditioned UNet at ``t ~ U[t_min, t_max)``. ``model`` may be wrapped (DDP)."""
    inner = getattr(model, "module", model)
    images, mixed = draw_mix(batch["image"], noise)
    grouped = encoder_input(inner.backbone, batch["points"], mixed)
    latents = batch_latents(vae, images, batch, mixed, cache)
    eps = torch.randn_like(latents)
    t = torch.randint(noise.t_min, noise.t_max, (latents.shape[0],), device=latents.device)
    noisy = noise_scheduler.add_noise(latents, eps, t)
    pred = model(*grouped, noisy, t)
    return F.mse_loss(pred.float(), eps.float())


def stage2_loss(
    student: Stage2Student | torch.nn.Module, teacher: Stage2Teacher, vae: AutoencoderKL,
    batch: dict[str, torch.Tensor], noise: NoiseConfig, cache: LatentCache | None = None,
    grouping: str = "per_encoder",
) -> torch.Tensor:
    """MSE between the student's resampled feature and the teacher's last-down-block feature.

    One mix decision and one (mixed) image per batch; ``grouping`` (``presets.STAGE2_GROUPINGS``):
    ``per_encoder`` gives teacher and student their own grouping and patch mix, ``shared`` one for both.
    """
    inner = getattr(student, "module", student)
    images, mixed = draw_mix(batch["image"], noise)
    grouped = encoder_input(inner.backbone, batch["points"], mixed)
    teacher_grouped = grouped if grouping == "shared" else encoder_input(
        teacher.stage1.backbone, batch["points"], mixed)
    target = teacher(*teacher_grouped, batch_latents(vae, images, batch, mixed, cache))
    pred = student(*grouped)
    return F.mse_loss(pred.float(), target.float())


# ---------------------------------------------------------------- run


@dataclass
class ProbeSets:
    """Frozen-feature probe data: ``(points (N,3), label)`` datasets."""

    train: Dataset
    test: Dataset


def default_datasets(cfg: PretrainConfig) -> tuple[Dataset, ProbeSets | None]:
    """ShapeNet-55 + ULIP renders for training, ModelNet40 for the probe (unless ``probe_every`` is None)."""
    from pointsd.data.modelnet40 import ModelNet40
    from pointsd.data.paths import SHAPENET55, ULIP_RENDERS
    from pointsd.data.ulip_renders import ShapeNet55Pretrain

    if cfg.data_root is None:
        raise PointSDError("pre-training needs --data-root")
    root = Path(cfg.data_root)
    renders = Path(cfg.render_root) if cfg.render_root is not None else root / ULIP_RENDERS
    train_set = ShapeNet55Pretrain(
        root / SHAPENET55, renders, "train", cfg.npoints, cfg.image_size, cfg.view, True, cfg.point_subset
    )
    probe = None
    if cfg.probe_every is not None:
        n = cfg.probe.num_points
        probe = ProbeSets(ModelNet40(root, "train", num_points=n), ModelNet40(root, "test", num_points=n))
    return train_set, probe


@dataclass
class PretrainModels:
    """What one stage trains and runs: the model handed to accelerate, its trained parts, the frozen ones."""

    model: torch.nn.Module
    trained: dict[str, torch.nn.Module]
    vae: AutoencoderKL
    noise_scheduler: DDPMScheduler
    teacher: Stage2Teacher | None


def build_models(cfg: PretrainConfig, plan: SpeedPlan, device: torch.device,
                 sd: StableDiffusionParts | None = None) -> PretrainModels:
    """The stage's models on ``device`` from ``sd`` (default: loaded from ``cfg.sd_dir``); the frozen SD
    weights in bf16 and the dense parts compiled when ``plan`` says so (:mod:`pointsd.train.speed`)."""
    sd = sd or load_stable_diffusion(cfg.sd_dir)
    frozen = torch.bfloat16 if plan.frozen_bf16 else torch.float32
    vae = sd.vae.to(device)
    cast_frozen_(vae, frozen)
    if cfg.stage == 1:
        model = Stage1Model(cfg.backbone, sd.unet)
        cast_frozen_(model.unet, frozen)
        trained = {"backbone": model.backbone, "global_proj": model.global_proj,
                   "adapter_modules": model.adapter_modules()}
        teacher = None
        if plan.compile:
            model.unet.compile()
    else:
        teacher_cfg = read_backbone_config(cfg.stage1_dir, default=cfg.backbone)
        teacher = Stage2Teacher(load_stage1(cfg.stage1_dir, sd.unet, teacher_cfg), sd.noise_scheduler,
                                cfg.teacher_mode)
        teacher.to(device=device, dtype=frozen)
        model = Stage2Student(cfg.backbone, teacher.target_dim, cfg.resampler)
        trained = {"backbone": model.backbone, "resampler": model.resampler}
        if plan.compile:
            teacher.compile()  # the point tokens and the target path, grouping ops included (custom ops)
            model.resampler.compile()
    if plan.compile:
        model.backbone.compile()
    return PretrainModels(model, trained, vae, sd.noise_scheduler, teacher)


def run_pretrain(
    cfg: PretrainConfig, train_set: Dataset | None = None, probe_sets: ProbeSets | None = None,
    plan: SpeedPlan | None = None, sd: StableDiffusionParts | None = None,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train stage ``cfg.stage`` in ``out_dir``'s work folder (resuming from its ``state`` when present) and
    publish it as ``out_dir`` (:mod:`pointsd.utils.staging`); returns the summary written.

    ``plan`` (default: ``cfg.speed_plan()``) says what runs for speed; ``sd`` (default: loaded from
    ``cfg.sd_dir``) the Stable Diffusion parts; ``on_step`` goes to :func:`pointsd.train.loop.train`.
    A finished run of the same configuration and data (:mod:`pointsd.utils.run_config`) returns its summary
    unchanged. Nothing is written into the folder before the data, the SD folder and the stage-1 checkpoint
    loaded.
    """
    cfg.validate(sd_folder=sd is None)
    set_seed(cfg.seed)
    if train_set is None:
        train_set, probe_sets = default_datasets(cfg)
    read = data_record.fingerprint({"train": train_set, **({"probe_train": probe_sets.train,
                                                             "probe_test": probe_sets.test} if probe_sets else {})})
    finished = check_run_folder(Path(cfg.out_dir), asdict(cfg), read, result=SUMMARY, overwrite=cfg.overwrite)
    if finished is not None:
        return finished
    work = staging.work_folder(Path(cfg.out_dir), asdict(cfg), read)
    plan = plan or cfg.speed_plan()
    accelerator = accelerator_for(cfg.device, plan, cfg.grad_accum)
    built = build_models(cfg, plan, accelerator.device, sd)
    if plan.num_workers and hasattr(train_set, "preload_views"):
        train_set.preload_views(plan.num_workers)  # decoded once, shared by the forked workers
    params = [p for m in built.trained.values() for p in m.parameters()]
    optimizer = plan.adamw(params, lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay, eps=1e-8)
    # every sample every epoch, the short last batch included (the official loader's default drop_last=False)
    loader = shuffled_loader(train_set, cfg.batch_size, cfg.seed, plan, drop_last=False)
    if len(loader) == 0:
        raise PointSDError("the pre-training set is empty")
    if accelerator.is_main_process:
        record_run(work, asdict(cfg), read, result=SUMMARY, overwrite=cfg.overwrite)
    accelerator.wait_for_everyone()
    wrapped, optimizer, loader = accelerator.prepare(built.model, optimizer, loader)
    steps = steps_per_epoch(loader, accelerator, cfg.max_steps_per_epoch)
    scheduler = get_cosine_schedule_with_warmup(optimizer, cfg.warmup_epochs * steps, cfg.epochs * steps)
    cache = None
    if plan.cache_latents and hasattr(train_set, "view_image"):
        with accelerator.autocast():  # the precision of the per-step encodes
            cache = LatentCache(built.vae, train_set, cfg.batch_size)
    step_fn = make_step(cfg, accelerator.autocast, wrapped, built, cache)
    save = _make_saver(cfg, built.model)
    eval_fn = None
    if probe_sets is not None and cfg.probe_every is not None:
        def eval_fn() -> dict[str, Any]:
            return probe_accuracy(built.model.backbone, probe_sets.train, probe_sets.test, cfg.probe,
                                  accelerator.device)

    loop_cfg = LoopConfig(
        out_dir=work, epochs=cfg.epochs, grad_clip=cfg.grad_clip, log_every=cfg.log_every,
        eval_every=cfg.probe_every or 0, select_metric="probe_acc" if eval_fn else None,
        progress=cfg.progress, max_steps_per_epoch=cfg.max_steps_per_epoch, seed=cfg.seed,
        check_every_step=not plan.deferred_checks,
    )
    state = train(
        accelerator, loop_cfg, modules=built.trained, optimizer=optimizer, scheduler=scheduler, loader=loader,
        step_fn=step_fn, eval_fn=eval_fn, on_best=lambda _record: save(work / "best"), on_step=on_step,
    )
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return {}
    save(work)
    conditioning = None
    if cfg.stage == 1:
        conditioning = conditioning_losses(built.model, built.vae, built.noise_scheduler, train_set,
                                           (cfg.noise.t_min, cfg.noise.t_max), cfg.seed, autocast=accelerator.autocast)
    summary = _write_summary(cfg, plan, accelerator, state, work, conditioning)
    staging.publish(work, Path(cfg.out_dir))
    return summary


def make_step(
    cfg: PretrainConfig, autocast: Callable[[], AbstractContextManager[Any]], model: torch.nn.Module,
    built: PretrainModels, cache: LatentCache | None,
) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """The stage's loss of a batch under ``autocast()`` (``model``: the trained model, possibly wrapped)."""
    def step(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with autocast():
            if built.teacher is None:
                return stage1_loss(model, built.vae, built.noise_scheduler, batch, cfg.noise, cache)
            return stage2_loss(model, built.teacher, built.vae, batch, cfg.noise, cache, cfg.stage2_grouping)
    return step


def _make_saver(cfg: PretrainConfig, model: torch.nn.Module) -> Callable[[Path], None]:
    def save(folder: Path) -> None:
        if cfg.stage == 1:
            save_stage1(folder, model, cfg.backbone)
        else:
            save_stage2(folder, model, cfg.backbone)
    return save


def _write_summary(cfg: PretrainConfig, plan: SpeedPlan, accelerator: Accelerator, state: Any,
                   folder: Path, conditioning: dict[str, float] | None) -> dict[str, Any]:
    """``summary.json``; stage 1's ``conditioning``: its denoising MSE with the point tokens and with zero
    tokens (:mod:`pointsd.train.conditioning`), stage 2's None."""
    last_loss = _last_logged_loss(folder / "metrics.jsonl")
    summary = {
        "task": f"pretrain-stage{cfg.stage}",
        "meta": run_metadata(profile=cfg.profile, protocol=cfg.probe.policy, seed=cfg.seed,
                             device=accelerator.device, data_profile=cfg.data_profile,
                             speed=plan.record(), num_processes=accelerator.num_processes,
                             grad_accum=cfg.grad_accum),
        "protocol": cfg.probe.policy,
        "steps": state.step,
        "epochs": state.epoch,
        "final_loss": last_loss,
        "best_probe_acc": state.best_score if state.best else None,
        "best": state.best or None,
        "conditioning": conditioning,
        "config": json_io.plain(asdict(cfg)),
    }
    json_io.write_json(folder / SUMMARY, summary)
    return summary


def _last_logged_loss(path: Path) -> float | None:
    records = json_io.parse_json_lines(path.read_text(), path) if path.is_file() else []
    losses = [float(record["loss"]) for record in records if "loss" in record]
    return losses[-1] if losses else None
