"""NVlabs network pickles: pixel-equal to NVlabs' own rendering, and nothing stored in a file runs.

The golden arrays in tests/data/nvlabs come from NVlabs' code (tests/make_nvlabs_golden.py,
tests/make_sg3_golden.py and tests/make_stylegan_golden.py, run outside the repository): small
random StyleGAN2 generators at 64 px (one conditional) and 256 px, StyleGAN3-T at 64 and 256 px,
StyleGAN3-R at 64 and 256 px, and StyleGAN (v1, TensorFlow) at 32 (conditional), 64 (one of them caught
while growing) and 128 px; seeds 0-3, truncation 0.7, constant noise, uint8 as NVlabs converts.
sg2tf_* hold the sg2_64 networks in the TensorFlow layout (tests/make_stylegan2_tf_golden.py);
NVlabs' own converter renders them as the sg2_64 goldens."""
from __future__ import annotations

import pickle
import pickletools
from pathlib import Path

import numpy as np
import pytest
import torch

from ganeval.cli.main import main
from ganeval.errors import BadInput
from ganeval.generators import load_generator
from ganeval.models.nvlabs import is_nvlabs_pickle, load_nvlabs_pickle

DATA = Path(__file__).resolve().parents[1] / "data" / "nvlabs"
GOLDEN = ["sg2_64", "sg2_64_cond", "sg2_256", "sg2v3_64", "sg3t_64", "sg3r_64", "sg3t_256", "sg3r_256",
          "sg1_64", "sg1_128", "sg1_64_lod", "sg1_32_cond", "sg2tf_64", "sg2tf_64_cond"]
# TensorFlow StyleGAN2 snapshots of the same networks as PyTorch goldens render those goldens
RENDERS_AS = {"sg2tf_64": "sg2_64", "sg2tf_64_cond": "sg2_64_cond"}


def _golden(name: str):
    with np.load(DATA / f"{name}.npz") as g:
        return {k: g[k] for k in g.files}


@pytest.mark.parametrize("name", GOLDEN)
def test_images_equal_nvlabs_within_one_grey_level(name):
    gold = _golden(RENDERS_AS.get(name, name))
    G = load_generator(DATA / f"{name}.pkl", device="cpu")
    assert G.kind == "nvlabs" and G.style and G.resolution == gold["images"].shape[1]
    classes = gold["classes"] if G.c_dim else [None] * len(gold["seeds"])
    ours = np.concatenate([torch.cat(list(G.sample([int(s)], truncation=float(gold["psi"]),
                                                   class_idx=None if c is None else int(c)))).numpy()
                           for s, c in zip(gold["seeds"], classes)])
    diff = np.abs(ours.astype(int) - gold["images"].astype(int))
    assert diff.max() <= 1, diff.max()
    assert (diff > 0).mean() < 1e-4  # equal but for a rare rounding tie


def test_sample_command_writes_nvlabs_pixels(tmp_path, capsys):
    gold = _golden("sg2_64")
    out = tmp_path / "out.npz"
    assert main(["sample", str(DATA / "sg2_64.pkl"), "--seeds", "0-3", "--truncation", "0.7", "--noise-mode", "const",
                 "-o", str(out), "--device", "cpu", "--batch-size", "3"]) == 0
    assert "nvlabs sg2_64.pkl" in capsys.readouterr().err
    with np.load(out) as npz:
        assert np.array_equal(npz["seeds"], [0, 1, 2, 3])
        assert np.abs(npz["images"].astype(int) - gold["images"].astype(int)).max() <= 1


def test_conditional_pickle_needs_a_class(tmp_path, capsys):
    argv = ["sample", str(DATA / "sg2_64_cond.pkl"), "--seeds", "0", "-o", str(tmp_path / "o.npz"), "--device", "cpu"]
    assert main(argv) == 2
    assert "conditional (5 classes): give --class 0..4" in capsys.readouterr().err
    assert main(argv + ["--class", "7"]) == 2
    assert "--class 7 is outside 0..4" in capsys.readouterr().err
    assert main(argv + ["--class", "1"]) == 0


