"""illustration2vec: Caffe wire-format reader, converter, network, extractor and CLI.

Models are written here in the caffemodel wire format with known random blobs for every layer of
the real architecture at reduced widths (the real encode1 alone is 800 MB)."""
from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ganeval.caffemodel import CaffeLayer, read_caffemodel, write_caffemodel
from ganeval.cli.main import main
from ganeval.errors import BadInput, MissingWeights
from ganeval.features.illust2vec import (
    CONV_LAYERS, DEFAULT_WIDTHS, MEAN_BGR, Illust2VecNet, build_illust2vec, convert_illust2vec, is_published_architecture,
    published_shapes,
)
from ganeval.synth import make_faces

SMALL_WIDTHS = (4, 4, 6, 6, 8, 8, 8, 8, 12, 12, 12)
SMALL_ENCODE = 24
POOLED = {"conv1_1": "pool1", "conv2_1": "pool2", "conv3_2": "pool3", "conv4_2": "pool4", "conv5_2": "pool5"}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANEVAL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GANEVAL_OFFLINE", "1")


def make_blobs(seed: int = 0, widths=SMALL_WIDTHS, encode_dim=SMALL_ENCODE) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    blobs, cin = {}, 3
    for name, width in zip(CONV_LAYERS, widths):
        scale = math.sqrt(2.0 / (cin * 9))
        blobs[name] = [(rng.standard_normal((width, cin, 3, 3)) * scale).astype(np.float32),
                       (rng.standard_normal(width) * 0.1).astype(np.float32)]
        cin = width
    blobs["encode1"] = [(rng.standard_normal((encode_dim, cin * 49)) / math.sqrt(cin * 49)).astype(np.float32),
                        (rng.standard_normal(encode_dim) * 0.1).astype(np.float32)]
    return blobs


def net_layers(blobs: dict[str, list[np.ndarray]]) -> list[CaffeLayer]:
    """The full layer sequence of illust2vec.prototxt, weightless layers included."""
    layers = [CaffeLayer("data", "Data")]
    for name in CONV_LAYERS:
        layers += [CaffeLayer(name, "Convolution", blobs[name]), CaffeLayer(name.replace("conv", "relu"), "ReLU")]
        if name in POOLED:
            layers.append(CaffeLayer(POOLED[name], "Pooling"))
    layers += [CaffeLayer("drop6_3", "Dropout"), CaffeLayer("encode1", "InnerProduct", blobs["encode1"]),
               CaffeLayer("encode1neuron", "Sigmoid")]
    return layers


@pytest.fixture
def small_model(tmp_path):
    blobs = make_blobs()
    path = tmp_path / "small.caffemodel"
    write_caffemodel(path, net_layers(blobs))
    return path, blobs


def reference_features(images: np.ndarray, blobs: dict[str, list[np.ndarray]]) -> np.ndarray:
    """i2v's pipeline written out by hand: BGR, minus the BGR mean, conv/ReLU/pool, Caffe IP."""
    x = images.astype(np.float64)[:, [2, 1, 0]] - np.array(MEAN_BGR).reshape(1, 3, 1, 1)
    h = torch.from_numpy(x).double()
    for name in CONV_LAYERS:
        w, b = (torch.from_numpy(a).double() for a in blobs[name])
        h = F.relu(F.conv2d(h, w, b, padding=1))
        if name in POOLED:
            h = F.max_pool2d(h, 2, 2)
    w, b = (a.astype(np.float64) for a in blobs["encode1"])
    # Caffe InnerProduct: weight (out, C·H·W) applied to the bottom flattened row-major over (C, H, W)
    return np.einsum("ok,nk->no", w, h.numpy().reshape(len(h), -1)) + b


# --------------------------------------------------------------------------- architecture

