"""The one checkpoint format of the model zoo: a single file, written atomically.

Contents (plain dicts, lists, str, int, float and tensors only, so it loads with
``torch.load(weights_only=True)``):

    format        "ganeval-gan-checkpoint"
    version       1
    model         family name
    config        {"model": ModelConfig fields, "train": TrainConfig fields}
    step          generator steps done
    batches_seen  real batches drawn per process (decides the data order on resume)
    G, D, G_ema   state dicts
    opt_G, opt_D  optimiser state dicts
    scaler_G, scaler_D  AMP grad-scaler state dicts ({} when unused)
    rng           one dict per process: {"torch": ByteTensor, "cuda": ByteTensor | absent,
                  "noise": ByteTensor (the generator that draws z and GP mixes)}
    world_size    processes that trained it
    objective     the training objective's extra state ({} or absent for the plain GAN step;
                  e.g. ADA's p and the path-length mean for stylegan2)

    config.model.options holds family-specific settings (absent in older checkpoints: {}).
    Families with more than one generator or discriminator (img2img) keep them in one
    container module each, so G, D and G_ema stay single state dicts.
"""
from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganeval.atomic import torch_save
from ganeval.errors import BadInput
from ganeval.models.spec import ModelConfig

FORMAT = "ganeval-gan-checkpoint"
VERSION = 1
REQUIRED = ("model", "config", "step", "G", "D", "G_ema")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` (without the tag) atomically, adding the format tag and version."""
    torch_save(path, {"format": FORMAT, "version": VERSION, **payload})


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint; a missing, corrupt or foreign file is BadInput (one line)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise BadInput(f"{path}: no such checkpoint")
    if path.is_dir():
        candidate = path / "checkpoint.pt"
        if not candidate.is_file():
            raise BadInput(f"{path}: a folder without checkpoint.pt; give a checkpoint file or a run folder")
        path = candidate
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pickle-protocol chatter on foreign files
            data = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise BadInput(f"{path}: not a readable checkpoint (corrupt, or a pickle that is not plain weights)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError,
            AttributeError, TypeError, KeyError) as err:
        raise BadInput(f"{path}: not a readable checkpoint (corrupt or truncated: {_short(err)})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadInput(f"{path}: not a ganeval GAN checkpoint (no '{FORMAT}' tag); "
                       "checkpoints come from `ganeval train`")
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise BadInput(f"{path}: checkpoint format version {version!r} is newer than this ganeval reads ({VERSION}); upgrade ganeval")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise BadInput(f"{path}: incomplete checkpoint (missing {', '.join(missing)})")
    data["path"] = str(path)
    return data


def model_config(data: dict[str, Any]) -> ModelConfig:
    try:
        return ModelConfig.from_dict(data["config"]["model"])
    except (KeyError, TypeError) as err:
        raise BadInput(f"{data.get('path', 'checkpoint')}: checkpoint has no usable model config ({err})") from None


def load_state(module: nn.Module, state: dict[str, torch.Tensor], what: str, path: str) -> None:
    """load_state_dict with a one-line error when the weights do not fit the architecture."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise BadInput(f"{path}: {what} weights do not match the model in its config "
                       f"({_state_mismatch(module, state) or _short(err)})") from None


def _short(err: BaseException, limit: int = 200) -> str:
    """An exception as one line that ends at a word, never mid-sentence."""
    text = " ".join(str(err).split()) or type(err).__name__
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def _state_mismatch(module: nn.Module, state: Any) -> str | None:
    """Which keys are missing, unexpected or of another shape: what a user needs to see."""
    if not isinstance(state, dict):
        return None
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing, e.g. {missing[0]}")
    if extra:
        parts.append(f"{len(extra)} unexpected, e.g. {extra[0]}")
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} of another shape, e.g. {k}: {tuple(state[k].shape)} in the file, "
                     f"{tuple(own[k].shape)} in the model")
    return "; ".join(parts) or None


def load_generator(checkpoint: str | os.PathLike | dict[str, Any], device: str | torch.device = "cpu",
                   use_ema: bool = True) -> tuple[nn.Module, ModelConfig]:
    """The generator of a checkpoint (EMA weights by default), in eval mode on ``device``."""
    from ganeval.models.registry import build_generator

    data = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    cfg = model_config(data)
    generator = build_generator(cfg)
    key = "G_ema" if use_ema else "G"
    load_state(generator, data[key], key, data.get("path", "checkpoint"))
    generator = generator.to(device, memory_format=torch.channels_last)  # as trained: same kernels, same pixels
    return generator.eval().requires_grad_(False), cfg


def load_discriminator(checkpoint: str | os.PathLike | dict[str, Any]) -> nn.Module:
    """The discriminator of a checkpoint, in eval mode on the CPU."""
    from ganeval.models.registry import build_models

    data = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    D = build_models(model_config(data))[1]
    load_state(D, data["D"], "D", data.get("path", "checkpoint"))
    return D.eval().requires_grad_(False)
