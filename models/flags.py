"""The named ``ganeval train`` flags for family-specific settings, in a module without
torch so the CLI can build its parser cheaply.

Each row is (flag, key in ``ModelConfig.options``, type, help). The family's ``options``
function validates the value (and refuses a key it does not know), so a family's flag is
one row here; anything else can be passed as ``-O KEY=VALUE``."""
from __future__ import annotations

FAMILY_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("--cfg", "cfg", str, "NVlabs' --cfg: stylegan2 auto, stylegan2, paper256, paper512 or paper1024; stylegan3 t or r "
                          "(default: stylegan2 auto, NVlabs' defaults for the resolution and batch; stylegan3 t)"),
    ("--pl-weight", "pl_weight", float, "stylegan2: path-length regularisation weight (default 2; 0: off)"),
    ("--r1-gamma", "r1_gamma", float, "stylegan2: R1 weight γ (default: the cfg's; auto 0.0002·res²/total batch)"),
    ("--ada-target", "ada_target", float, "stylegan2: ADA target r_t for sign(D(real)) (default 0.6)"),
    ("--ada-kimg", "ada_kimg", float, "stylegan2: thousands of images for p to go 0 -> 1 (default 500)"),
    ("--scale", "scale", int, "srgan: upscaling factor 2, 4 or 8 (default 4); --resolution is the HR size"),
    ("--n-blocks", "n_blocks", int, "srgan/cyclegan/ugatit: residual blocks in G (default: the paper's)"),
    ("--perceptual", "perceptual", str, "srgan: off, auto, illust2vec[:PATH] or vgg19[:PATH] (default auto: "
                                        "whichever weights are cached, else off)"),
)
