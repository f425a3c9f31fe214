"""The output policy: refuse before the work, replace only what ganeval wrote."""
from __future__ import annotations

import pytest

from ganeval.outputs import MANIFEST, OutputRefused, check_output_file, prepare_output_dir


def test_file_output_refuses_inputs_existing_files_and_folders(tmp_path):
    data = tmp_path / "faces.npz"
    data.write_bytes(b"x")
    with pytest.raises(OutputRefused, match="is the input"):
        check_output_file(data, [data], overwrite=True)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(OutputRefused, match="--overwrite"):
        check_output_file(notes)
    assert check_output_file(notes, overwrite=True) == notes
    with pytest.raises(OutputRefused, match="is a folder"):
        check_output_file(tmp_path)
    assert notes.read_text() == "mine"


def test_folder_output_replaces_only_its_own_files(tmp_path):
    src = tmp_path / "imgs"
    src.mkdir()
    with pytest.raises(OutputRefused, match="is the input"):
        prepare_output_dir(src, "upscale", [src], overwrite=True)
    with pytest.raises(OutputRefused, match="holds the input"):
        prepare_output_dir(tmp_path, "upscale", [src], overwrite=True)
    out = tmp_path / "out"
    first = prepare_output_dir(out, "upscale")
    first.claim("a.png").write_bytes(b"1")
    first.record("a.png")
    (out / "thesis.txt").write_text("mine")
    with pytest.raises(OutputRefused, match="not empty"):
        prepare_output_dir(out, "upscale")
    second = prepare_output_dir(out, "upscale", overwrite=True)
    assert not (out / "a.png").exists() and (out / "thesis.txt").read_text() == "mine"
    with pytest.raises(OutputRefused, match="did not write"):
        second.claim("thesis.txt")
    assert (out / MANIFEST).is_file()
