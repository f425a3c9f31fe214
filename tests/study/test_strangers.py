"""What strangers on a platform and a careless operator do: odd ids, blank passwords, spreadsheet
formulas, a lost database file, a busy port."""
from __future__ import annotations

import socket

import pytest

from ganeval.cli.main import main
from ganeval.errors import BadInput
from ganeval.study_app.build import build_study
from ganeval.study_app.export import formula_safe
from ganeval.study_app.store import MAX_EXTERNAL_ID, StudyStore, check_admin_password, check_external_id


@pytest.fixture
def study(tmp_path):
    import numpy as np

    from ganeval.synth import make_faces

    faces = make_faces(24, size=32, seed=3)
    np.savez(tmp_path / "real.npz", images=faces[:12])
    np.savez(tmp_path / "fake.npz", images=faces[12:])
    build_study(tmp_path / "s", str(tmp_path / "real.npz"), [str(tmp_path / "fake.npz")], trials=4)
    return tmp_path / "s"


def test_ids_are_validated_and_stored_whole(study):
    assert check_external_id("  5f3e2a  ") == "5f3e2a"
    for bad in ("abc\x00def", "tab\there", "x" * (MAX_EXTERNAL_ID + 1), "é" * 129, "   "):
        with pytest.raises(BadInput):
            check_external_id(bad)
    long_a, long_b = "p" * 250 + "A", "p" * 250 + "B"  # the same first 200 characters
    with StudyStore.open(study) as store:
        a, b = store.start_participant(external_id=long_a), store.start_participant(external_id=long_b)
        assert a != b
        assert store.participant_for(long_a) == a and store.participant_for(long_b) == b
        with pytest.raises(BadInput):
            store.start_participant(external_id="nul\x00id")


def test_admin_passwords_must_not_be_blank():
    for bad in (" " * 8, "\t" * 12, "short"):
        with pytest.raises(BadInput):
            check_admin_password(bad)
    assert check_admin_password("a long enough secret") == "a long enough secret"


def test_csv_export_escapes_every_formula_lead():
    import pandas as pd

    frame = pd.DataFrame({"external_id": ["=1+1", "＝1+1", "＋cmd", "－2", "＠SUM(A1)", "|calc", "+x", "plain"]})
    out = formula_safe(frame)["external_id"].tolist()
    assert out[:-1] == ["'" + v for v in frame["external_id"][:-1]] and out[-1] == "plain"


def test_status_and_export_on_a_lost_database_create_nothing(study, capsys):
    db = study / "study.db"
    db.unlink()
    for argv in (["study", "status", str(study)], ["study", "export", str(study), "-o", str(study.parent / "r.csv")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "is missing; nothing was read or created" in err and len(err.splitlines()) == 1
        assert not db.exists() and not (study.parent / "r.csv").exists()
    db.write_bytes(b"")
    assert main(["study", "status", str(study)]) == 2
    assert "is empty (0 bytes)" in capsys.readouterr().err and db.stat().st_size == 0


def test_run_checks_the_port_before_printing_urls(study, capsys, monkeypatch):
    pytest.importorskip("streamlit")
    monkeypatch.setenv("GANEVAL_STUDY_ADMIN_PASSWORD", "a long enough secret")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["study", "run", str(study), "--port", str(port), "--host", "127.0.0.1"]) == 2
    captured = capsys.readouterr()
    assert "participants:" not in captured.out and f"127.0.0.1:{port}" in captured.err


def test_the_participant_cap_holds_when_someone_comes_back(study):
    """Two places; A pauses too long, C takes A's place; A comes back: refused (not a third
    active participant), while B, who stayed, goes on."""
    from ganeval.study_app import db
    from ganeval.study_app.db import participants

    with StudyStore.open(study, max_participants=2, abandon_after_s=60) as store:
        a, b = store.start_participant(), store.start_participant()
        with db.write_tx(store.engine) as conn:  # A has been away for an hour
            conn.execute(participants.update().where(participants.c.token == a)
                         .values(active_at="2000-01-01T00:00:00+00:00", created_at="2000-01-01T00:00:00+00:00"))
        c = store.start_participant()  # A's place is free
        assert not store.keep_place(a)
        assert store.keep_place(b) and store.keep_place(c)
        with pytest.raises(Exception, match="full"):
            store.start_participant()

