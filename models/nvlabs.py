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
one-line :class:`~ganeval.errors.BadInput`.

TensorFlow-era snapshots (StyleGAN v1 and StyleGAN2 in TensorFlow: a tuple G, D, Gs of
``dnnlib.tflib.network.Network``) are read the same way: each network becomes an inert
:class:`TFNetwork` record (its explicit keyword arguments, variables and sub-networks). Its
stored ``build_module_src``, which NVlabs' loader ``exec()``s, is never read."""
from __future__ import annotations

import collections
import contextlib
import importlib
import io
import os
import pickle
import sys
import types
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from ganeval.errors import BadInput

PERSISTENCE_HOOK = ("torch_utils.persistence", "_reconstruct_persistent_obj")
TF_NETWORK = ("dnnlib.tflib.network", "Network")  # the networks of NVlabs' TensorFlow repositories

# TensorFlow snapshots name the function that built the top network: → "module:function" building
# ganeval's module from (explicit kwargs, variables named mapping/…, synthesis/… and the top's own).
TF_ARCHITECTURES: dict[str, str] = {
    "G_style": "ganeval.models.stylegan:from_tf",
    "G_main": "ganeval.models.stylegan2:from_tf",
}
TF_KEYS = {"G": 0, "D": 1, "G_ema": 2, "Gs": 2}  # a TensorFlow snapshot is the tuple (G, D, Gs)

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
    loaded: dict[str, torch.Tensor] | None = None  # tensors of an exported file (load_state_dict)

    @property
    def init_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.state.get("_init_kwargs") or {})
        args = self.state.get("_init_args") or ()
        if args:
            kwargs["_args"] = tuple(args)
        return kwargs

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """The state_dict the original module would give (parameters, then buffers, then children)."""
        if self.loaded is not None:
            return {prefix + k: v for k, v in self.loaded.items()}
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


class TFNetwork:
    """What a pickled ``dnnlib.tflib.network.Network`` holds, as data: pickle builds the bare
    object and hands it the stored state, which is only kept."""

    state: dict[str, Any]

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or state.get("version") not in (2, 3, 4, 5):
            raise BadInput("a TensorFlow network record of an unknown format")
        self.state = state

    @property
    def build_func_name(self) -> str:
        return str(self.state.get("build_func_name", ""))

    @property
    def static_kwargs(self) -> dict[str, Any]:
        return dict(self.state.get("static_kwargs") or {})

    def variables(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Every variable of this network and its components, named ``component/…``."""
        out: dict[str, np.ndarray] = {}
        for item in self.state.get("variables") or []:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
                raise BadInput("a TensorFlow network whose variables are not (name, array) pairs")
            name, value = item
            if not isinstance(value, (np.ndarray, np.generic, float, int)):
                raise BadInput(f"variable {name} is a {type(value).__name__}, not an array")
            out[prefix + name] = np.asarray(value)
        for name, child in (self.state.get("components") or {}).items():
            if not isinstance(child, TFNetwork):
                raise BadInput(f"component {name} is a {type(child).__name__}, not a network")
            out.update(child.variables(f"{prefix}{name}/"))
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
SAFE_GLOBALS[TF_NETWORK] = TFNetwork
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
    """A cheap sniff (no unpickling): a pickle stream that names NVlabs' persistence hook (their
    snapshots) or NVlabs' network module (``ganeval export --nvlabs`` files)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return head[:1] == b"\x80" and (b"_reconstruct_persistent_obj" in head or b"training.networks" in head
                                     or b"dnnlib.tflib.network" in head)


def _builder(architecture: str) -> Callable[[dict[str, Any], dict[str, torch.Tensor]], nn.Module]:
    module, function = ARCHITECTURES[architecture].split(":")
    return getattr(importlib.import_module(module), function)


def load_nvlabs_pickle(path: str | os.PathLike, key: str = "G_ema") -> nn.Module:
    """The network stored under ``key`` (G_ema by default), rebuilt by ganeval, in eval mode."""
    path = Path(path)
    data = _read(path)
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetwork) for n in data):
        return _load_tf(path, data, key)
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


