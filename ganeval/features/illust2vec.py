"""illustration2vec (rezoo/illustration2vec v2.0.0) as a feature network for FID on anime images.

The published model ``illust2vec_ver200.caffemodel`` is a VGG-style net: 3×3 convolutions
(pad 1, ReLU) 64 | pool | 128 | pool | 256, 256 | pool | 512, 512 | pool | 512, 512 | pool |
1024, 1024, 1024, then the fully connected ``encode1`` (7·7·1024 → 4096). The feature is
``encode1`` before any activation, as ``i2v``'s ``extract_feature``. Pools are 2×2 max pools with
stride 2 (Caffe rounds pooled sizes up, hence ``ceil_mode``; at 224 px every size is even, so
the two conventions agree: 224→112→56→28→14→7). Layer names follow the original prototxt,
so state-dict keys read ``conv1_1.weight`` … ``encode1.bias``.

Weights: Caffe files are converted once (``ganeval weights convert-illust2vec``, or on the fly
when given a ``.caffemodel``) into a torch file with metadata, cached as ``illust2vec_ver200.pt``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganeval.atomic import torch_save
from ganeval.cache import file_sha256
from ganeval.caffemodel import layer_state_dict
from ganeval.device import resolve_device
from ganeval.errors import BadInput
from ganeval.features.base import ExtractorInfo, FeatureExtractor
from ganeval.weights import WeightSpec, locate_weights, weights_cache

CONV_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv3_2", "conv4_1", "conv4_2",
               "conv5_1", "conv5_2", "conv6_1", "conv6_2", "conv6_3")
POOL_AFTER = frozenset({"conv1_1", "conv2_1", "conv3_2", "conv4_2", "conv5_2"})
ENCODE_LAYER = "encode1"
DEFAULT_WIDTHS = (64, 128, 256, 256, 512, 512, 512, 512, 1024, 1024, 1024)
DEFAULT_ENCODE_DIM = 4096
INPUT_SIZE = 224
GRID = INPUT_SIZE // 2 ** len(POOL_AFTER)  # 7: spatial side entering encode1
# i2v's classifier mean, in BGR order on the 0–255 scale (subtracted after channel_swap)
MEAN_BGR = (164.76139251, 167.47864617, 181.13838569)
FILE_FORMAT = "ganeval.illust2vec/1"

CAFFEMODEL_URL = "https://github.com/rezoo/illustration2vec/releases/download/v2.0.0/illust2vec_ver200.caffemodel"
_HOW_TO_GET = (f"get illust2vec_ver200.caffemodel from the rezoo/illustration2vec v2.0.0 release "
               f"({CAFFEMODEL_URL}) and run `ganeval weights convert-illust2vec FILE`.")

# the converted file that `ganeval fid --features illust2vec` looks for in the cache
ILLUST2VEC_WEIGHTS = WeightSpec(filename="illust2vec_ver200.pt", url=None, sha256_prefix=None,
                                how_to_get=_HOW_TO_GET)
# the published Caffe file, downloaded when online and converted into ILLUST2VEC_WEIGHTS.
# No published checksum exists; set sha256_prefix once one is pinned.
ILLUST2VEC_CAFFEMODEL = WeightSpec(filename="illust2vec_ver200.caffemodel", url=CAFFEMODEL_URL,
                                   sha256_prefix=None, how_to_get=_HOW_TO_GET)


class Illust2VecNet(nn.Module):
    """The illustration2vec feature tower up to ``encode1`` (pre-activation).

    ``widths`` (one per conv layer) and ``encode_dim`` exist so tests can build small copies;
    the defaults are the published architecture."""

    def __init__(self, widths: tuple[int, ...] = DEFAULT_WIDTHS, encode_dim: int = DEFAULT_ENCODE_DIM,
                 in_channels: int = 3) -> None:
        super().__init__()
        if len(widths) != len(CONV_LAYERS):
            raise ValueError(f"need {len(CONV_LAYERS)} widths, got {len(widths)}")
        self.widths = tuple(int(w) for w in widths)
        channels = in_channels
        for name, width in zip(CONV_LAYERS, self.widths):
            setattr(self, name, nn.Conv2d(channels, width, kernel_size=3, padding=1))
            channels = width
        # Caffe's InnerProduct flattens an N×C×H×W bottom row-major over (C, H, W): torch's flatten(1)
        self.encode1 = nn.Linear(channels * GRID * GRID, encode_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """conv6_3 activations (N×C×7×7 at 224 px)."""
        for name in CONV_LAYERS:
            x = F.relu(getattr(self, name)(x))
            if name in POOL_AFTER:
                x = F.max_pool2d(x, kernel_size=2, stride=2, ceil_mode=True)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode1(self.features(x).flatten(1))


class Illust2VecExtractor(FeatureExtractor):
    """uint8 RGB N×3×H×W → 4096-d ``encode1`` features, with i2v's preprocessing.

    Resize: bilinear to 224×224 (align_corners=False), antialiased when shrinking. i2v itself
    resizes with skimage (order 1, Gaussian-prefiltered when shrinking in current skimage);
    torch's antialiased bilinear is the closest GPU-friendly equivalent, so features match the
    original to resampling precision, not bit for bit. Then RGB→BGR and the BGR mean is
    subtracted on the 0–255 scale (no division), as i2v's Caffe/Chainer front ends do."""

    def __init__(self, net: Illust2VecNet, info: ExtractorInfo) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.info = info
        self.register_buffer("mean", torch.tensor(MEAN_BGR, dtype=torch.float32).view(1, 3, 1, 1))

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise BadInput(f"illust2vec takes N×3×H×W RGB images, got shape {tuple(images.shape)}")
        x = images.to(device=self.mean.device, dtype=torch.float32)
        height, width = x.shape[-2:]
        if (height, width) != (INPUT_SIZE, INPUT_SIZE):
            shrinking = height > INPUT_SIZE or width > INPUT_SIZE
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                              align_corners=False, antialias=shrinking)
        return x.flip(1) - self.mean  # RGB → BGR, then the BGR mean

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(self.preprocess(images)).float()


