"""Read Caffe ``.caffemodel`` files without caffe or protobuf: a small wire-format decoder.

A caffemodel is one serialized ``NetParameter`` message (BVLC/caffe ``src/caffe/proto/caffe.proto``).
Only the fields needed to get weights out are decoded:

* ``NetParameter``: ``layer`` = 100 (``LayerParameter``, current format),
  ``layers`` = 2 (``V1LayerParameter``, the pre-2015 format).
* ``LayerParameter``: ``name`` = 1, ``type`` = 2 (string), ``blobs`` = 7.
* ``V1LayerParameter``: ``name`` = 4, ``type`` = 5 (enum), ``blobs`` = 6.
* ``BlobProto``: ``num/channels/height/width`` = 1–4 (legacy 4-D shape), ``data`` = 5
  (float32, packed or not), ``shape`` = 7 (``BlobShape``: ``dim`` = 1, int64, packed or not),
  ``double_data`` = 8.

The file is memory-mapped and float data becomes ``np.frombuffer`` views, so a 1 GB model is
never copied as Python byte strings. Everything else (layer parameters, diffs) is skipped.
"""
from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from ganeval.atomic import write_bytes
from ganeval.errors import BadInput

if TYPE_CHECKING:
    import torch

# protobuf wire types
_VARINT, _FIXED64, _LEN, _START_GROUP, _END_GROUP, _FIXED32 = 0, 1, 2, 3, 4, 5

# V1LayerParameter.LayerType values we may meet in a CNN, mapped to the new string names
_V1_TYPES = {
    0: "None", 1: "Accuracy", 3: "Concat", 4: "Convolution", 5: "Data", 6: "Dropout",
    8: "Flatten", 12: "ImageData", 14: "InnerProduct", 15: "LRN", 17: "Pooling", 18: "ReLU",
    19: "Sigmoid", 20: "Softmax", 21: "SoftmaxWithLoss", 22: "Split", 23: "TanH",
    27: "SigmoidCrossEntropyLoss", 29: "MemoryData", 39: "Deconvolution",
}
_V1_ENUMS = {name: num for num, name in _V1_TYPES.items()}


class _WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


@dataclass
class CaffeLayer:
    name: str
    type: str                      # "Convolution", "InnerProduct", ... (V1 enums are mapped)
    blobs: list[np.ndarray] = field(default_factory=list)


# --------------------------------------------------------------------------- decoding

def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise _WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _WireError("varint longer than 10 bytes")


def _fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(field, wire_type, a, b)``: a varint's value in ``a``, else the payload span [a, b)."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _WireError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value, pos
            continue
        if wire == _LEN:
            size, pos = _varint(buf, pos, end)
        elif wire == _FIXED64:
            size = 8
        elif wire == _FIXED32:
            size = 4
        else:  # groups: never used by caffe.proto
            raise _WireError(f"unsupported wire type {wire} (field {number})")
        if pos + size > end:
            raise _WireError(f"field {number} runs past the end of its message")
        yield number, wire, pos, pos + size
        pos += size