def test_published_architecture_has_the_published_shapes():
    shapes = published_shapes()
    assert shapes["conv1_1.weight"] == (64, 3, 3, 3)
    assert shapes["conv3_2.weight"] == (256, 256, 3, 3)
    assert shapes["conv6_1.weight"] == (1024, 512, 3, 3)
    assert shapes["conv6_3.weight"] == (1024, 1024, 3, 3)
    assert shapes["encode1.weight"] == (4096, 7 * 7 * 1024)
    assert shapes["encode1.bias"] == (4096,)
    assert list(shapes) == [f"{n}.{k}" for n in (*CONV_LAYERS, "encode1") for k in ("weight", "bias")]
    widths, cin, expected = DEFAULT_WIDTHS, 3, 0
    for w in widths:
        expected += w * cin * 9 + w
        cin = w
    expected += 4096 * 50176 + 4096
    assert sum(math.prod(s) for s in shapes.values()) == expected == 238_341_504
    with torch.device("meta"):
        net = Illust2VecNet()
        x = torch.empty(2, 3, 224, 224)
        assert tuple(net.features(x).shape) == (2, 1024, 7, 7)
        assert tuple(net(x).shape) == (2, 4096)


def test_is_published_architecture():
    with torch.device("meta"):
        assert is_published_architecture(Illust2VecNet().state_dict())
        assert not is_published_architecture(Illust2VecNet(SMALL_WIDTHS, SMALL_ENCODE).state_dict())


def test_encode1_flattens_like_caffe_inner_product():
    torch.manual_seed(0)
    net = Illust2VecNet(SMALL_WIDTHS, SMALL_ENCODE).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        feats = net.features(x)
        got = net(x)
    w = net.encode1.weight.view(SMALL_ENCODE, SMALL_WIDTHS[-1], 7, 7)
    want = torch.einsum("ochw,nchw->no", w, feats) + net.encode1.bias
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- wire format

def test_converter_returns_the_blobs_exactly(small_model):
    path, blobs = small_model
    state = convert_illust2vec(path)
    assert set(state) == {f"{n}.{k}" for n in blobs for k in ("weight", "bias")}
    for name, (w, b) in blobs.items():
        assert state[f"{name}.weight"].dtype == torch.float32
        np.testing.assert_array_equal(state[f"{name}.weight"].numpy(), w)
        np.testing.assert_array_equal(state[f"{name}.bias"].numpy(), b)
    net = Illust2VecNet(SMALL_WIDTHS, SMALL_ENCODE)
    net.load_state_dict(state)  # strict: keys and shapes match the module


def test_read_caffemodel_keeps_every_layer(small_model):
    path, blobs = small_model
    layers = read_caffemodel(path)
    assert layers["data"] == [] and layers["pool3"] == [] and layers["encode1neuron"] == []
    assert [a.shape for a in layers["conv2_1"]] == [(4, 4, 3, 3), (4,)]
    np.testing.assert_array_equal(layers["encode1"][0], blobs["encode1"][0])


@pytest.mark.parametrize("options", [
    dict(v1=True),
    dict(v1=True, legacy_dims=True),
    dict(legacy_dims=True, packed=False),
    dict(v1=True, packed=False),
    dict(double=True),
])
def test_v1_legacy_and_unpacked_variants_parse_identically(tmp_path, options):
    blobs = make_blobs(seed=1)
    path = tmp_path / "variant.caffemodel"
    write_caffemodel(path, net_layers(blobs), **options)
    state = convert_illust2vec(path)
    for name, (w, b) in blobs.items():
        np.testing.assert_array_equal(state[f"{name}.weight"].numpy(), w)
        np.testing.assert_array_equal(state[f"{name}.bias"].numpy(), b)


def test_v1_layer_types_are_named(tmp_path):
    path = tmp_path / "v1.caffemodel"
    blobs = make_blobs()
    write_caffemodel(path, net_layers(blobs), v1=True, legacy_dims=True)
    from ganeval.caffemodel import read_caffemodel_layers

    types = {layer.name: layer.type for layer in read_caffemodel_layers(path)}
    assert types["conv1_1"] == "Convolution" and types["pool1"] == "Pooling"
    assert types["encode1"] == "InnerProduct" and types["relu6_3"] == "ReLU"
    # legacy 4-D dims: the IP weight is stored 1×1×out×in and comes back as (out, in)
    assert read_caffemodel(path)["encode1"][0].shape == (1, 1, SMALL_ENCODE, 12 * 49)