# --------------------------------------------------------------------------- weight files

def _param_shapes(net: nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in net.state_dict().items()}


def published_shapes() -> dict[str, tuple[int, ...]]:
    """Parameter shapes of the published model (built on the meta device: no memory used)."""
    with torch.device("meta"):
        return _param_shapes(Illust2VecNet())


def is_published_architecture(state: dict[str, torch.Tensor]) -> bool:
    return {k: tuple(v.shape) for k, v in state.items()} == published_shapes()


def save_converted(state: dict[str, torch.Tensor], meta: dict, target: str | os.PathLike) -> Path:
    """Atomically write a converted state dict plus metadata (bytes depend only on content)."""
    target = Path(target)
    torch_save(target, {"format": FILE_FORMAT, "meta": meta, "state_dict": state})
    return target


def convert_caffemodel_file(caffemodel: str | os.PathLike, out: str | os.PathLike | None = None,
                            source_sha256: str | None = None) -> tuple[Path, dict]:
    """Convert a caffemodel to a ganeval torch file (default: the cache's ``illust2vec_ver200.pt``).

    ``standard`` in the metadata is True when the file has the published layers and shapes
    (and, once a published checksum is pinned in ILLUST2VEC_CAFFEMODEL, that checksum)."""
    caffemodel = Path(caffemodel)
    state, meta = _convert(caffemodel, source_sha256 or file_sha256(caffemodel))
    target = Path(out) if out else weights_cache() / ILLUST2VEC_WEIGHTS.filename
    return save_converted(state, meta, target), meta


