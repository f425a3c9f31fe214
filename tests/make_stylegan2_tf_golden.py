"""Regenerate tests/data/nvlabs/sg2tf_*.pkl: the StyleGAN2 generators of sg2_64.pkl and
sg2_64_cond.pkl written as NVlabs' TensorFlow snapshots are (a tuple G, D, Gs of
``dnnlib.tflib.network.Network`` records, version 4, variables named as the TensorFlow code names
them), so they render the goldens sg2_64.npz and sg2_64_cond.npz.

    python tests/make_stylegan2_tf_golden.py --out tests/data/nvlabs                    # write
    python tests/make_stylegan2_tf_golden.py --out tests/data/nvlabs \\
        --check /tmp/nv-stylegan2-ada-pytorch                                           # and check

``--check`` is the oracle: in a throwaway environment with NVlabs' stylegan2-ada-pytorch
unpacked outside this repository, NVlabs' own converter (``legacy.convert_tf_generator``) reads
each written file and NVlabs' generator renders seeds 0-3 at ψ 0.7 with constant noise; the
images must equal the goldens, which NVlabs rendered from the PyTorch originals. The networks'
stored source is a placeholder: no code of NVlabs' is in these files."""
from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

SOURCES = {"sg2tf_64": "sg2_64", "sg2tf_64_cond": "sg2_64_cond"}
PLACEHOLDER = "# NVlabs source omitted: ganeval rebuilds networks from their stored arguments\n"


def tf_layout(kwargs: dict, tensors: dict) -> tuple[dict, dict, dict]:
    """(G_main kwargs, mapping variables, synthesis variables) of a PyTorch StyleGAN2 snapshot."""
    syn = dict(kwargs.get("synthesis_kwargs") or {})
    mapping = dict(kwargs.get("mapping_kwargs") or {})
    static = {"latent_size": kwargs["z_dim"], "label_size": kwargs["c_dim"], "dlatent_size": kwargs["w_dim"],
              "resolution": kwargs["img_resolution"], "num_channels": kwargs["img_channels"],
              "mapping_layers": mapping.get("num_layers", 8), "fmap_base": syn["channel_base"] // 2,
              "fmap_max": syn["channel_max"], "conv_clamp": syn.get("conv_clamp"), "architecture": "skip"}
    t = {k: v.numpy().astype(np.float32) for k, v in tensors.items()}
    maps = {}
    for i in range(static["mapping_layers"]):
        maps[f"Dense{i}/weight"] = t[f"mapping.fc{i}.weight"].T
        maps[f"Dense{i}/bias"] = t[f"mapping.fc{i}.bias"]
    if static["label_size"]:
        maps["LabelEmbed/weight"] = t["mapping.embed.weight"].T
        maps["LabelEmbed/bias"] = t["mapping.embed.bias"]
    synth = {}
    res = 4
    while res <= static["resolution"]:
        b, s = f"synthesis.b{res}", f"{res}x{res}"
        layers = [("conv1", "Conv", 0)] if res == 4 else [("conv0", "Conv0_up", -5), ("conv1", "Conv1", -4)]
        if res == 4:
            synth[f"{s}/Const/const"] = t[f"{b}.const"][None]
        for conv, scope, offset in layers:
            w = t[f"{b}.{conv}.weight"].transpose(2, 3, 1, 0)
            synth[f"{s}/{scope}/weight"] = w[::-1, ::-1].copy() if scope == "Conv0_up" else w
            synth[f"{s}/{scope}/bias"] = t[f"{b}.{conv}.bias"]
            synth[f"{s}/{scope}/noise_strength"] = t[f"{b}.{conv}.noise_strength"]
            synth[f"{s}/{scope}/mod_weight"] = t[f"{b}.{conv}.affine.weight"].T
            synth[f"{s}/{scope}/mod_bias"] = t[f"{b}.{conv}.affine.bias"] - 1
            noise = 0 if res == 4 else int(np.log2(res)) * 2 + offset
            synth[f"noise{noise}"] = t[f"{b}.{conv}.noise_const"][None, None]
        synth[f"{s}/ToRGB/weight"] = t[f"{b}.torgb.weight"].transpose(2, 3, 1, 0)
        synth[f"{s}/ToRGB/bias"] = t[f"{b}.torgb.bias"]
        synth[f"{s}/ToRGB/mod_weight"] = t[f"{b}.torgb.affine.weight"].T
        synth[f"{s}/ToRGB/mod_bias"] = t[f"{b}.torgb.affine.bias"] - 1
        res *= 2
    return static, maps, synth


def write(source: Path, out: Path) -> None:
    from ganeval.models.nvlabs import _class_named, _read

    record = _read(source)["G_ema"]
    static, maps, synth = tf_layout(record.init_kwargs, record.tensors())
    with _class_named("dnnlib.tflib.network", "Network") as Network:
        def network(name: str, func: str, variables: dict, components: dict | None = None):
            net = Network()
            net.__dict__.update({"version": 4, "name": name, "static_kwargs": dict(static),
                                 "components": components or {}, "build_module_src": PLACEHOLDER,
                                 "build_func_name": func, "variables": list(variables.items())})
            return net

        def generator(name: str, w_avg: np.ndarray):
            return network(name, "G_main", {"dlatent_avg": w_avg},
                           {"mapping": network("G_mapping", "G_mapping", maps),
                            "synthesis": network("G_synthesis", "G_synthesis_stylegan2", synth)})

        w_avg = record.tensors()["mapping.w_avg"].numpy()
        data = pickle.dumps((generator("G", w_avg), network("D", "D_stylegan2", {}), generator("Gs", w_avg)),
                            protocol=3)
    out.write_bytes(data)


def check(nvlabs: Path, path: Path, golden: Path) -> int:
    """NVlabs' converter and generator render the file; the largest difference from the golden."""
    import torch

    sys.path.insert(0, str(nvlabs))
    import legacy  # noqa: E402  (NVlabs, from the fetched copy)

    with open(path, "rb") as f:
        _, _, tf_Gs = legacy._LegacyUnpickler(f).load()
    G = legacy.convert_tf_generator(tf_Gs)
    with np.load(golden) as g:
        gold = {k: g[k] for k in g.files}
    worst = 0
    for i, seed in enumerate(gold["seeds"]):
        z = torch.from_numpy(np.random.RandomState(int(seed)).randn(1, G.z_dim))
        c = torch.zeros(1, G.c_dim)
        if G.c_dim:
            c[0, int(gold["classes"][i])] = 1
        img = G(z, c, truncation_psi=float(gold["psi"]), noise_mode="const")
        img = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
        worst = max(worst, int(np.abs(img.astype(int) - gold["images"][i:i + 1].astype(int)).max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--check", type=Path, help="unpacked NVlabs/stylegan2-ada-pytorch: render with NVlabs' converter")
    args = parser.parse_args()
    for name, source in SOURCES.items():
        path = args.out / f"{name}.pkl"
        if not args.check:
            write(args.out / f"{source}.pkl", path)
            print("wrote", path)
        else:
            print(name, "max difference from", f"{source}.npz:", check(args.check, path, args.out / f"{source}.npz"))


if __name__ == "__main__":
    main()
