"""The one source → features layer: FID and ``nearest --space`` share its cache, skipped
files keep rows and source images aligned, and the TF32 guard holds for both."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

import ganeval.nearest.pipeline as pipeline
from ganeval.features.base import ExtractorInfo, FeatureExtractor
from ganeval.features.extract import source_features
from ganeval.nearest.api import NearestOptions
from ganeval.sources import open_source
from ganeval.synth import make_faces


class MeanColour(FeatureExtractor):
    """A network-free extractor: per-channel means and a corner pixel (6-d), and a note of
    whether TF32 was off while it ran."""

    def __init__(self):
        super().__init__()
        self.info = ExtractorInfo("meancolour", 6, 32, "w0", False)
        self.calls = 0
        self.tf32_seen: set[bool] = set()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.tf32_seen.add(torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32)
        x = images.float()
        return torch.cat([x.mean(dim=(2, 3)), x[:, :, 0, 0]], dim=1)


def _folder_with_a_broken_file(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    faces = make_faces(6, size=32, seed=3)
    for i, face in enumerate(faces):
        Image.fromarray(face).save(folder / f"{i:02d}.png")
    (folder / "02.png").write_bytes(b"not a png")  # row 2 onwards is image 3 onwards
    return folder, faces


def test_rows_point_at_their_source_images_when_files_are_skipped(tmp_path):
    folder, faces = _folder_with_a_broken_file(tmp_path)
    net, skips = MeanColour(), []
    fs = source_features(open_source(folder), net, torch.device("cpu"), batch_size=4, on_skip=skips.append)
    assert fs.n == 5 and fs.skipped == 1 and fs.skipped_files[0][0] == "02.png"
    assert fs.source_index.tolist() == [0, 1, 3, 4, 5]
    assert net.tf32_seen == {False}
    expected = net(torch.from_numpy(faces[[0, 1, 3, 4, 5]]).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_array_equal(fs.features, expected)
    np.testing.assert_allclose(fs.mu, expected.astype(np.float64).mean(0), rtol=1e-6)
    assert len(skips) == 1 and "02.png" in skips[0]

    again = source_features(open_source(folder), net, torch.device("cpu"), batch_size=7)
    assert again.cached and again.source_index.tolist() == [0, 1, 3, 4, 5]
    assert again.skipped_files == fs.skipped_files
    np.testing.assert_array_equal(again.features, fs.features)
    np.testing.assert_array_equal(again.sigma, fs.sigma)


def test_nearest_space_reuses_the_features_fid_cached(tmp_path, monkeypatch):
    folder, _ = _folder_with_a_broken_file(tmp_path)
    net = MeanColour()
    monkeypatch.setattr("ganeval.features.registry.build_extractor", lambda *a, **k: net)
    fid_side = source_features(open_source(folder), net, torch.device("cpu"))
    calls = net.calls

    space = pipeline._FeatureSpace(NearestOptions.flat("g", str(folder), space="meancolour"), open_source(folder),
                                   torch.device("cpu"))
    assert net.calls == calls and space.fs.cached  # no image went through the network again
    assert space.n == 5 and space.keys == ["00.png", "01.png", "03.png", "04.png", "05.png"]
    assert space.skipped == 1 and space.skipped_first == "02.png"
    unit = fid_side.features / np.linalg.norm(fid_side.features, axis=1, keepdims=True)
    np.testing.assert_allclose(space.train, unit, rtol=1e-6)
    nb = space.search(space.images([3]), 2)
    assert nb.index[0, 0] == 3 and nb.score[0, 0] > 0.99999