@pytest.mark.parametrize("content", [
    b"",
    b"name: \"not binary\"\nlayer { name: 'conv1_1' }\n",
    bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
    b"PK\x03\x04 a zip file, not protobuf",
])
def test_a_file_that_is_not_a_caffemodel_is_refused(tmp_path, content):
    path = tmp_path / "bad.caffemodel"
    path.write_bytes(content)
    with pytest.raises(BadInput, match="not a Caffe model"):
        convert_illust2vec(path)


def test_a_caffemodel_without_encode1_is_refused(tmp_path):
    blobs = make_blobs()
    path = tmp_path / "tagger.caffemodel"
    write_caffemodel(path, [layer for layer in net_layers(blobs) if layer.name != "encode1"])
    with pytest.raises(BadInput, match="'encode1' is missing"):
        convert_illust2vec(path)


# --------------------------------------------------------------------------- extractor

def test_extractor_matches_a_hand_written_reference(small_model, tmp_path):
    path, blobs = small_model
    out = tmp_path / "small.pt"
    assert main(["weights", "convert-illust2vec", str(path), "-o", str(out)]) == 0
    extractor = build_illust2vec(out, "cpu")
    faces = make_faces(3, size=224, seed=5)                      # N×H×W×3 RGB uint8
    images = torch.from_numpy(faces).permute(0, 3, 1, 2).contiguous()
    got = extractor(images)
    assert got.dtype == torch.float32 and tuple(got.shape) == (3, SMALL_ENCODE)
    want = reference_features(images.numpy(), blobs)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4)
    assert extractor.info.dim == SMALL_ENCODE and extractor.info.input_size == 224
    assert extractor.info.name == "illust2vec" and extractor.info.standard is False
    assert extractor.info.weights_id == hashlib.sha256(out.read_bytes()).hexdigest()


@pytest.mark.parametrize("side", [160, 256, 300])
def test_resize_matches_pillow_bilinear(small_model, side):
    """Upscaling is plain bilinear; shrinking is antialiased like Pillow's BILINEAR filter."""
    path, _ = small_model
    extractor = build_illust2vec(path, "cpu")
    face = make_faces(1, size=min(side, 256), seed=2)[0]
    if side > 256:  # make_faces stops at 256 px
        face = np.pad(face, ((0, side - 256), (0, side - 256), (0, 0)), mode="reflect")
    got = extractor.preprocess(torch.from_numpy(face).permute(2, 0, 1)[None])[0].numpy()
    ref = np.stack([np.asarray(Image.fromarray(face[..., c].astype(np.float32), mode="F")
                               .resize((224, 224), Image.BILINEAR)) for c in (2, 1, 0)])
    ref = ref - np.array(MEAN_BGR, dtype=np.float32).reshape(3, 1, 1)
    np.testing.assert_allclose(got, ref, atol=0.01)  # measured max gap ≈ 0.004 on the 0–255 scale


def test_extractor_rejects_wrong_layout(small_model):
    extractor = build_illust2vec(small_model[0], "cpu")
    with pytest.raises(BadInput, match="N×3×H×W"):
        extractor(torch.zeros(1, 224, 224, 3, dtype=torch.uint8))


# --------------------------------------------------------------------------- weight files and CLI

def test_cli_convert_writes_to_the_cache_and_is_deterministic(small_model, tmp_path, capsys):
    path, _ = small_model
    assert main(["weights", "convert-illust2vec", str(path)]) == 0
    cached = tmp_path / "home" / "weights" / "illust2vec_ver200.pt"
    assert capsys.readouterr().out.strip() == str(cached)
    other = tmp_path / "elsewhere" / "copy.pt"
    assert main(["weights", "convert-illust2vec", str(path), "-o", str(other)]) == 0
    assert cached.read_bytes() == other.read_bytes()  # same content, same weights_id
    extractor = build_illust2vec(None, "cpu")  # the default cache file
    assert extractor.info.weights_id == hashlib.sha256(cached.read_bytes()).hexdigest()