def _load_tf(path: Path, networks: tuple, key: str) -> nn.Module:
    if key not in TF_KEYS:
        raise BadInput(f"{path}: a TensorFlow snapshot holds G, D and Gs (G_ema), not {key!r}")
    net = networks[TF_KEYS[key]]
    name = net.build_func_name
    if name not in TF_ARCHITECTURES:
        raise BadInput(f"{path}: {key} of this TensorFlow snapshot is built by {name or 'an unnamed function'}, "
                       f"which ganeval does not know (known: {', '.join(TF_ARCHITECTURES)})")
    module, function = TF_ARCHITECTURES[name].split(":")
    kwargs = {}
    for component in (net.state.get("components") or {}).values():
        if isinstance(component, TFNetwork):
            kwargs.update(component.static_kwargs)
    kwargs.update(net.static_kwargs)
    try:
        G = getattr(importlib.import_module(module), function)(kwargs, net.variables())
    except BadInput as exc:
        raise BadInput(f"{path}: {exc}") from None
    return G.eval().requires_grad_(False)


# ------------------------------------------------------------------ export

# Where NVlabs' code defines each network, per repository: (module, class). stylegan2-ada-pytorch
# nests StyleGAN2's synthesis arguments; stylegan3 takes them flat. stylegan2-ada-pytorch has no
# StyleGAN3.
EXPORT_CLASSES = {
    "stylegan3": {"StyleGAN2": ("training.networks_stylegan2", "Generator"),
                  "StyleGAN3": ("training.networks_stylegan3", "Generator"),
                  "D": ("training.networks_stylegan2", "Discriminator")},
    "stylegan2-ada-pytorch": {"StyleGAN2": ("training.networks", "Generator"),
                              "D": ("training.networks", "Discriminator")},
}
EXPORT_TARGETS = tuple(EXPORT_CLASSES)


def _nvlabs_filter() -> torch.Tensor:
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = torch.outer(f, f)
    return f / f.sum()


@contextlib.contextmanager
def _classes_named(names: Iterable[tuple[str, str]]):
    """Stand-in classes that pickle writes as references to ``module.name`` (NVlabs' classes, which
    NVlabs' loader imports from its own checkout), registered only while the file is written;
    yields {(module, name): class}."""
    saved: dict[str, Any] = {}
    made: dict[tuple[str, str], type] = {}
    for module, name in names:
        parts = module.split(".")
        for m in (".".join(parts[:i + 1]) for i in range(len(parts))):
            if m not in saved:
                saved[m] = sys.modules.get(m)
                sys.modules[m] = types.ModuleType(m)
        made[(module, name)] = type(name, (), {"__module__": module, "__qualname__": name})
        setattr(sys.modules[module], name, made[(module, name)])
    try:
        yield made
    finally:
        for m, old in saved.items():
            if old is None:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = old


@contextlib.contextmanager
def _class_named(module: str, name: str):
    with _classes_named([(module, name)]) as made:
        yield made[(module, name)]


class _Call:
    """Pickles as ``fn(*args)``."""

    def __init__(self, fn: Any, *args: Any):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _stylegan2_record(G: nn.Module, nested: bool) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from ganeval.models.stylegan2 import _nvlabs_keys

    syn = G.synthesis
    synthesis = {"channel_base": syn.channel_base, "channel_max": syn.channel_max, "num_fp16_res": 0,
                 "conv_clamp": syn.conv_clamp, "architecture": "skip"}
    kwargs = {"z_dim": G.z_dim, "c_dim": G.c_dim, "w_dim": G.w_dim, "img_resolution": G.img_resolution,
              "img_channels": G.img_channels, "mapping_kwargs": {"num_layers": len(G.mapping.net)}}
    kwargs.update({"synthesis_kwargs": synthesis} if nested else synthesis)
    ours = G.state_dict()
    state = collections.OrderedDict((theirs, ours[mine].detach().cpu().clone()) for theirs, mine in
                                    _nvlabs_keys(len(G.mapping.net), G.c_dim, syn.resolutions).items())
    for res in syn.resolutions:
        convs = ["conv1"] if res == 4 else ["conv0", "conv1"]
        for owner in [f"synthesis.b{res}"] + [f"synthesis.b{res}.{c}" for c in convs]:
            state[f"{owner}.resample_filter"] = _nvlabs_filter()
    return kwargs, state


