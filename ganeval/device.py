"""The one place that turns ``--device auto|cpu|cuda[:N]`` into a torch.device."""
from __future__ import annotations

import torch

from ganeval.errors import BadInput


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``auto`` means CUDA when present, else CPU."""
    if isinstance(spec, torch.device):
        return spec
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as err:
        raise BadInput(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BadInput(f"device {spec!r} asked for, but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise BadInput(f"device {spec!r} asked for, but only {torch.cuda.device_count()} GPU(s) exist")
    elif device.type != "cpu":
        raise BadInput(f"unsupported device {spec!r}: use auto, cpu, cuda or cuda:N")
    return device