def test_cli_convert_refuses_a_non_caffemodel(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello, I am not a network\n")
    assert main(["weights", "convert-illust2vec", str(bad)]) == 2
    errors = [l for l in capsys.readouterr().err.splitlines() if "error" in l]
    assert len(errors) == 1 and "not a Caffe model" in errors[0]
    assert main(["weights", "convert-illust2vec", str(tmp_path / "absent.caffemodel")]) == 2


def test_cli_list_shows_presence(small_model, capsys):
    assert main(["weights", "list"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if "illust2vec_ver200.pt" in l)
    assert "missing" in line and "convert-illust2vec" in line
    assert main(["weights", "convert-illust2vec", str(small_model[0])]) == 0
    capsys.readouterr()
    assert main(["weights", "list"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if "illust2vec_ver200.pt" in l)
    assert "loads" in line  # read from its bytes: a converted file has no published checksum


def test_offline_with_empty_cache_names_the_file():
    with pytest.raises(MissingWeights) as info:
        build_illust2vec(None, "cpu")
    message = str(info.value)
    assert "illust2vec_ver200.caffemodel" in message and "ganeval weights convert-illust2vec" in message
    assert "rezoo/illustration2vec" in message and "v2.0.0" in message


def test_a_caffemodel_in_the_cache_is_converted_on_first_use(tmp_path):
    blobs = make_blobs(seed=3)
    weights = tmp_path / "home" / "weights"
    write_caffemodel(weights / "illust2vec_ver200.caffemodel", net_layers(blobs))
    extractor = build_illust2vec(None, "cpu")
    assert (weights / "illust2vec_ver200.pt").is_file()
    assert (weights / "illust2vec_ver200.caffemodel").is_file()  # the user's file is kept
    np.testing.assert_array_equal(extractor.net.encode1.bias.numpy(), blobs["encode1"][1])


def test_a_caffemodel_path_is_converted_once_and_cached(small_model, tmp_path):
    path, blobs = small_model
    first = build_illust2vec(path, "cpu")
    cached = list((tmp_path / "home" / "weights").glob("illust2vec_*.pt"))
    assert len(cached) == 1 and cached[0].name != "illust2vec_ver200.pt"  # non-standard: keyed by hash
    stamp = cached[0].stat().st_mtime_ns
    second = build_illust2vec(path, "cpu")
    assert cached[0].stat().st_mtime_ns == stamp
    assert first.info.weights_id == second.info.weights_id
    np.testing.assert_array_equal(second.net.conv1_1.weight.numpy(), blobs["conv1_1"][0])


def test_bare_state_dicts_load_and_bad_ones_give_one_clear_error(small_model, tmp_path):
    state = convert_illust2vec(small_model[0])
    bare = tmp_path / "bare.pt"
    torch.save(state, bare)
    assert build_illust2vec(bare, "cpu").info.standard is False

    wrong_keys = tmp_path / "wrong_keys.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, wrong_keys)
    with pytest.raises(BadInput, match="not an illust2vec state dict.*missing conv1_1.weight"):
        build_illust2vec(wrong_keys, "cpu")

    bad_shape = dict(state, **{"encode1.weight": torch.zeros(SMALL_ENCODE, 10)})
    wrong_shape = tmp_path / "wrong_shape.pt"
    torch.save(bad_shape, wrong_shape)
    with pytest.raises(BadInput, match=r"encode1.weight has shape \(24, 10\), expected \(24, 588\)"):
        build_illust2vec(wrong_shape, "cpu")

    with pytest.raises(BadInput, match="does not exist"):
        build_illust2vec(tmp_path / "absent.pt", "cpu")


def test_online_the_published_file_is_downloaded_converted_and_dropped(tmp_path, monkeypatch):
    import ganeval.weights

    blobs = make_blobs(seed=4)
    fetched = []

    def fake_download(spec, target):  # stands in for the HTTP transfer only
        fetched.append(spec.url)
        write_caffemodel(target, net_layers(blobs))
        return target

    monkeypatch.delenv("GANEVAL_OFFLINE")
    monkeypatch.setattr(ganeval.weights, "download_checked", fake_download)
    extractor = build_illust2vec(None, "cpu")
    weights = tmp_path / "home" / "weights"
    assert fetched == ["https://github.com/rezoo/illustration2vec/releases/download/v2.0.0/illust2vec_ver200.caffemodel"]
    assert (weights / "illust2vec_ver200.pt").is_file()
    assert not (weights / "illust2vec_ver200.caffemodel").exists()  # only needed for the conversion
    np.testing.assert_array_equal(extractor.net.conv6_3.bias.numpy(), blobs["conv6_3"][1])
