"""``--features vgg16``: VGG-16 fc2 features and precision/recall equal torch-fidelity's ``prc``
(which loads VGG-16 for it) on the same images and weights."""
from __future__ import annotations

import pytest
import torch

import ganeval
from ganeval.compat import ensure_torchvision_importable, import_torchvision
from ganeval.errors import BadInput
from ganeval.features.registry import build_extractor
from tests.folders import png_folders

ensure_torchvision_importable()
from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16  # noqa: E402


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory) -> str:
    """torchvision's VGG-16 layout with seeded random weights, scaled so fc2 is not all zero."""
    torch.manual_seed(0)
    net = import_torchvision().models.vgg16(weights=None)
    path = tmp_path_factory.mktemp("vgg") / "vgg16-test.pth"
    torch.save(net.state_dict(), path)
    return str(path)


@pytest.mark.slow
@pytest.mark.parity
def test_features_equal_torch_fidelity_fc2_relu(vgg_weights, faces32, parity):
    reference = FeatureExtractorVGG16("vgg16", ["fc2_relu"], feature_extractor_weights_path=vgg_weights).eval()
    ours = build_extractor("vgg16", vgg_weights, torch.device("cpu")).eval()
    images = torch.from_numpy(faces32[:3]).permute(0, 3, 1, 2).contiguous()
    with torch.inference_mode():
        ref, got = reference(images)[0], ours(images)
    assert got.shape == (3, 4096) and ours.info.name == "vgg16" and not ours.info.standard
    assert (ref > 0).any()
    parity("VGG-16 fc2 (ReLU) features", "torch-fidelity FeatureExtractorVGG16", got, ref)
    assert (got - ref).abs().max().item() <= 1e-5 * max(1.0, ref.abs().max().item())


@pytest.mark.slow
@pytest.mark.parity
def test_precision_recall_equal_torch_fidelity_prc(tmp_path, vgg_weights, faces32, parity):
    from torch_fidelity import calculate_metrics

    png_folders(tmp_path, real=faces32[:20], fake=faces32[20:40])
    ref = calculate_metrics(input1=str(tmp_path / "fake"), input2=str(tmp_path / "real"), prc=True, cuda=False,
                            feature_extractor_weights_path=vgg_weights, cache=False, verbose=False)
    ours = ganeval.compute_metrics(tmp_path / "real", tmp_path / "fake", metrics="prdc", features="vgg16",
                                   weights=vgg_weights, prdc_k=3, device="cpu", cache=False,
                                   on_warning=lambda m: None)
    parity("precision and recall on VGG-16 fc2 end to end", "torch-fidelity calculate_metrics(prc=True)",
           [ours.precision, ours.recall], [ref["precision"], ref["recall"]])
    assert ours.precision == pytest.approx(ref["precision"], abs=1e-6)
    assert ours.recall == pytest.approx(ref["recall"], abs=1e-6)
    assert ours.features == "vgg16" and ours.feature_dim == 4096


def test_wrong_file_is_one_line(tmp_path):
    bad = tmp_path / "not-vgg.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(BadInput, match="not torchvision VGG-16 weights"):
        build_extractor("vgg16", bad, torch.device("cpu"))