def test_stylegan3_pickles_render_through_every_path(tmp_path):
    gold = _golden("sg3r_64")
    out = tmp_path / "r.npz"
    from ganeval.cli.main import main as cli

    assert cli(["sample", str(DATA / "sg3r_64.pkl"), "--seeds", "0-3", "--truncation", "0.7", "-o", str(out),
                "--device", "cpu"]) == 0
    with np.load(out) as npz:
        assert np.array_equal(npz["images"], gold["images"])
    G = load_nvlabs_pickle(DATA / "sg3t_64.pkl")
    assert type(G).__name__ == "StyleGAN3Generator" and G.num_ws == 16
    ws = G.ws(torch.randn(1, 32))
    assert G.synthesis(ws).shape == (1, 3, 64, 64)
    assert cli(["style-mix", str(DATA / "sg3t_64.pkl"), "--rows", "1", "--cols", "2", "-o", str(tmp_path / "m.png"),
                "--device", "cpu"]) == 0


def test_loaded_network_has_the_nvlabs_interface():
    G = load_nvlabs_pickle(DATA / "sg2_64.pkl")
    assert (G.z_dim, G.c_dim, G.w_dim, G.img_resolution, G.img_channels) == (32, 0, 32, 64, 3)
    assert G.num_ws == 10 and not G.training
    z = torch.randn(2, 32)
    ws = G.ws(z, 0.5, truncation_cutoff=4)
    full = G.ws(z, 1.0)
    assert torch.allclose(ws[:, 4:], full[:, 4:]) and not torch.allclose(ws[:, :4], full[:, :4])


# ---------------------------------------------------------------- hostile files


