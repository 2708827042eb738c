"""Load every public checkpoint layout of the backbone safely, and save it in the official one.

Accepted layouts (wrappers may nest): a plain state dict (PointSD ``ckpt-stage{1,2}.pt``),
``{"base_model": ...}`` (Point-MAE), ``{"model": ...}``, ``{"state_dict": ...}``; keys may carry
any stack of the prefixes ``module.``, ``MAE_encoder.``, ``base_model.``, ``transformer_q.``,
``point_encoder.``. Files are read with ``torch.load(weights_only=True)`` or safetensors, so a
pickle carrying code is refused.
"""

from __future__ import annotations

import os
import pickle
import pickletools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import extract_model_from_parallel
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from pointsd.errors import PointSDError, first_line
from pointsd.utils.atomic import atomic_path, torch_save

WRAPPER_KEYS = ("base_model", "model", "state_dict")
STRIP_PREFIXES = ("module.", "MAE_encoder.", "base_model.", "transformer_q.", "point_encoder.")
BACKBONE_PARAMS = ("cls_token", "cls_pos")
BACKBONE_MODULES = ("encoder.", "reduce_dim.", "pos_embed.", "blocks.", "norm.")
PATCH_EMBED_OUT = "encoder.second_conv.3.weight"


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did, by key name (model naming)."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    loaded: int = 0


def is_backbone_key(key: str) -> bool:
    """Whether ``key`` (official naming, no prefix) belongs to the backbone of SPEC §1."""
    return key in BACKBONE_PARAMS or key.startswith(BACKBONE_MODULES)


def load_state_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint file without executing code: ``.safetensors`` or a torch file (weights only)."""
    path = Path(path)
    if not path.is_file():
        raise PointSDError(f"checkpoint {path}: no such file")
    try:
        if path.suffix == ".safetensors":
            obj = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc) or _parses_as_pickle(path):
            raise PointSDError(f"checkpoint {path}: refused, it holds objects other than tensors and containers "
                               "(weights-only load)") from exc
        raise PointSDError(
            f"checkpoint {path}: corrupt, not a torch or safetensors file; use an intact copy"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, SafetensorError) as exc:
        raise PointSDError(f"checkpoint {path}: unreadable or truncated ({first_line(exc)})") from exc
    if not isinstance(obj, dict):
        raise PointSDError(f"checkpoint {path}: holds a {type(obj).__name__}, not a state dict")
    return obj


def unwrap_state_dict(obj: Mapping[str, Any], source: str) -> dict[str, torch.Tensor]:
    """Find the state dict inside a checkpoint object and strip wrapper prefixes from its keys."""
    while not _is_tensor_dict(obj):
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            raise PointSDError(
                f"checkpoint {source}: not a state dict (top-level keys: {sorted(map(str, obj))[:8]}; "
                f"expected tensors or one of {list(WRAPPER_KEYS)})"
            )
        obj = inner
    state: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        name = _strip_prefixes(key)
        if name in state:
            raise PointSDError(f"checkpoint {source}: keys collide after removing prefixes: {name}")
        state[name] = value
    return state


def load_pretrained(
    model: nn.Module, path_or_state: str | os.PathLike | Mapping[str, Any], backbone_only: bool = True
) -> LoadReport:
    """Copy the checkpoint's backbone weights into ``model`` (any public layout; wrappers such as DDP
    or ``torch.compile`` around ``model`` are looked through).

    Non-backbone keys (MAE decoder, a fine-tuning head, ...) are not loaded: they are reported as
    ``unexpected``, or ``mismatched`` when the model has that key with another shape. With
    ``backbone_only=False`` (evaluating a fine-tuned checkpoint) non-backbone keys whose name and
    shape match the model are loaded too. Raises :class:`PointSDError` naming the source when no
    backbone key matches or a backbone key's shape differs (all such keys listed).
    """
    if isinstance(path_or_state, Mapping):
        source, raw = "<state dict>", path_or_state
    else:
        source, raw = str(path_or_state), load_state_file(path_or_state)
    state = unwrap_state_dict(raw, source)
    model = _unwrap_model(model)
    own = model.state_dict()
    take: dict[str, torch.Tensor] = {}
    report = LoadReport()
    wrong_shape: list[str] = []
    for key, value in state.items():
        if key not in own:
            report.unexpected.append(key)
        elif value.shape != own[key].shape:
            report.mismatched.append(key)
            if is_backbone_key(key):
                wrong_shape.append(f"{key} {tuple(value.shape)} vs model {tuple(own[key].shape)}")
        elif is_backbone_key(key) or not backbone_only:
            take[key] = value
        else:
            report.unexpected.append(key)
    layout = _layout_mismatch(state, own)
    if layout:
        raise PointSDError(f"checkpoint {source}: {layout}")
    if wrong_shape:
        raise PointSDError(f"checkpoint {source}: backbone shapes do not match the model: {'; '.join(wrong_shape)}")
    if not any(is_backbone_key(key) for key in take):
        raise PointSDError(
            f"checkpoint {source}: no backbone key of {type(model).__name__} found "
            f"(first checkpoint keys: {list(state)[:5]})"
        )
    model.load_state_dict(take, strict=False)
    report.missing = [key for key in own if key not in take]
    report.loaded = len(take)
    return report


def backbone_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The backbone entries of ``model.state_dict()`` in official naming, as contiguous CPU tensors."""
    return {
        key: value.detach().cpu().contiguous().clone()
        for key, value in _unwrap_model(model).state_dict().items()
        if is_backbone_key(key)
    }