def _stylegan3_record(G: nn.Module) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    kwargs = dict(G.init_kwargs, num_fp16_res=0)
    state = collections.OrderedDict()
    for name, value in G.state_dict().items():
        if name.startswith("mapping.net."):
            index, _, param = name[len("mapping.net."):].partition(".")
            name = f"mapping.fc{index}.{param}"
        state[name] = value.detach().cpu().clone()
    return kwargs, state


def _discriminator_record(D: nn.Module) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """StyleGAN2's "resnet" discriminator as NVlabs names it (every conv stores its [1,3,3,1] filter)."""
    kwargs = {"c_dim": 0, "img_resolution": D.img_resolution, "img_channels": D.img_channels,
              "architecture": "resnet", "channel_base": D.channel_base, "channel_max": D.channel_max,
              "num_fp16_res": 0, "conv_clamp": None, "epilogue_kwargs": {"mbstd_group_size": D.mbstd.group}}
    ours = {k: v.detach().cpu().clone() for k, v in D.state_dict().items()}
    state: dict[str, torch.Tensor] = collections.OrderedDict()
    top = D.img_resolution
    for i in range(len(D.blocks)):
        b = f"b{top // 2 ** i}"
        state[f"{b}.resample_filter"] = _nvlabs_filter()
        if i == 0:
            state[f"{b}.fromrgb.weight"], state[f"{b}.fromrgb.bias"] = ours["from_rgb.weight"], ours["from_rgb.bias"]
            state[f"{b}.fromrgb.resample_filter"] = _nvlabs_filter()
        for conv in ("conv0", "conv1", "skip"):
            state[f"{b}.{conv}.weight"] = ours[f"blocks.{i}.{conv}.weight"]
            if conv != "skip":
                state[f"{b}.{conv}.bias"] = ours[f"blocks.{i}.{conv}.bias"]
            state[f"{b}.{conv}.resample_filter"] = _nvlabs_filter()
    state["b4.conv.weight"], state["b4.conv.bias"] = ours["conv.weight"], ours["conv.bias"]
    state["b4.conv.resample_filter"] = _nvlabs_filter()
    for layer in ("fc", "out"):
        state[f"b4.{layer}.weight"], state[f"b4.{layer}.bias"] = ours[f"{layer}.weight"], ours[f"{layer}.bias"]
    return kwargs, state


def export_nvlabs(G: nn.Module, D: nn.Module | None, path: str | os.PathLike,
                  target: str = "stylegan3") -> dict[str, Any]:
    """Write a StyleGAN2 or StyleGAN3 generator trained here (and its StyleGAN2 discriminator) as
    a snapshot that NVlabs' ``legacy.load_network_pkl`` and ``gen_images.py`` load.

    The file names NVlabs' classes, builds them with their constructor arguments and loads the
    tensors (``functools.partial`` and ``operator.methodcaller`` reductions): it carries no code,
    NVlabs' or ours. ganeval's own loader reads it as data like any other snapshot. Without
    ``D``, D names the generator (NVlabs' loader wants a module there)."""
    import functools
    import operator

    from ganeval import atomic
    from ganeval.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
    from ganeval.models.stylegan3 import StyleGAN3Generator

    if target not in EXPORT_CLASSES:
        raise BadInput(f"--nvlabs-repo must be one of {', '.join(EXPORT_CLASSES)}, got {target!r}")
    classes = EXPORT_CLASSES[target]
    if isinstance(G, StyleGAN2Generator):
        kind, (kwargs, state) = "StyleGAN2", _stylegan2_record(G, nested=target == "stylegan2-ada-pytorch")
    elif isinstance(G, StyleGAN3Generator):
        if "StyleGAN3" not in classes:
            raise BadInput(f"--nvlabs-repo {target} has no StyleGAN3: export StyleGAN3 for stylegan3")
        kind, (kwargs, state) = "StyleGAN3", _stylegan3_record(G)
    else:
        raise BadInput(f"--nvlabs exports StyleGAN2 and StyleGAN3 generators; this is a {type(G).__name__}")
    if D is not None and not isinstance(D, StyleGAN2Discriminator):
        raise BadInput(f"--nvlabs exports StyleGAN2's discriminator; this is a {type(D).__name__}")

    records = [("G_ema", classes[kind], kwargs, state)]
    if D is not None:
        records.append(("D", classes["D"], *_discriminator_record(D)))
    with _classes_named({r[1] for r in records}) as made:
        networks, steps = {}, {}
        for key, where, init, tensors in records:
            network = networks[key] = _Call(functools.partial(made[where], **init))
            # tensors in, then eval mode (NVlabs' snapshots store networks in eval mode)
            steps[f"{key}_tensors"] = _Call(operator.methodcaller("load_state_dict", tensors), network)
            steps[f"{key}_eval"] = _Call(operator.methodcaller("requires_grad_", False),
                                         _Call(operator.methodcaller("eval"), network))
        snapshot = {"G": networks["G_ema"], "D": networks.get("D", networks["G_ema"]), "G_ema": networks["G_ema"],
                    "augment_pipe": None, "training_set_kwargs": None, **steps}
        data = pickle.dumps(snapshot, protocol=4)
    atomic.write_bytes(path, data)
    return kwargs