def _packed_varints(buf: memoryview, a: int, b: int) -> list[int]:
    out, pos = [], a
    while pos < b:
        value, pos = _varint(buf, pos, b)
        out.append(value)
    return out


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _array(buf: memoryview, a: int, b: int, dtype: str) -> np.ndarray:
    size = np.dtype(dtype).itemsize
    if (b - a) % size:
        raise _WireError(f"packed {dtype} field of {b - a} bytes")
    return np.frombuffer(buf, dtype=dtype, count=(b - a) // size, offset=a)


def _gather(buf: memoryview, starts: list[int], dtype: str) -> np.ndarray:
    """Non-packed repeated fixed-size values: copy each item's bytes (rare, old writers only)."""
    size = np.dtype(dtype).itemsize
    raw = np.frombuffer(buf, dtype=np.uint8)
    idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(size)
    return raw[idx].reshape(-1).view(dtype)


def _blob(buf: memoryview, start: int, end: int) -> np.ndarray:
    legacy = {1: 0, 2: 0, 3: 0, 4: 0}
    shape: list[int] | None = None
    chunks: list[np.ndarray] = []
    single_f32: list[int] = []
    single_f64: list[int] = []
    for number, wire, a, b in _fields(buf, start, end):
        if number in legacy and wire == _VARINT:
            legacy[number] = _signed64(a)
        elif number == 5 and wire == _LEN:
            chunks.append(_array(buf, a, b, "<f4"))
        elif number == 5 and wire == _FIXED32:
            single_f32.append(a)
        elif number == 8 and wire == _LEN:
            chunks.append(_array(buf, a, b, "<f8"))
        elif number == 8 and wire == _FIXED64:
            single_f64.append(a)
        elif number == 7 and wire == _LEN:
            shape = []
            for dim_no, dim_wire, da, db in _fields(buf, a, b):
                if dim_no != 1:
                    continue
                if dim_wire == _LEN:
                    shape.extend(_signed64(v) for v in _packed_varints(buf, da, db))
                elif dim_wire == _VARINT:
                    shape.append(_signed64(da))
    if single_f32:
        chunks.append(_gather(buf, single_f32, "<f4"))
    if single_f64:
        chunks.append(_gather(buf, single_f64, "<f8"))
    if not chunks:
        data = np.zeros(0, dtype="<f4")
    elif len(chunks) == 1:
        data = chunks[0]
    else:  # float and double data together never happens in practice; keep float32
        data = np.concatenate([c.astype("<f4") for c in chunks])
    if shape is None:
        dims = [legacy[k] for k in (1, 2, 3, 4)]
        shape = dims if any(dims) else [data.size]
    if int(np.prod(shape, dtype=np.int64)) != data.size:
        raise _WireError(f"blob shape {tuple(shape)} does not match its {data.size} values")
    return data.reshape(shape)


def _layer(buf: memoryview, start: int, end: int, v1: bool) -> CaffeLayer:
    name_no, type_no, blob_no = (4, 5, 6) if v1 else (1, 2, 7)
    layer = CaffeLayer(name="", type="")
    for number, wire, a, b in _fields(buf, start, end):
        if number == name_no and wire == _LEN:
            layer.name = bytes(buf[a:b]).decode("utf-8", errors="replace")
        elif number == type_no and v1 and wire == _VARINT:
            layer.type = _V1_TYPES.get(a, f"V1:{a}")
        elif number == type_no and not v1 and wire == _LEN:
            layer.type = bytes(buf[a:b]).decode("utf-8", errors="replace")
        elif number == blob_no and wire == _LEN:
            layer.blobs.append(_blob(buf, a, b))
    return layer


def parse_net(buf: memoryview | bytes) -> list[CaffeLayer]:
    """Layers of a serialized NetParameter (both formats, in file order)."""
    view = memoryview(buf)
    layers = []
    for number, wire, a, b in _fields(view, 0, len(view)):
        if wire == _LEN and number in (2, 100):
            layers.append(_layer(view, a, b, v1=(number == 2)))
    return layers


def read_caffemodel_layers(path: str | os.PathLike) -> list[CaffeLayer]:
    """All layers of a caffemodel. Blob arrays are read-only views of a memory map of the file."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path} does not exist")
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            raise BadInput(f"{path} is empty, not a Caffe model")
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        layers = parse_net(mapped)
    except _WireError as err:
        raise BadInput(f"{path} is not a Caffe model (.caffemodel protobuf): {err}") from None
    if not layers:
        raise BadInput(f"{path} is not a Caffe model: it holds no layers")
    return layers  # the arrays keep the map alive; it closes when they are gone


def read_caffemodel(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """``{layer name: [blob arrays]}``; layers without weights map to an empty list.

    Arrays are read-only float32 (or float64 for ``double_data``) views shaped as stored."""
    out: dict[str, list[np.ndarray]] = {}
    for layer in read_caffemodel_layers(path):
        if layer.blobs or layer.name not in out:
            out[layer.name] = layer.blobs
    return out


# --------------------------------------------------------------------------- encoding
# A minimal writer: used by tests to build models with known blobs (no Caffe needed).

def _enc_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _enc_key(number: int, wire: int) -> bytes:
    return _enc_varint(number << 3 | wire)


def _enc_len(number: int, payload: bytes) -> bytes:
    return _enc_key(number, _LEN) + _enc_varint(len(payload)) + payload


def _enc_blob(arr: np.ndarray, legacy_dims: bool, packed: bool, double: bool) -> bytes:
    arr = np.asarray(arr)
    out = bytearray()
    if legacy_dims:
        dims = [1] * (4 - arr.ndim) + list(arr.shape)
        if len(dims) != 4:
            raise ValueError("legacy 4-D blob dims need an array of at most 4 dimensions")
        for number, dim in zip((1, 2, 3, 4), dims):
            out += _enc_key(number, _VARINT) + _enc_varint(int(dim))
    else:
        dims_payload = b"".join(_enc_varint(int(d)) for d in arr.shape)
        out += _enc_len(7, _enc_len(1, dims_payload))
    number, dtype, wire = (8, "<f8", _FIXED64) if double else (5, "<f4", _FIXED32)
    flat = np.ascontiguousarray(arr, dtype=dtype).reshape(-1)
    if packed:
        out += _enc_len(number, flat.tobytes())
    else:
        key = _enc_key(number, wire)
        for value in flat:
            out += key + value.tobytes()
    return bytes(out)


def write_caffemodel(path: str | os.PathLike, layers: Sequence[CaffeLayer], *, v1: bool = False,
                     legacy_dims: bool = False, packed: bool = True, double: bool = False) -> None:
    """Write ``layers`` as a NetParameter: new (``layer``) or V1 (``layers``) format."""
    net = bytearray(_enc_len(1, b"ganeval-test"))
    for layer in layers:
        blobs = [_enc_blob(b, legacy_dims, packed, double) for b in layer.blobs]
        if v1:
            body = _enc_len(4, layer.name.encode())
            body += _enc_key(5, _VARINT) + _enc_varint(_V1_ENUMS.get(layer.type, 0))
            body += b"".join(_enc_len(6, b) for b in blobs)
            net += _enc_len(2, body)
        else:
            body = _enc_len(1, layer.name.encode()) + _enc_len(2, layer.type.encode())
            body += b"".join(_enc_len(7, b) for b in blobs)
            net += _enc_len(100, body)
    write_bytes(path, bytes(net))


# --------------------------------------------------------------------------- to torch

def layer_state_dict(caffemodel_path: str | os.PathLike, conv_layers: Sequence[str], linear_layers: Sequence[str],
                     what: str = "the expected model") -> dict[str, torch.Tensor]:
    """Named layers' weight and bias blobs as a torch state dict (``NAME.weight``, ``NAME.bias``).

    Caffe convolution weights are (out, in, kh, kw) and InnerProduct weights (out, in) with the
    input flattened in (C, H, W) order — the same layouts as torch ``Conv2d``/``Linear`` on a
    contiguous NCHW tensor, so blobs are copied, never transposed. Layer widths are taken from
    the file. ``what`` names the model in the error raised when a layer is missing."""
    import torch

    path = Path(caffemodel_path)
    layers = {layer.name: layer for layer in read_caffemodel_layers(path) if layer.blobs}
    state: dict[str, torch.Tensor] = {}
    for name in (*conv_layers, *linear_layers):
        layer = layers.get(name)
        if layer is None:
            have = ", ".join(sorted(layers)) or "none"
            raise BadInput(f"{path}: layer {name!r} is missing — not {what} "
                           f"(layers with weights: {have})")
        if len(layer.blobs) != 2:
            raise BadInput(f"{path}: layer {name!r} has {len(layer.blobs)} blobs, expected weight and bias")
        weight, bias = layer.blobs
        if name in linear_layers:
            if weight.ndim < 2 or int(np.prod(weight.shape[:-2], dtype=np.int64)) != 1:
                raise BadInput(f"{path}: {name} weight has shape {weight.shape}, expected (out, in)")
            weight = weight.reshape(weight.shape[-2:])
        elif weight.ndim != 4:
            raise BadInput(f"{path}: {name} weight has shape {weight.shape}, expected (out, in, kh, kw)")
        if bias.size != weight.shape[0]:
            raise BadInput(f"{path}: {name} bias has {bias.size} values for {weight.shape[0]} outputs")
        state[f"{name}.weight"] = torch.from_numpy(np.array(weight, dtype=np.float32))
        state[f"{name}.bias"] = torch.from_numpy(np.array(bias, dtype=np.float32).reshape(-1))
    return state
