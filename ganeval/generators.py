"""Any generator, one object: ``load_generator(x)`` takes a ganeval checkpoint, an NVlabs
network pickle (stylegan2-ada-pytorch, stylegan3; read without running anything stored in it),
a TorchScript file, a user's ``module:function`` (an explicit opt-in that runs that code), a
callable ``G(z)`` or an ``nn.Module``, and returns a :class:`Generator` whose ``sample`` yields
uint8 N×H×W×3 batches through the one sampler (:mod:`ganeval.sampler`).

Every command that draws images (``sample``, ``fid --generator``, ``nearest --generator``,
``compare``, ``interpolate``, ``style-mix``, ``inspect``, ``study init --fake``) and the Python
API go through here, so the same generator and seed give the same image everywhere.

Model code is imported only when a checkpoint or a pickle is loaded (the layer contract's one
exception for this module): the measuring core itself never needs it."""
from __future__ import annotations

import importlib
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from ganeval.device import resolve_device
from ganeval.errors import BadInput
from ganeval.sampler import check_batch_size, is_style_based, renderer, sample_batches, seed_list


@dataclass
class Generator:
    """A loaded generator: its latent size, what it takes, and one way to draw from it.

    ``style`` is True for style-based networks (StyleGAN2/3 from NVlabs or ganeval), which take
    truncation, class labels and a noise mode and have ``mapping``/``synthesis``."""

    net: Callable[..., torch.Tensor]
    z_dim: int
    label: str
    style: bool = False
    c_dim: int = 0
    resolution: int | None = None
    kind: str = "callable"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def module(self) -> torch.nn.Module | None:
        return self.net if isinstance(self.net, torch.nn.Module) else None

    @property
    def num_ws(self) -> int | None:
        return getattr(self.net, "num_ws", None) if self.style else None

    def to(self, device: torch.device) -> "Generator":
        if self.module is not None:
            self.net = self.module.to(device)
        return self

    def device(self) -> torch.device:
        module = self.module
        if module is not None:
            for t in module.parameters():
                return t.device
            for t in module.buffers():
                return t.device
        return torch.device("cpu")

    def label_vector(self, class_idx: int | None) -> torch.Tensor | None:
        """The one-hot class label of a conditional generator (None for an unconditional one)."""
        if not self.c_dim:
            if class_idx is not None:
                raise BadInput(f"{self.label} is unconditional: --class does not apply")
            return None
        if class_idx is None:
            raise BadInput(f"{self.label} is conditional ({self.c_dim} classes): give --class 0..{self.c_dim - 1}")
        if not 0 <= class_idx < self.c_dim:
            raise BadInput(f"--class {class_idx} is outside 0..{self.c_dim - 1}")
        c = torch.zeros(self.c_dim)
        c[class_idx] = 1
        return c

    def sample(self, seeds: str | Sequence[int] | None = None, n: int | None = None, seed: int = 0,
               truncation: float = 1.0, noise_mode: str = "const", class_idx: int | None = None,
               batch_size: int = 32, device: str | torch.device | None = None,
               truncation_cutoff: int | None = None, show_progress: bool = False) -> Iterator[torch.Tensor]:
        """uint8 N×H×W×3 CPU batches of the images of ``seeds`` (or of ``n`` seeds from ``seed``).
        Image i depends on its seed alone: any ``batch_size`` gives the same pixels."""
        seeds = seed_list(seeds, n, seed)
        check_batch_size(batch_size)
        if device is not None:
            self.to(resolve_device(device))
        render = renderer(self.net, truncation, noise_mode, self.label_vector(class_idx), truncation_cutoff, self.label)
        return sample_batches(render, self.z_dim, seeds, batch_size, self.device(), self.label, show_progress)


def _from_checkpoint(path: Path | dict, device: torch.device, use_ema: bool) -> Generator:
    from ganeval.models.checkpoint import load_checkpoint, load_generator as load_ganeval_generator
    from ganeval.models.sampling import require_latent_model

    data = path if isinstance(path, dict) else load_checkpoint(path)
    require_latent_model(str(data.get("model", "")), "sampling")
    net, cfg = load_ganeval_generator(data, device, use_ema=use_ema)
    return Generator(net, cfg.z_dim, cfg.model, style=is_style_based(net), c_dim=getattr(net, "c_dim", 0),
                     resolution=cfg.resolution, kind="ganeval", info={"model": cfg.model, "step": int(data.get("step", 0))})


def _from_nvlabs(path: Path, device: torch.device) -> Generator:
    from ganeval.models.nvlabs import load_nvlabs_pickle

    net = load_nvlabs_pickle(path).to(device)
    return Generator(net, int(net.z_dim), path.name, style=True, c_dim=int(getattr(net, "c_dim", 0)),
                     resolution=int(net.img_resolution), kind="nvlabs", info={"architecture": type(net).__name__})


