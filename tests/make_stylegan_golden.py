"""Regenerate tests/data/nvlabs/sg1_*: small random StyleGAN (v1) networks built by NVlabs'
TensorFlow code, pickled as its training loop writes ``network-snapshot-*.pkl`` (a tuple G, D,
Gs), and the images ``Gs.run`` renders for seeds 0-3 (z = RandomState(seed).randn(1, z_dim),
truncation 0.7, stored noise, uint8 by ``tflib.convert_images_to_uint8``).

NVlabs' code is an oracle here, never part of ganeval. Run this in a throwaway environment
outside the repository, with NVlabs' stylegan repository fetched and unpacked there:

    python3.11 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu==2.21.0 'numpy<2' 'ml_dtypes<0.6'
    /tmp/tfenv/bin/python tests/make_stylegan_golden.py --stylegan /tmp/nv-stylegan --out tests/data/nvlabs

The 2019 code runs under TensorFlow 2's v1 compatibility layer with a small shim set up below:
v2 behaviour off, empty stand-ins for ``tensorflow.contrib`` and ``tensorboard`` (imported, never
used for rendering), soft device placement, and NCHW ops run as NHWC (TensorFlow's CPU kernels
refuse NCHW). numpy < 2 makes the pickles name ``numpy.core`` as the originals do. Every
network's stored source (``build_module_src``) is replaced by a placeholder before pickling, so
no NVlabs code enters the repository; ganeval never reads that field."""
from __future__ import annotations

import argparse
import pickle
import sys
import types
from pathlib import Path

import numpy as np

SEEDS = (0, 1, 2, 3)
PSI = 0.7
PLACEHOLDER = "# NVlabs source omitted: ganeval rebuilds networks from their stored arguments\n"

# name: (G/D keyword arguments, lod written into the snapshot)
COMMON = dict(latent_size=32, dlatent_size=32, mapping_fmaps=32, num_channels=3, label_size=0)
CONFIGS = {
    "sg1_64": (dict(COMMON, resolution=64, fmap_base=256, fmap_max=16), 0.0),
    # 128 px: the last block upsamples with NVlabs' fused transposed convolution
    "sg1_128": (dict(COMMON, resolution=128, fmap_base=256, fmap_max=8, mapping_layers=4), 0.0),
    # a snapshot taken while growing: lod 1.3 fades 16 px into 32 px, shown at 64 px
    "sg1_64_lod": (dict(COMMON, resolution=64, fmap_base=256, fmap_max=16, mapping_layers=2), 1.3),
    "sg1_32_cond": (dict(COMMON, resolution=32, fmap_base=256, fmap_max=16, mapping_layers=2, label_size=4), 0.0),
}


def _nchw_as_nhwc(tf):
    """Wrap the 2-D ops NVlabs calls with data_format='NCHW' so they run as NHWC on CPU."""
    to_nhwc, to_nchw = (lambda x: tf.transpose(x, [0, 2, 3, 1])), (lambda x: tf.transpose(x, [0, 3, 1, 2]))

    def swap(v):
        return [v[0], v[2], v[3], v[1]] if isinstance(v, (list, tuple)) and len(v) == 4 else v

    def wrap(op, takes_shape=False):
        def run(x, f, *args, **kwargs):
            if kwargs.get("data_format") != "NCHW":
                return op(x, f, *args, **kwargs)
            kwargs["data_format"] = "NHWC"
            for key in ("strides", "ksize"):
                if key in kwargs:
                    kwargs[key] = swap(kwargs[key])
            if takes_shape:
                shape = args[0] if args else kwargs.pop("output_shape")
                args = (tf.stack([shape[0], shape[2], shape[3], shape[1]]),) + tuple(args[1:])
            return to_nchw(op(to_nhwc(x), f, *args, **kwargs))
        return run

    def pool(x, ksize, strides, padding, data_format="NHWC", **kwargs):
        if data_format != "NCHW":
            return tf.nn.avg_pool(x, ksize, strides, padding, data_format=data_format, **kwargs)
        return to_nchw(tf.nn.avg_pool(to_nhwc(x), swap(ksize), swap(strides), padding, data_format="NHWC", **kwargs))

    nn = types.SimpleNamespace(**{k: getattr(tf.nn, k) for k in dir(tf.nn) if not k.startswith("__")})
    nn.conv2d = wrap(tf.nn.conv2d)
    nn.depthwise_conv2d = wrap(tf.nn.depthwise_conv2d)
    nn.conv2d_transpose = wrap(tf.nn.conv2d_transpose, takes_shape=True)
    nn.avg_pool = pool
    return nn


