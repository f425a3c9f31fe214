"""Speed work on FID extraction must not move a single bit of the default (exact) features."""
from __future__ import annotations

import pytest

import numpy as np
import torch

from ganeval.compat import ensure_torchvision_importable
from ganeval.features.inception import FIDInceptionNet, build_inception
from ganeval.sources import open_source
from ganeval.features.extract import source_features

ensure_torchvision_importable()
from pytorch_fid import inception as pfid_inception  # noqa: E402


def _pytorch_fid_features(state: dict, images: torch.Tensor) -> torch.Tensor:
    original = pfid_inception.load_state_dict_from_url
    pfid_inception.load_state_dict_from_url = lambda *a, **k: state  # identical weights, no download
    try:
        reference = pfid_inception.InceptionV3([3]).eval()
    finally:
        pfid_inception.load_state_dict_from_url = original
    with torch.no_grad():
        # as pytorch-fid's loader hands them: contiguous N×3×H×W floats in [0, 1]
        return reference(images.permute(0, 3, 1, 2).contiguous().float() / 255.0)[0].flatten(1)


@pytest.mark.slow
def test_exact_mode_bit_identical_to_pytorch_fid(tmp_path, faces32, inception_state, inception_weights):
    """Through the whole path a command takes: weight file → extractor built without random
    init → source loader (2 batches, one partial) → features."""
    np.savez(tmp_path / "faces.npz", images=faces32[:5])
    extractor = build_inception(inception_weights, "cpu")
    ours = source_features(open_source(tmp_path / "faces.npz"), extractor, torch.device("cpu"), batch_size=3,
                           use_cache=False).features
    reference = torch.cat([_pytorch_fid_features(inception_state, torch.from_numpy(faces32[i:j]))
                           for i, j in ((0, 3), (3, 5))]).numpy()
    assert ours.dtype == np.float32 and ours.shape == (5, 2048)
    assert np.array_equal(ours, reference)
    assert ours.std(axis=0).mean() > 1e-2  # the features carry signal, so equality means something


def test_extractor_built_without_init_holds_the_file_weights(inception_state, inception_weights):
    extractor = build_inception(inception_weights, "cpu")
    loaded = extractor.net.state_dict()
    assert set(loaded) == set(FIDInceptionNet().state_dict())
    assert all(torch.equal(loaded[k], inception_state[k]) for k in loaded)
    assert not any(p.is_meta for p in extractor.parameters()) and not any(p.requires_grad for p in extractor.parameters())
