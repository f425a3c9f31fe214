"""torchvision import that survives a CUDA-built torchvision next to a CPU torch.

torchvision 0.28.0 wheels here are CUDA builds; beside the CPU torch 2.13.0 their C
extension fails to load and ``import torchvision`` dies with "operator torchvision::nms
does not exist" while registering fake kernels. Declaring the two op schemas first lets
the pure-Python parts (model definitions, transforms, make_grid) import. ``torchvision.io``
and ``ops.nms`` stay unusable, which is why image I/O goes through Pillow.
"""
from __future__ import annotations

import importlib
import sys
from types import ModuleType

_fixed = False


def _declare_missing_ops() -> None:
    global _fixed
    if _fixed:
        return
    import torch

    lib = torch.library.Library("torchvision", "FRAGMENT")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
    # keep the library object alive: dropping it unregisters the schemas
    sys.modules[__name__].__dict__["_torchvision_fragment"] = lib
    _fixed = True


def _purge(prefix: str) -> None:
    for name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        del sys.modules[name]


def import_torchvision() -> ModuleType:
    """Import torchvision, applying the op-schema fix only if the plain import fails."""
    if "torchvision" in sys.modules and hasattr(sys.modules["torchvision"], "__version__"):
        return sys.modules["torchvision"]
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as err:
        if "torchvision::nms" not in str(err) and "does not exist" not in str(err):
            raise
    _purge("torchvision")
    _declare_missing_ops()
    return importlib.import_module("torchvision")


def ensure_torchvision_importable() -> None:
    """Call before importing packages that import torchvision themselves (pytorch-fid,
    torch-fidelity, clean-fid, torchmetrics)."""
    import_torchvision()
