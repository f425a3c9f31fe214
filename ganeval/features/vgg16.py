"""VGG-16 fc2 features, where Kynkäänniemi et al. (2019) define precision and recall.

As torch-fidelity's ``vgg16`` extractor (the one its ``prc`` loads): torchvision's VGG-16 with
ImageNet weights, the input resized to 224×224 by TF1's bilinear resize, normalised with
ImageNet mean/std on the 0–255 scale, and the second fully connected layer after its ReLU
(4096-d). Weights: torchvision's published ``vgg16-397923af.pth`` (SHA-256 prefix checked),
from ``--weights PATH``, the cache or the download."""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from ganeval.compat import import_torchvision
from ganeval.errors import BadInput
from ganeval.features.base import ExtractorInfo, FeatureExtractor
from ganeval.resample import tf1_bilinear_resize
from ganeval.weights import WeightSpec, file_sha256, load_state_dict, locate_weights

VGG16_WEIGHTS = WeightSpec(
    filename="vgg16-397923af.pth",
    url="https://download.pytorch.org/models/vgg16-397923af.pth",
    sha256_prefix="397923af",
    how_to_get="download vgg16-397923af.pth from https://download.pytorch.org/models/ on a machine with internet.",
)
INPUT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG16Extractor(FeatureExtractor):
    """uint8 RGB N×3×H×W → ReLU(fc2) N×4096."""

    def __init__(self, state: dict[str, torch.Tensor], weights_id: str, standard: bool) -> None:
        super().__init__()
        with torch.device("meta"):
            net = import_torchvision().models.vgg16(weights=None)
        try:
            net.load_state_dict(state, assign=True)
        except RuntimeError as err:
            raise BadInput(f"not torchvision VGG-16 weights ({str(err).splitlines()[0]})") from None
        del net.classifier[4:]  # up to fc2: Linear, ReLU, Dropout, Linear
        self.net = net.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([255 * m for m in IMAGENET_MEAN]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([255 * s for s in IMAGENET_STD]).view(1, 3, 1, 1))
        self.info = ExtractorInfo("vgg16", 4096, INPUT_SIZE, weights_id, standard)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = tf1_bilinear_resize(images.float(), INPUT_SIZE)
        return F.relu(self.net((x - self.mean) / self.std))


def build_vgg16(weights: str | os.PathLike | None = None, device: torch.device | str = "cpu") -> VGG16Extractor:
    path = locate_weights(VGG16_WEIGHTS, weights)
    digest = file_sha256(path)
    try:
        extractor = VGG16Extractor(load_state_dict(path), digest, digest.startswith(VGG16_WEIGHTS.sha256_prefix))
    except BadInput as err:
        raise BadInput(f"{path}: {err}") from None
    return extractor.to(device)