def export_run(checkpoint: str | os.PathLike, path: str | os.PathLike, target: str = "stylegan3",
               use_ema: bool = True) -> dict[str, Any]:
    """``ganeval export RUN --nvlabs OUT.pkl``: a stylegan2 or stylegan3 run's generator (EMA by
    default) and discriminator as an NVlabs snapshot; returns a summary for the command's line."""
    from ganeval.models.checkpoint import load_checkpoint, load_discriminator, load_generator

    data = load_checkpoint(checkpoint)
    if data.get("model") not in ("stylegan2", "stylegan3"):
        raise BadInput(f"{checkpoint}: a {data.get('model')} checkpoint; --nvlabs exports stylegan2 and stylegan3 runs")
    G, _ = load_generator(data, "cpu", use_ema=use_ema)
    kwargs = export_nvlabs(G.to(memory_format=torch.contiguous_format), load_discriminator(data), path, target)
    return {"model": data["model"], "resolution": kwargs["img_resolution"], "z_dim": kwargs["z_dim"],
            "step": data.get("step", 0)}


# How ganeval's loader reads an exported file: the same names, resolved to inert records.

class _ExportedClass:
    def __init__(self, name: str):
        self.name = name


class _Partial:
    """``functools.partial`` of an exported class only: calling it makes a :class:`StoredNetwork`."""

    def __init__(self, func: Any, *args: Any, **kwargs: Any):
        self.func, self.kwargs = func, dict(kwargs)

    def __setstate__(self, state: Any) -> None:
        func, args, kwargs, _ = state
        if not isinstance(func, _ExportedClass) or args:
            raise BadInput("a functools.partial that does not build a known network")
        self.func, self.kwargs = func, dict(kwargs or {})

    def __call__(self) -> StoredNetwork:
        if not isinstance(self.func, _ExportedClass):
            raise BadInput("a functools.partial that does not build a known network")
        return StoredNetwork(self.func.name, {"_init_kwargs": self.kwargs})


class _MethodCaller:
    """``operator.methodcaller`` of ``load_state_dict(tensors)`` (fills a record's tensors),
    ``eval()`` or ``requires_grad_(False)`` (nothing to do on a record); any other call is refused."""

    def __init__(self, name: str, *args: Any, **kwargs: Any):
        loading = name == "load_state_dict" and len(args) == 1 and isinstance(args[0], dict)
        if not (loading or (name == "eval" and not args) or (name == "requires_grad_" and args in ((), (False,)))):
            raise BadInput(f"a call of {name!r}, which is not part of loading a network")
        self.tensors = args[0] if loading else None

    def __call__(self, record: Any) -> Any:
        if not isinstance(record, StoredNetwork):
            raise BadInput("a network method called on something that is not a network")
        if self.tensors is not None:
            record.loaded = {k: v for k, v in self.tensors.items() if isinstance(v, torch.Tensor)}
        return record


for _classes in EXPORT_CLASSES.values():
    for _module, _name in _classes.values():
        SAFE_GLOBALS[(_module, _name)] = _ExportedClass(_name)
SAFE_GLOBALS[("functools", "partial")] = _Partial
SAFE_GLOBALS[("operator", "methodcaller")] = _MethodCaller