class _Payload:
    """Pickles as a call of ``fn(*args)``: what an attacker would put in a downloaded file."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _write(path: Path, obj) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


def test_a_reduce_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    bad = _write(tmp_path / "evil.pkl", {"G_ema": _Payload(Path.touch, marker)})
    with pytest.raises(BadInput, match="pathlib.*not part of a network snapshot; nothing was run"):
        load_nvlabs_pickle(bad)
    exec_payload = _write(tmp_path / "exec.pkl", _Payload(exec, f"open({str(marker)!r}, 'w')"))
    with pytest.raises(BadInput, match="builtins.exec"):
        load_nvlabs_pickle(exec_payload)
    assert not marker.exists()


def _tf_repickled(path: Path, edit=lambda state: None) -> bytes:
    """A TensorFlow golden snapshot written again as NVlabs' ``Network`` objects, each state
    passed through ``edit`` first (what an altered or hostile download would hold)."""
    from ganeval.models.nvlabs import TFNetwork, _class_named, _read

    with _class_named("dnnlib.tflib.network", "Network") as Network:
        def rebuild(record: TFNetwork):
            state = dict(record.state)
            state["components"] = {k: rebuild(v) for k, v in (state.get("components") or {}).items()}
            edit(state)
            net = Network()
            net.__dict__.update(state)
            return net

        return pickle.dumps(tuple(rebuild(r) for r in _read(path)), protocol=3)


def test_tensorflow_snapshots_never_run_their_stored_source(tmp_path, capsys):
    """StyleGAN (v1) and TF StyleGAN2 pickles store their networks' source, which NVlabs' loader
    exec()s; ganeval keeps the state as data and rebuilds the network itself."""
    marker = tmp_path / "ran"

    def plant(state):
        state["build_module_src"] = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"

    for name in ("sg1_64", "sg2tf_64"):
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(_tf_repickled(DATA / f"{name}.pkl", plant))
        assert b"pathlib" in path.read_bytes()
        G = load_nvlabs_pickle(path)
        assert G.img_resolution == 64
        assert main(["sample", str(path), "--seeds", "0", "-o", str(tmp_path / f"{name}.npz"), "--device", "cpu"]) == 0
    assert not marker.exists()


def test_tensorflow_snapshots_name_what_they_cannot_build(tmp_path):
    with pytest.raises(BadInput, match="D of this TensorFlow snapshot is built by D_basic, which ganeval does not know"):
        load_nvlabs_pickle(DATA / "sg1_64.pkl", key="D")
    assert load_nvlabs_pickle(DATA / "sg1_64.pkl", key="G").training is False

    def pixel_norm(state):
        if state["build_func_name"] == "G_style":
            state["static_kwargs"] = dict(state["static_kwargs"], use_pixel_norm=True)

    odd = tmp_path / "odd.pkl"
    odd.write_bytes(_tf_repickled(DATA / "sg1_64.pkl", pixel_norm))
    with pytest.raises(BadInput, match="use_pixel_norm=True: only NVlabs' default False is supported"):
        load_nvlabs_pickle(odd)

    def relu(state):
        if state["build_func_name"] == "G_main":
            state["static_kwargs"] = dict(state["static_kwargs"], nonlinearity="relu")

    odd.write_bytes(_tf_repickled(DATA / "sg2tf_64.pkl", relu))
    with pytest.raises(BadInput, match="nonlinearity='relu': only NVlabs' default 'lrelu' is supported"):
        load_nvlabs_pickle(odd)

    def drop(state):
        state["variables"] = [(k, v) for k, v in state["variables"] if k != "4x4/Conv/weight"]

    short = tmp_path / "short.pkl"
    short.write_bytes(_tf_repickled(DATA / "sg1_64.pkl", drop))
    with pytest.raises(BadInput, match="has no variable synthesis/4x4/Conv/weight"):
        load_nvlabs_pickle(short)


def test_a_progressive_snapshot_renders_at_its_level_of_detail():
    """sg1_64_lod was saved at lod 1.3 (32 px fading in over 16 px): the image is 64 px made of
    2×2 blocks, as NVlabs renders it."""
    G = load_nvlabs_pickle(DATA / "sg1_64_lod.pkl")
    assert float(G.synthesis.lod) == pytest.approx(1.3)
    img = _golden("sg1_64_lod")["images"]
    assert np.array_equal(img[:, ::2, ::2], img[:, 1::2, 1::2])


def _with_module_src(source: str) -> bytes:
    """The golden pickle with its placeholder source replaced by ``source``."""
    data = (DATA / "sg2_64.pkl").read_bytes()
    ops = [(op, arg, pos) for op, arg, pos in pickletools.genops(data)
           if isinstance(arg, str) and arg.startswith("# NVlabs source omitted")]
    assert len(ops) == 1
    op, arg, pos = ops[0]
    new = source.encode()
    head = data[:pos]
    if op.name == "SHORT_BINUNICODE":
        assert len(new) < 256
        return head + bytes([0x8C, len(new)]) + new + data[pos + 2 + len(arg.encode()):]
    return head + b"X" + len(new).to_bytes(4, "little") + new + data[pos + 5 + len(arg.encode()):]


def test_stored_source_is_never_executed(tmp_path):
    marker = tmp_path / "ran"
    planted = tmp_path / "planted.pkl"
    planted.write_bytes(_with_module_src(f"open({str(marker)!r}, 'w').write('x')\n"))
    G = load_nvlabs_pickle(planted)  # loads: the source is data, and never read
    assert G.z_dim == 32 and not marker.exists()


@pytest.mark.parametrize("content,message", [
    (b"", "truncated"),
    (b"not a pickle at all", "not a readable pickle"),
])
def test_unreadable_files_are_one_line_errors(tmp_path, content, message):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(content)
    with pytest.raises(BadInput, match=message):
        load_nvlabs_pickle(bad)


def test_truncated_pickle_is_refused(tmp_path):
    data = (DATA / "sg2_64.pkl").read_bytes()
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput, match="truncated|not a readable"):
        load_nvlabs_pickle(cut)


def test_a_pickle_without_a_network_is_refused(tmp_path):
    plain = _write(tmp_path / "plain.pkl", {"numbers": [1, 2, 3]})
    with pytest.raises(BadInput, match="no network under 'G_ema'"):
        load_nvlabs_pickle(plain)
    assert not is_nvlabs_pickle(plain) and is_nvlabs_pickle(DATA / "sg2_64.pkl")


def test_an_unknown_architecture_is_named(tmp_path):
    data = (DATA / "sg2_64.pkl").read_bytes()
    renamed = data.replace(b"\x8c\x09Generator", b"\x8c\x09Gnrtrxxxx", 1)
    assert renamed != data
    path = tmp_path / "other.pkl"
    path.write_bytes(renamed)
    with pytest.raises(BadInput, match="G_ema is a Gnrtrxxxx that ganeval does not know"):
        load_nvlabs_pickle(path)


def test_commands_refuse_hostile_pickles_with_exit_2(tmp_path, capsys):
    marker = tmp_path / "ran"
    evil = _write(tmp_path / "network-snapshot-000000.pkl",
                  {"G_ema": _Payload(Path.touch, marker), "pad": "_reconstruct_persistent_obj"})
    assert main(["sample", str(evil), "--seeds", "0", "-o", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nothing was run" in err
    other = _write(tmp_path / "other.pkl", {"x": 1})
    assert main(["sample", str(other), "--seeds", "0", "-o", str(tmp_path / "o.npz")]) == 2
    assert "not an NVlabs network snapshot" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "o.npz").exists()


def test_golden_files_hold_no_nvlabs_source():
    for path in DATA.glob("*.pkl"):
        data = path.read_bytes()
        assert b"NVIDIA" not in data and b"def forward" not in data and b"def G_" not in data, path