def convert_illust2vec(caffemodel_path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """``illust2vec_ver200.caffemodel`` blobs as ``Illust2VecNet``'s state dict. The net was
    trained on BGR input (its Caffe classifier uses ``channel_swap=(2, 1, 0)``) and the extractor
    feeds BGR too, so conv1_1 is not flipped. Reduced test models convert as well."""
    return layer_state_dict(caffemodel_path, CONV_LAYERS, (ENCODE_LAYER,), "an illustration2vec feature model")


def _convert(caffemodel: Path, sha: str) -> tuple[dict[str, torch.Tensor], dict]:
    state = convert_illust2vec(caffemodel)
    prefix = ILLUST2VEC_CAFFEMODEL.sha256_prefix
    standard = is_published_architecture(state) and (not prefix or sha.startswith(prefix))
    return state, {"source": caffemodel.name, "source_sha256": sha, "standard": bool(standard)}


def load_converted(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state_dict, meta)`` from a converted file, or from a bare state dict (meta empty)."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a foreign file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BadInput(f"{path} is not a torch weights file ({reason[:200]})") from None
    if isinstance(obj, dict) and obj.get("format") == FILE_FORMAT:
        state, meta = obj.get("state_dict"), dict(obj.get("meta") or {})
    else:
        state, meta = obj, {}
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BadInput(f"{path} holds no illust2vec state dict")
    return state, meta


def net_from_state(state: dict[str, torch.Tensor], path: str | os.PathLike = "weights") -> Illust2VecNet:
    """Build the net whose widths match ``state`` and load it; one clear error on a mismatch."""
    expected = [f"{name}.{kind}" for name in (*CONV_LAYERS, ENCODE_LAYER) for kind in ("weight", "bias")]
    missing = [key for key in expected if key not in state]
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        detail = "; ".join(part for part in (
            f"missing {', '.join(missing[:4])}{' …' if len(missing) > 4 else ''}" if missing else "",
            f"unexpected {', '.join(extra[:4])}{' …' if len(extra) > 4 else ''}" if extra else "") if part)
        raise BadInput(f"{path} is not an illust2vec state dict ({detail})")
    widths = tuple(int(state[f"{name}.weight"].shape[0]) for name in CONV_LAYERS)
    encode_dim = int(state[f"{ENCODE_LAYER}.weight"].shape[0])
    with torch.device("meta"):
        net = Illust2VecNet(widths, encode_dim)
    for key, shape in _param_shapes(net).items():
        if tuple(state[key].shape) != shape:
            raise BadInput(f"{path}: {key} has shape {tuple(state[key].shape)}, expected {shape}")
    state = {k: v if v.dtype == torch.float32 else v.float() for k, v in state.items()}
    net.load_state_dict(state, assign=True)
    return net


def _converted_for_caffemodel(caffemodel: Path) -> Path:
    """The cached conversion of ``caffemodel``, converting it on first use.

    Keyed by the caffemodel's SHA-256; a conversion with the published architecture becomes the
    default ``illust2vec_ver200.pt`` when that slot is still free."""
    sha = file_sha256(caffemodel)
    cache = weights_cache()
    keyed = cache / f"illust2vec_{sha[:16]}.pt"
    default = cache / ILLUST2VEC_WEIGHTS.filename
    if keyed.is_file():
        return keyed
    if default.is_file() and load_converted(default)[1].get("source_sha256") == sha:
        return default
    print(f"converting {caffemodel} to torch weights (once)", file=sys.stderr)
    state, meta = _convert(caffemodel, sha)
    target = default if meta["standard"] and not default.exists() else keyed
    save_converted(state, meta, target)
    print(f"saved converted illust2vec weights to {target}", file=sys.stderr)
    return target


def _looks_like_torch_file(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"  # torch.save writes a zip archive


def _default_weights() -> Path:
    """The cached conversion; else convert a cached or freshly downloaded caffemodel."""
    converted = weights_cache() / ILLUST2VEC_WEIGHTS.filename
    if converted.is_file():
        return converted
    cached_caffe = weights_cache() / ILLUST2VEC_CAFFEMODEL.filename
    was_cached = cached_caffe.is_file()
    caffemodel = locate_weights(ILLUST2VEC_CAFFEMODEL)  # MissingWeights offline, naming the file
    print(f"converting {caffemodel} to {converted} (once)", file=sys.stderr)
    convert_caffemodel_file(caffemodel, converted)
    if not was_cached:  # we downloaded it only to convert it: free the 1 GB
        caffemodel.unlink(missing_ok=True)
    return converted


def resolve_illust2vec_weights(weights: str | os.PathLike | None) -> Path:
    """The converted torch file to load for ``weights`` (a .pt, a .caffemodel, or None)."""
    if not weights:
        return _default_weights()
    path = Path(weights).expanduser()
    if not path.is_file():
        raise BadInput(f"weights file {path} does not exist")
    if _looks_like_torch_file(path):
        return path
    try:
        return _converted_for_caffemodel(path)
    except BadInput:
        if path.suffix.lower() == ".caffemodel":
            raise
        raise BadInput(f"{path} is neither a converted illust2vec .pt file nor a Caffe model") from None


def build_illust2vec(weights: str | os.PathLike | None, device: str | torch.device = "cpu") -> Illust2VecExtractor:
    """The illust2vec extractor on ``device`` from a converted .pt, a .caffemodel, or the cache."""
    device = resolve_device(device)
    path = resolve_illust2vec_weights(weights)
    state, meta = load_converted(path)
    net = net_from_state(state, path)
    info = ExtractorInfo(
        name="illust2vec",
        dim=net.encode1.out_features,
        input_size=INPUT_SIZE,
        weights_id=file_sha256(path),
        standard=bool(meta.get("standard")) and net.widths == DEFAULT_WIDTHS,
    )
    return Illust2VecExtractor(net, info).to(device)