def _from_torchscript(path: Path, device: torch.device, z_dim: int | None) -> Generator:
    try:
        net = torch.jit.load(str(path), map_location=device).eval()
    except (RuntimeError, ValueError) as exc:
        raise BadInput(f"{path}: not a readable TorchScript file ({str(exc).splitlines()[0][:120]})") from None
    z = z_dim or getattr(net, "z_dim", None)
    if not z:
        raise BadInput(f"{path}: a TorchScript generator needs its latent size (--z-dim)")
    return Generator(net, int(z), path.name, kind="torchscript")


def _from_user_code(spec: str, z_dim: int | None) -> Generator:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise BadInput(f"--generator {spec!r}: expected module:function (e.g. mygan.models:build_G)")
    sys.path.insert(0, os.getcwd())
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise BadInput(f"--generator {spec}: {exc}") from None
    finally:
        sys.path.remove(os.getcwd())
    if isinstance(obj, type) or (callable(obj) and not isinstance(obj, torch.nn.Module)
                                 and getattr(obj, "__code__", None) is not None and obj.__code__.co_argcount == 0):
        obj = obj()  # a factory: build_G() → the network
    return load_generator(obj, z_dim=z_dim, label=spec)


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives hold compiled code (``code/``) and ``constants.pkl``; torch.save files do not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(name.endswith("constants.pkl") for name in zf.namelist())


def is_generator_file(source: str | os.PathLike) -> bool:
    """A path that names a generator rather than images: a ganeval checkpoint or run folder, an
    NVlabs pickle or a TorchScript file."""
    path = Path(source).expanduser()
    if path.is_dir():
        return (path / "checkpoint.pt").is_file()
    return path.is_file() and path.suffix.lower() in (".pkl", ".pt", ".pth", ".ckpt")


def load_generator(source: Any, *, z_dim: int | None = None, device: str | torch.device = "auto",
                   use_ema: bool = True, label: str | None = None) -> Generator:
    """One :class:`Generator` from a checkpoint path, an NVlabs ``.pkl``, a TorchScript file,
    ``"module:function"``, a callable ``G(z)`` (needs ``z_dim``) or an ``nn.Module``."""
    if isinstance(source, Generator):
        return source
    dev = resolve_device(device)
    if isinstance(source, dict) and "G_ema" in source:  # a checkpoint payload in memory (training)
        return _from_checkpoint(source, dev, use_ema)
    if isinstance(source, str) and ":" in source and not Path(source).exists() and not source.startswith(("/", ".")):
        return _from_user_code(source, z_dim)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.exists():
            raise BadInput(f"{path}: no such checkpoint or generator file")
        if path.is_file():
            from ganeval.models.nvlabs import is_nvlabs_pickle

            if is_nvlabs_pickle(path):
                return _from_nvlabs(path, dev)
            if path.suffix == ".pkl":
                raise BadInput(f"{path}: a pickle that is not an NVlabs network snapshot; nothing was loaded")
            if _is_torchscript(path):
                return _from_torchscript(path, dev, z_dim)
        return _from_checkpoint(path, dev, use_ema)
    if isinstance(source, torch.nn.Module) or callable(source):
        style = is_style_based(source)
        z = z_dim or getattr(source, "z_dim", None)
        if not z:
            raise BadInput(f"{label or 'the generator'}: a generator G(z) needs its latent size (z_dim=...)")
        if isinstance(source, torch.nn.Module):
            source = source.to(dev).eval()
        return Generator(source, int(z), label or getattr(source, "__name__", type(source).__name__), style=style,
                         c_dim=int(getattr(source, "c_dim", 0) or 0), kind="module" if isinstance(source, torch.nn.Module) else "callable")
    raise BadInput(f"a generator must be a checkpoint, an NVlabs .pkl, a TorchScript file, module:function "
                   f"or a callable G(z); got {type(source).__name__}")


def sample(source: Any, seeds: str | Sequence[int] | None = None, n: int | None = None, seed: int = 0,
           truncation: float = 1.0, noise_mode: str = "const", class_idx: int | None = None, batch_size: int = 32,
           device: str | torch.device = "auto", z_dim: int | None = None) -> torch.Tensor:
    """All images of ``seeds`` (or ``n`` seeds from ``seed``) as one uint8 N×H×W×3 tensor."""
    G = load_generator(source, z_dim=z_dim, device=device)
    parts = list(G.sample(seeds, n, seed, truncation, noise_mode, class_idx, batch_size))
    return torch.cat(parts) if parts else torch.empty(0, 0, 0, 3, dtype=torch.uint8)
