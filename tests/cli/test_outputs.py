"""The output policy: refuse before the work, replace only what ganeval wrote."""
from __future__ import annotations

import json

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


def test_symlinks_and_parents_of_inputs_are_refused(tmp_path):
    from ganeval.outputs import check_not_input

    src = tmp_path / "imgs"
    src.mkdir()
    (tmp_path / "alias").symlink_to(src, target_is_directory=True)
    for out in (tmp_path / "alias", tmp_path / "alias" / "x.png", tmp_path):
        with pytest.raises(OutputRefused, match="input"):
            check_not_input(out, [src])
    check_not_input(tmp_path / "elsewhere", [src])  # a sibling is fine


def test_a_run_folder_stands_for_its_checkpoint(tmp_path):
    from ganeval.outputs import checkpoint_input

    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"x")
    prepare_output_dir(run / "samples", "sample", [checkpoint_input(run)])  # beside the checkpoint: fine
    with pytest.raises(OutputRefused, match="holds the input"):
        prepare_output_dir(run, "sample", [checkpoint_input(run)], overwrite=True)


def test_several_output_files_must_differ(tmp_path):
    from ganeval.outputs import check_output_files

    with pytest.raises(OutputRefused, match="same file twice"):
        check_output_files([tmp_path / "a.npz", tmp_path / "." / "a.npz"], flag="--save-stats")
    assert len(check_output_files([tmp_path / "a.npz", tmp_path / "b.npz"])) == 2


def test_resume_keeps_complete_files_of_the_same_settings_only(tmp_path):
    out = tmp_path / "s"
    first = prepare_output_dir(out, "sample", settings={"seed": 1})
    first.claim("000000.png").write_bytes(b"0")
    first.record("000000.png")
    (out / "000001.png").write_bytes(b"1")  # written after the last manifest save
    with pytest.raises(OutputRefused, match="--resume to continue"):
        prepare_output_dir(out, "sample", settings={"seed": 1}, can_resume=True)
    with pytest.raises(OutputRefused, match="other settings"):
        prepare_output_dir(out, "sample", resume=True, settings={"seed": 2})
    with pytest.raises(OutputRefused, match="nothing to resume"):
        prepare_output_dir(out, "upscale", resume=True, settings={"seed": 1})
    with pytest.raises(OutputRefused, match="exclude each other"):
        prepare_output_dir(out, "sample", resume=True, overwrite=True)
    again = prepare_output_dir(out, "sample", resume=True, settings={"seed": 1})
    assert again.resumed and again.done("000000.png") and again.done("000001.png") and not again.done("000002.png")
    again.save()
    assert json.loads((out / MANIFEST).read_text())["files"] == ["000000.png", "000001.png"]
    fresh = prepare_output_dir(tmp_path / "new", "sample", resume=True)  # nothing there: a plain start
    assert not fresh.resumed


def test_deferred_folder_is_created_only_when_written(tmp_path):
    out = tmp_path / "later"
    pending = prepare_output_dir(out, "sample", defer=True)
    assert not out.exists()
    pending.claim("a.png").write_bytes(b"a")
    assert (out / MANIFEST).is_file()


def test_reserved_names_and_record_new(tmp_path):
    out = tmp_path / "nn"
    out.mkdir()
    (out / "summary.json").write_text("mine")
    with pytest.raises(OutputRefused, match="summary.json, which it did not write"):
        prepare_output_dir(out, "nearest", overwrite=True, reserve=("summary.json",))
    (out / "summary.json").rename(out / "mine.json")
    folder = prepare_output_dir(out, "nearest", overwrite=True, reserve=("summary.json",))
    (out / "summary.json").write_text("{}")
    (out / "sheets").mkdir()
    (out / "sheets" / "1.png").write_bytes(b"p")
    assert folder.record_new() == ["sheets/1.png", "summary.json"]
    prepare_output_dir(out, "nearest", overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "mine.json"]


def test_interrupted_carries_its_exit_code(capsys, monkeypatch):
    import ganeval.cli.main as cli
    from ganeval.outputs import Interrupted

    def stop(args):
        raise Interrupted("interrupted after writing 3 of 9 images", exit_code=143)

    parser = cli.build_parser(["models"])
    monkeypatch.setattr(cli, "build_parser", lambda *argv: parser)
    args = parser.parse_args(["models"])
    monkeypatch.setattr(parser, "parse_args", lambda argv=None: type(args)(**{**vars(args), "func": stop}))
    assert cli.main(["models"]) == 143
    assert capsys.readouterr().err.strip() == "ganeval models: interrupted after writing 3 of 9 images"