def save_backbone(model: nn.Module, path: str | os.PathLike) -> None:
    """Write the backbone as a plain state dict (official layout) to ``path`` and a ``.safetensors`` twin."""
    path = Path(path)
    if path.suffix == ".safetensors":
        raise PointSDError(f"checkpoint {path}: give the torch file name (.pt); the .safetensors twin is added")
    state = backbone_state_dict(model)
    if not state:
        raise PointSDError(f"checkpoint {path}: {type(model).__name__} has no backbone parameters to save")
    torch_save(path, state)
    twin = path.with_suffix(".safetensors")
    with atomic_path(twin) as tmp:
        save_file(state, str(tmp))


def _layout_mismatch(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]) -> str:
    """Why checkpoint and model differ in the ``reduce_dim`` layout (Point-MAE has none), or ``""``.

    Loading across layouts would leave a random layer between pre-trained ones (or drop a trained
    one), so it is refused rather than reported as a missing / unexpected key.
    """
    last_conv = state.get(PATCH_EMBED_OUT)
    if "reduce_dim.weight" in own and "reduce_dim.weight" not in state and last_conv is not None:
        width = last_conv.shape[0]
        return (f"it has no reduce_dim (Point-MAE layout, patch embedding {width} wide) but the model has one; "
                f"build the model with --no-reduce-dim --encoder-dims {width} --trans-dim {width}")
    if "reduce_dim.weight" in state and "reduce_dim.weight" not in own:
        return (f"it has reduce_dim {tuple(state['reduce_dim.weight'].shape)} but the model was built without "
                f"one; drop --no-reduce-dim and set --encoder-dims {state['reduce_dim.weight'].shape[1]}")
    return ""


def _parses_as_pickle(path: Path) -> bool:
    """Whether ``path`` is a well-formed pickle stream (its opcodes are read, nothing is executed).

    Tells a pickle that the weights-only loader refused (it asks for code or objects) from random bytes.
    """
    try:
        with open(path, "rb") as fh:
            for _ in pickletools.genops(fh):
                pass
    except Exception:  # any parse failure means: not a pickle
        return False
    return True


def _unwrap_model(model: nn.Module) -> nn.Module:
    """The bare module inside DDP / DataParallel / ``torch.compile`` wrappers (their key prefixes gone)."""
    return extract_model_from_parallel(model, keep_torch_compile=False)


def _is_tensor_dict(obj: Mapping[str, Any]) -> bool:
    return len(obj) > 0 and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _strip_prefixes(key: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for prefix in STRIP_PREFIXES:
            if key.startswith(prefix):
                key, stripped = key[len(prefix):], True
    return key
