"""NVlabs network pickles (stylegan2-ada-pytorch, stylegan3: ``network-snapshot-*.pkl``) read
without running anything stored in them.

NVlabs' own loader unpickles the file with Python's pickle, which imports and executes the
network source stored in every record (``module_src``) and whatever else the byte stream asks
for. Here a restricted unpickler resolves only an allow-list of names: tensor and storage
rebuilders (storages go through ``torch.load(weights_only=True)``), plain containers, numpy
scalars/arrays, and NVlabs' persistence hook, which is replaced by a function that returns an
inert :class:`StoredNetwork` record (class name, constructor arguments, tensors). The stored
source is never read. A known architecture is then rebuilt from its arguments by ganeval's own
implementation and given the tensors (``load_state_dict(strict=True)``); anything else is a
one-line :class:`~ganeval.errors.BadInput`."""
from __future__ import annotations

import collections
import importlib
import io
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ganeval.errors import BadInput

PERSISTENCE_HOOK = ("torch_utils.persistence", "_reconstruct_persistent_obj")

# Records store the bare class name (``Generator``) and the module's source, which is never read;
# the generation is told apart by the tensors it holds. architecture → "module:function" building
# ganeval's module from (init_kwargs, state_dict).
ARCHITECTURES: dict[str, str] = {
    "StyleGAN2": "ganeval.models.stylegan2:from_nvlabs",
    "StyleGAN3": "ganeval.models.stylegan3:from_nvlabs",
}


def architecture_of(class_name: str, tensors: dict[str, torch.Tensor]) -> str | None:
    """StyleGAN2 (stylegan2-ada-pytorch, or stylegan3's ``--cfg stylegan2``) or StyleGAN3 (-T/-R)."""
    if class_name != "Generator":
        return None
    if "synthesis.input.freqs" in tensors:
        return "StyleGAN3"
    if "synthesis.b4.const" in tensors:
        return "StyleGAN2"
    return None


@dataclass
class StoredNetwork:
    """What a persistence record holds, as data: nothing of it is executed."""

    class_name: str
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def init_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.state.get("_init_kwargs") or {})
        args = self.state.get("_init_args") or ()
        if args:
            kwargs["_args"] = tuple(args)
        return kwargs

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """The state_dict the original module would give (parameters, then buffers, then children)."""
        out: dict[str, torch.Tensor] = {}
        for group in ("_parameters", "_buffers"):
            for name, value in (self.state.get(group) or {}).items():
                if value is not None:
                    out[prefix + name] = value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(value)
        for name, child in (self.state.get("_modules") or {}).items():
            if isinstance(child, StoredNetwork):
                out.update(child.tensors(f"{prefix}{name}."))
            elif child is not None:
                raise BadInput(f"submodule {prefix}{name} is a {type(child).__name__}, not a stored network")
        return out


class EasyDict(dict):
    """Stands in for ``dnnlib.util.EasyDict`` (a dict with attribute access) in stored kwargs."""


def _persistent(meta: Any) -> StoredNetwork:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise BadInput("a persistence record that is not a stored class")
    state = meta.get("state")
    if not isinstance(state, dict):
        raise BadInput(f"stored {meta['class_name']} has no readable state")
    return StoredNetwork(meta["class_name"], state)


def _storage_from_bytes(data: bytes) -> Any:
    if not isinstance(data, (bytes, bytearray)):
        raise BadInput("a tensor storage that is not bytes")
    return torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool = False, backward_hooks: Any = None, *state: Any):
    return nn.Parameter(data, requires_grad=False)


SAFE_GLOBALS: dict[tuple[str, str], Callable[..., Any] | type] = {
    PERSISTENCE_HOOK: _persistent,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): getattr(torch._utils, "_rebuild_tensor_v3", torch._utils._rebuild_tensor_v2),
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
}

def _numpy_scalar(dtype: np.dtype, data: bytes | None = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise BadInput("a numpy scalar of an object dtype")
    return np.frombuffer(data or b"", dtype=dtype, count=1)[0] if data else dtype.type()


def _numpy_reconstruct(cls: type, shape: Any, dtype: Any) -> np.ndarray:
    if cls is not np.ndarray:
        raise BadInput(f"a numpy array of class {getattr(cls, '__name__', cls)!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


for _numpy_core in ("numpy.core.multiarray", "numpy._core.multiarray"):
    SAFE_GLOBALS[(_numpy_core, "scalar")] = _numpy_scalar
    SAFE_GLOBALS[(_numpy_core, "_reconstruct")] = _numpy_reconstruct
del _numpy_core
for _dtype in ("float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool"):
    SAFE_GLOBALS[("torch", _dtype)] = getattr(torch, _dtype)
SAFE_GLOBALS[("torch", "Size")] = torch.Size
del _dtype


class RestrictedUnpickler(pickle.Unpickler):
    """Builds only what :data:`SAFE_GLOBALS` names; every other global is refused by name."""

    def find_class(self, module: str, name: str) -> Any:
        found = SAFE_GLOBALS.get((module, name))
        if found is None:
            raise BadInput(f"refers to {module}.{name}, which is not part of a network snapshot; nothing was run")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise BadInput("uses persistent ids (a torch.save file, not an NVlabs pickle)")


def _read(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f).load()
    except BadInput as exc:
        raise BadInput(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RuntimeError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        kind = "truncated" if isinstance(exc, EOFError) else "not a readable pickle"
        raise BadInput(f"{path}: {kind} ({type(exc).__name__}: {str(exc)[:120]})") from None


def is_nvlabs_pickle(path: str | os.PathLike) -> bool:
    """A cheap sniff (no unpickling): a pickle stream that names NVlabs' persistence hook."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return head[:1] == b"\x80" and b"_reconstruct_persistent_obj" in head


def _builder(architecture: str) -> Callable[[dict[str, Any], dict[str, torch.Tensor]], nn.Module]:
    module, function = ARCHITECTURES[architecture].split(":")
    return getattr(importlib.import_module(module), function)


def load_nvlabs_pickle(path: str | os.PathLike, key: str = "G_ema") -> nn.Module:
    """The network stored under ``key`` (G_ema by default), rebuilt by ganeval, in eval mode."""
    path = Path(path)
    data = _read(path)
    if not isinstance(data, dict):
        raise BadInput(f"{path}: holds a {type(data).__name__}, not an NVlabs snapshot (a dict with G_ema)")
    record = data.get(key)
    if not isinstance(record, StoredNetwork):
        keys = ", ".join(str(k) for k in data)
        raise BadInput(f"{path}: no network under {key!r} (found: {keys or 'nothing'})")
    try:
        tensors = record.tensors()
        architecture = architecture_of(record.class_name, tensors)
        if architecture is None:
            raise BadInput(f"{key} is a {record.class_name} that ganeval does not know "
                           f"(known: {', '.join(ARCHITECTURES)} generators)")
        net = _builder(architecture)(record.init_kwargs, tensors)
    except BadInput as exc:
        raise BadInput(f"{path}: {exc}") from None
    return net.eval().requires_grad_(False)