def setup_tensorflow():
    import tensorflow as tf2

    tf = tf2.compat.v1
    tf.disable_v2_behavior()
    shim = types.ModuleType("tensorflow")
    shim.__dict__.update({k: getattr(tf, k) for k in dir(tf) if not k.startswith("__")})
    shim.nn = _nchw_as_nhwc(tf)

    def get_variable(name, shape=None, *args, **kwargs):  # TF 1.x read True as 1 in a shape
        shape = None if shape is None else [int(d) if isinstance(d, bool) else d for d in shape]
        return tf.get_variable(name, shape, *args, **kwargs)

    shim.get_variable = get_variable
    sys.modules["tensorflow"] = shim
    for name in ("tensorflow.contrib", "tensorflow.contrib.nccl", "tensorboard", "tensorboard.summary",
                 "tensorboard.plugins", "tensorboard.plugins.custom_scalar",
                 "tensorboard.plugins.custom_scalar.layout_pb2"):
        sys.modules[name] = types.ModuleType(name)
    sys.modules["tensorboard"].summary = sys.modules["tensorboard.summary"]
    return tf


def build_and_render(name: str, seed: int) -> tuple[bytes, dict[str, np.ndarray]]:
    import dnnlib.tflib as tflib
    from dnnlib.tflib import network as tfnet

    kwargs, lod = CONFIGS[name]
    tflib.init_tf({"rnd.np_random_seed": seed, "rnd.tf_random_seed": seed, "allow_soft_placement": True})
    G = tflib.Network("G", func_name="training.networks_stylegan.G_style", **kwargs)
    D = tflib.Network("D", func_name="training.networks_stylegan.D_basic",
                      **{k: kwargs[k] for k in ("num_channels", "resolution", "label_size", "fmap_base", "fmap_max")})
    # the fresh initialisation has zero biases, zero noise strengths, a ones constant and w_avg 0:
    # give them values a trained network has, so the test sees every one of them
    rnd = np.random.RandomState(seed)
    updates = {}
    for var_name, var in G.vars.items():
        shape = var.shape.as_list()
        if var_name.endswith(("bias", "Noise/weight", "dlatent_avg")) or var_name.endswith("Const/const"):
            updates[var] = rnd.normal(0, 0.5, shape).astype(np.float32)
        elif "ToRGB" in var_name and var_name.endswith("weight"):  # keep most pixels inside [-1, 1]
            updates[var] = rnd.normal(0, 0.25, shape).astype(np.float32)
        elif var_name == "lod" or var_name.endswith("/lod"):
            updates[var] = np.float32(lod)
    tflib.set_vars(updates)
    Gs = G.clone("Gs")

    original = tfnet.Network.__getstate__

    def without_source(self):
        state = original(self)
        state["build_module_src"] = PLACEHOLDER
        return state

    tfnet.Network.__getstate__ = without_source
    try:
        data = pickle.dumps((G, D, Gs), protocol=3)
    finally:
        tfnet.Network.__getstate__ = original

    z_dim, c_dim = kwargs["latent_size"], kwargs["label_size"]
    images, classes = [], []
    for i, s in enumerate(SEEDS):
        z = np.random.RandomState(s).randn(1, z_dim)
        c = np.zeros([1, c_dim], np.float32)
        if c_dim:
            c[0, i % c_dim] = 1
            classes.append(i % c_dim)
        images.append(Gs.run(z, c, truncation_psi=PSI, randomize_noise=False,
                             output_transform=dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True)))
    golden = {"images": np.concatenate(images), "seeds": np.array(SEEDS), "psi": np.float32(PSI),
              "lod": np.float32(lod)}
    if c_dim:
        golden["classes"] = np.array(classes)
    return data, golden


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stylegan", type=Path, required=True, help="unpacked NVlabs/stylegan repository")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", nargs="*", default=list(CONFIGS))
    args = parser.parse_args()
    setup_tensorflow()
    sys.path.insert(0, str(args.stylegan.resolve()))
    import tensorflow as tf

    args.out.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(args.only):
        tf.reset_default_graph()
        if tf.get_default_session() is not None:
            tf.get_default_session().close()
        with tf.Graph().as_default():
            data, golden = build_and_render(name, seed=100 + i)
        (args.out / f"{name}.pkl").write_bytes(data)
        np.savez_compressed(args.out / f"{name}.npz", **golden)
        print(name, golden["images"].shape, len(data) // 1024, "KiB")


if __name__ == "__main__":
    main()
