"""``--preset torch-fidelity``: Inception inputs, features and FID/KID/IS equal torch-fidelity's
on the same images and weights (its TF1-style bilinear resize and (x−128)/128)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import ganeval
from ganeval.compat import ensure_torchvision_importable
from ganeval.features.inception import InceptionExtractor
from ganeval.resample import tf1_bilinear_resize
from tests.folders import png_folders

ensure_torchvision_importable()
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3  # noqa: E402
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x  # noqa: E402


@pytest.mark.parity
@pytest.mark.parametrize("size", [(32, 32), (64, 48), (299, 299), (512, 512)])
def test_tf1_bilinear_resize_equals_torch_fidelity(size, parity):
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(size[0])) * 255
    ref = interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)
    parity("TF1 bilinear resize to 299", "torch-fidelity interpolate_bilinear_2d_like_tensorflow1x",
           tf1_bilinear_resize(x, 299), ref)
    assert torch.equal(tf1_bilinear_resize(x, 299), ref)


@pytest.mark.slow
@pytest.mark.parity
def test_features_equal_torch_fidelity(inception_state, inception_weights, faces32, parity):
    reference = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                            feature_extractor_weights_path=inception_weights).eval()
    ours = InceptionExtractor(inception_state, "test", False, resize="torch-fidelity").eval()
    default = InceptionExtractor(inception_state, "test", False).eval()
    images = torch.from_numpy(faces32[:4]).permute(0, 3, 1, 2).contiguous()
    with torch.inference_mode():
        ref, got, pfid = reference(images)[0], ours(images), default(images)
    assert ours.info.resize == "torch-fidelity"
    parity("Inception pool3 features, preset torch-fidelity", "torch-fidelity FeatureExtractorInceptionV3", got, ref)
    assert (got - ref).abs().max().item() < 1e-5
    assert (pfid - ref).abs().max().item() > 1e-3  # pytorch-fid's preprocessing really differs


@pytest.mark.slow
@pytest.mark.parity
def test_metrics_equal_torch_fidelity_calculate_metrics(tmp_path, inception_weights, faces32, parity):
    from torch_fidelity import calculate_metrics

    png_folders(tmp_path, a=faces32[:24], b=faces32[24:48])
    common = dict(cuda=False, feature_extractor_weights_path=inception_weights, cache=False, verbose=False,
                  save_cpu_ram=True)
    ref = calculate_metrics(input1=str(tmp_path / "a"), input2=str(tmp_path / "b"), fid=True, kid=True,
                            kid_subset_size=12, kid_subsets=50, **common)
    ref |= calculate_metrics(input1=str(tmp_path / "b"), isc=True, **common)  # IS is of input1
    ours = ganeval.compute_metrics(tmp_path / "a", tmp_path / "b", metrics="fid,kid,is", preset="torch-fidelity",
                                   weights=inception_weights, device="cpu", kid_subsets=50, kid_subset_size=12,
                                   cache=False, on_warning=lambda m: None)
    for name, key in (("fid", "frechet_inception_distance"), ("is_mean", "inception_score_mean"),
                      ("kid_mean", "kernel_inception_distance_mean")):
        parity(f"{name} end to end on image folders, preset torch-fidelity", "torch-fidelity calculate_metrics",
               ours[name], ref[key])
    assert ours.fid == pytest.approx(ref["frechet_inception_distance"], rel=1e-5)
    assert ours.is_mean == pytest.approx(ref["inception_score_mean"], rel=1e-5)
    assert ours.kid_mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-4, abs=1e-6)
    assert ours.resize == "torch-fidelity" and ours.preset == "torch-fidelity"
    with np.testing.assert_raises(AssertionError):
        np.testing.assert_allclose(ganeval.compute_fid(tmp_path / "a", tmp_path / "b", weights=inception_weights,
                                                       device="cpu", cache=False, on_warning=lambda m: None),
                                   ours.fid, rtol=1e-3)


def test_preset_flag_names_reference_packages(tmp_path, capsys, faces32):
    from ganeval.cli.main import main
    from ganeval.features.registry import preset_of, preset_resize

    assert [preset_resize(p) for p in ("pytorch-fid", "torch-fidelity", "clean-fid", "clean")] == \
        ["pytorch-fid", "torch-fidelity", "clean", "clean"]
    assert preset_of("clean") == "clean-fid" and preset_of("native") is None
    np.save(tmp_path / "a.npy", faces32[:4])
    assert main(["fid", str(tmp_path / "a.npy"), str(tmp_path / "a.npy"), "--preset", "tf1"]) == 2
    assert "unknown preset 'tf1': choose one of pytorch-fid, clean-fid, torch-fidelity" in capsys.readouterr().err
    assert main(["fid", str(tmp_path / "a.npy"), str(tmp_path / "a.npy"), "--preset", "torch-fidelity",
                 "--features", "dinov2"]) == 2
    assert "Inception features only" in capsys.readouterr().err
