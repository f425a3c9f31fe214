"""The study's storage: build (opaque ids, balanced seeded assignment), the one save path
(commit at once, resume, double submission stored once, qualification, closing), the export,
bad input through the CLI, and concurrency; the save path on SQLite and on a real PostgreSQL."""
from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import select

from ganeval.atomic import save_npz
from ganeval.cli.main import main
from ganeval.errors import BadInput
from ganeval.study_app import db
from ganeval.study_app.build import build_study, pixel_hash
from ganeval.study_app.protocol import QUALIFICATION_THRESHOLD, REASONS, qualification_passed
from ganeval.study_app.store import EXPORT_COLUMNS, StudyClosed, StudyStore


@pytest.fixture(scope="module")
def sources(tmp_path_factory, ) -> dict[str, str]:
    """Real and two fake sets of synthetic faces as .npz files."""
    from ganeval.synth import make_faces

    root = tmp_path_factory.mktemp("study-src")
    faces = make_faces(60, size=32, seed=7)
    paths = {}
    for name, part in (("real", faces[:20]), ("dcgan", faces[20:40]), ("wgan", faces[40:])):
        paths[name] = str(root / f"{name}.npz")
        save_npz(paths[name], images=part)
    return paths


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request) -> str | None:
    """None: the default SQLite file in the study folder; else a fresh PostgreSQL database."""
    return None if request.param == "sqlite" else request.getfixturevalue("fresh_pg_url")


def make_study(tmp_path: Path, sources, db_url=None, **kw) -> StudyStore:
    options = dict(trials=8, qualification=0, attention=0, seed=0) | kw
    build_study(tmp_path / "study", sources["real"], [sources["dcgan"], sources["wgan"]], db_url=db_url, **options)
    return StudyStore.open(tmp_path / "study", db_url=db_url)


def truth_of(store: StudyStore, image_id: str) -> tuple[str, str]:
    with store.engine.connect() as conn:
        row = conn.execute(select(db.images.c.truth, db.images.c.model_label).where(db.images.c.id == image_id)).one()
    return row.truth, row.model_label


def sequence(store: StudyStore, token: str) -> list[tuple[str, str, str, str]]:
    """(phase, truth, model_label, source_key) of the participant's trials in order."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(db.trials.c.phase, db.images.c.truth, db.images.c.model_label, db.images.c.source_key,
                   db.trials.c.image_id)
            .join(db.images, db.images.c.id == db.trials.c.image_id)
            .join(db.participants, db.participants.c.id == db.trials.c.participant_id)
            .where(db.participants.c.token == token).order_by(db.trials.c.position)).all()
    return [tuple(r) for r in rows]


def answer_all(store: StudyStore, token: str, correct: bool = True) -> int:
    """Answer every remaining trial (right or wrong); returns how many were recorded."""
    n = 0
    while (trial := store.current_trial(token)) is not None:
        truth, _ = truth_of(store, trial.image_id)
        answer = truth if correct else ("real" if truth == "fake" else "fake")
        assert store.record(token, trial.trial_id, answer, confidence=4)
        n += 1
    return n


# ---------------------------------------------------------------- build


def test_init_copies_images_under_opaque_ids(tmp_path, sources):
    store = make_study(tmp_path, sources, attention=1)
    files = sorted((tmp_path / "study" / "images").iterdir())
    assert len(files) == 20 + 20 + 20 + 2  # every image of the small sources + 2 attention checks
    assert all(re.fullmatch(r"[0-9a-f]{16}\.png", f.name) for f in files)
    frame = store.images_progress()
    assert sorted(frame["image_id"] + ".png") == [f.name for f in files]
    assert Counter(frame["model_label"]) == {"real": 20, "dcgan": 20, "wgan": 20, "attention": 2}
    # ids are random: not sorted with truth, not the same across two builds of the same sources
    other = make_study(tmp_path / "again", sources, attention=1)
    assert not set(frame["image_id"]) & set(other.images_progress()["image_id"])
    # the copies are the decoded pixels, without metadata; nothing on disk names the truth
    real = np.load(sources["real"])["images"]
    row = frame[frame["truth"] == "real"].iloc[0]
    with Image.open(store.image_path(row["image_id"])) as img:
        assert not {k for k in img.info if k not in ("dpi",)}
        assert pixel_hash(np.asarray(img.convert("RGB"))) in {pixel_hash(a) for a in real}
    settings = json.loads((tmp_path / "study" / "study.json").read_text())
    assert settings["trials"] == 8 and settings["labels"] == ["dcgan", "wgan"] and settings["display_size"] == 512
    listing = " ".join(p.name for p in (tmp_path / "study").rglob("*"))
    assert "real" not in listing and "fake" not in listing and "dcgan" not in listing
    with pytest.raises(BadInput):
        store.image_path("../study")
    store.dispose(), other.dispose()


def test_assignment_is_balanced_per_participant(tmp_path, sources):
    store = make_study(tmp_path, sources, trials=10, qualification=4, attention=2)
    for _ in range(6):
        token = store.start_participant()
        seq = sequence(store, token)
        phases = [s[0] for s in seq]
        assert phases[:4] == ["qualification"] * 4 and len(seq) == 4 + 10 + 2
        assert phases[4] == "main"  # an attention check is never the first main trial
        qual = [s for s in seq if s[0] == "qualification"]
        main_ = [s for s in seq if s[0] == "main"]
        assert Counter(s[1] for s in qual) == {"real": 2, "fake": 2}
        assert Counter(s[1] for s in main_) == {"real": 5, "fake": 5}
        fake_labels = Counter(s[2] for s in main_ if s[1] == "fake")
        assert sorted(fake_labels.values()) == [2, 3]  # 5 fakes over two models: as even as possible
        assert [s[2] for s in seq if s[0] == "attention"] == ["attention", "attention"]
        assert len({s[4] for s in seq}) == len(seq)  # no image twice for one participant
    # images are shown about equally often across participants
    exposure = store.images_progress().query("role == 'pool' and truth == 'real'")["assigned"]
    assert exposure.max() - exposure.min() <= 1
    store.dispose()


def test_assignment_is_seeded(tmp_path, sources):
    def sequences(where, seed):
        store = make_study(where, sources, qualification=2, attention=1, seed=seed)
        out = [[s[:4] for s in sequence(store, store.start_participant())] for _ in range(3)]
        store.dispose()
        return out

    first = sequences(tmp_path / "a", seed=3)
    assert first == sequences(tmp_path / "b", seed=3)
    assert first != sequences(tmp_path / "c", seed=4)
    assert first[0] != first[1]  # participants get different sets/orders


# ---------------------------------------------------------------- save path (SQLite and PostgreSQL)


def test_save_commits_each_judgment(tmp_path, sources, db_url):
    store = make_study(tmp_path, sources, db_url=db_url, trials=4)
    token = store.start_participant()
    assert store.state(token).status == "consent" and store.current_trial(token) is None
    store.give_consent(token)
    trial = store.current_trial(token)
    assert (trial.number, trial.total, trial.phase) == (1, 4, "main")
    time.sleep(0.06)
    assert store.record(token, trial.trial_id, "fake", confidence=2, reasons=["other", "deformation"],
                        other_text="  odd ears ")
    # committed: another store (another connection pool) sees it at once
    other = StudyStore.open(tmp_path / "study", db_url=db_url)
    row = other.export_frame().iloc[0]
    assert row["answer"] == "fake" and row["confidence"] == 2 and row["trial_number"] == 1
    assert row["reasons"] == "deformation;other" and row["reason_other"] == "odd ears"
    assert row["correct"] == int(truth_of(store, trial.image_id)[0] == "fake")
    assert 60 <= row["response_ms"] < 5000  # measured on the server from shown_at
    assert pd.Timestamp(row["answered_at"]) - pd.Timestamp(row["shown_at"]) >= pd.Timedelta(milliseconds=60)
    # a 'real' answer keeps no reasons
    trial = store.current_trial(token)
    assert store.record(token, trial.trial_id, "real", reasons=["artefacts"], other_text="x")
    assert other.export_frame().iloc[1][["reasons", "reason_other"]].tolist() == ["", ""]
    assert pd.isna(other.export_frame().iloc[1]["confidence"])
    assert answer_all(store, token) == 2
    assert store.state(token).status == "done" and store.state(token).answered == 4
    assert store.current_trial(token) is None
    for bad in ({"answer": "maybe"}, {"answer": "fake", "confidence": 6}, {"answer": "fake", "reasons": ["ugly"]}):
        with pytest.raises(BadInput):
            store.record(token, trial.trial_id, **bad)
    with pytest.raises(BadInput):
        store.record("no-such-token", trial.trial_id, "real")
    store.dispose(), other.dispose()


def test_resume_gives_the_same_trial(tmp_path, sources, db_url):
    store = make_study(tmp_path, sources, db_url=db_url, trials=6)
    token = store.start_participant()
    store.give_consent(token)
    for _ in range(2):
        trial = store.current_trial(token)
        assert store.record(token, trial.trial_id, "real")
    shown = store.current_trial(token)
    store.dispose()
    # a reload or a lost connection: a new store (new process) with the token from the URL
    again = StudyStore.open(tmp_path / "study", db_url=db_url)
    assert again.state(token).answered == 2 and again.state(token).status == "trials"
    resumed = again.current_trial(token)
    assert resumed == shown and resumed.number == 3
    assert again.current_trial(token) == resumed  # showing it again does not move on
    assert again.state("unknown") is None and again.current_trial("unknown") is None
    again.dispose()


def test_double_submission_is_stored_once(tmp_path, sources, db_url):
    store = make_study(tmp_path, sources, db_url=db_url, trials=4)
    token = store.start_participant()
    store.give_consent(token)
    trial = store.current_trial(token)
    assert store.record(token, trial.trial_id, "fake") is True
    assert store.record(token, trial.trial_id, "real") is False  # the second click
    # two clicks racing each other on the next trial, from two threads
    trial = store.current_trial(token)
    barrier, results = threading.Barrier(4), []

    def click() -> None:
        barrier.wait()
        results.append(store.record(token, trial.trial_id, "real"))

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    frame = store.export_frame()
    assert len(frame) == 2 and frame["answer"].tolist() == ["fake", "real"]
    assert store.state(token).answered == 2
    store.dispose()


def test_concurrent_participants_lose_nothing(tmp_path, sources, db_url):
    store = make_study(tmp_path, sources, db_url=db_url, trials=8, attention=1)
    errors: list[str] = []

    def participant() -> None:
        try:
            token = store.start_participant(kind="simulated")
            store.give_consent(token)
            assert answer_all(store, token) == 9
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(err))

    threads = [threading.Thread(target=participant) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    frame = store.export_frame()
    assert len(frame) == 8 * 9 and frame.groupby("participant").size().eq(9).all()
    assert (frame["participant_kind"] == "simulated").all()
    assert store.counts()["participants_by_status"] == {"done": 8}
    store.dispose()


# ---------------------------------------------------------------- protocol


def test_qualification_threshold():
    assert QUALIFICATION_THRESHOLD == 0.65
    assert qualification_passed(13, 20, 13, 20) and not qualification_passed(12, 20, 20, 20)
    assert not qualification_passed(20, 20, 12, 20) and qualification_passed(2, 3, 2, 3)


@pytest.mark.parametrize("wrong_fakes, status", [(1, "trials"), (2, "failed")])
def test_qualification_pass_and_fail(tmp_path, sources, wrong_fakes, status):
    store = make_study(tmp_path, sources, trials=4, qualification=6)
    token = store.start_participant()
    store.give_consent(token)
    assert store.state(token).status == "qualification" and store.state(token).qualification_total == 6
    wrong = 0
    while (trial := store.current_trial(token)) is not None and trial.phase == "qualification":
        truth, _ = truth_of(store, trial.image_id)
        answer = truth
        if truth == "fake" and wrong < wrong_fakes:  # 3 fakes: 2/3 = 67% passes, 1/3 = 33% fails
            answer, wrong = "real", wrong + 1
        assert store.record(token, trial.trial_id, answer)
        if store.state(token).status != "qualification":
            break
    assert store.state(token).status == status
    if status == "failed":
        assert store.current_trial(token) is None
        main_trial = next(s for s in sequence(store, token) if s[0] == "main")
        with store.engine.connect() as conn:
            tid = conn.execute(select(db.trials.c.id).where(db.trials.c.image_id == main_trial[4])).scalar()
        with pytest.raises(BadInput, match="cannot be answered now"):
            store.record(token, tid, "real")
    else:
        assert store.current_trial(token).phase == "main" and answer_all(store, token) == 4
        assert store.state(token).status == "done"
    store.dispose()


def test_closing_the_study(tmp_path, sources, capsys):
    store = make_study(tmp_path, sources, trials=4)
    token = store.start_participant()
    store.give_consent(token)
    trial = store.current_trial(token)
    assert main(["study", "close", str(tmp_path / "study")]) == 0
    assert not store.is_open  # read from the database: every process sees it
    with pytest.raises(StudyClosed):
        store.start_participant()
    with pytest.raises(StudyClosed):
        store.record(token, trial.trial_id, "real")
    assert main(["study", "status", str(tmp_path / "study")]) == 0
    assert "study closed" in capsys.readouterr().out
    assert main(["study", "open", str(tmp_path / "study")]) == 0
    assert store.is_open and store.record(token, trial.trial_id, "real")
    store.dispose()


# ---------------------------------------------------------------- export


def test_export_columns_and_csv(tmp_path, sources, capsys):
    store = make_study(tmp_path, sources, trials=4, qualification=2, attention=1)
    for _ in range(2):
        token = store.start_participant()
        store.give_consent(token)
        answer_all(store, token)
    frame = store.export_frame()
    assert tuple(frame.columns) == EXPORT_COLUMNS
    assert len(frame) == 2 * 7
    assert set(frame["phase"]) == {"qualification", "main", "attention"}
    assert (frame.loc[frame["phase"] == "attention", "model_label"] == "attention").all()
    assert set(frame.loc[frame["truth"] == "real", "model_label"]) == {"real"}
    assert frame["correct"].eq(1).all() and frame["trial_number"].tolist()[:7] == list(range(1, 8))
    out = tmp_path / "responses.csv"
    assert main(["study", "export", str(tmp_path / "study"), "-o", str(out)]) == 0
    assert "wrote 14 judgment(s) from 2 participant(s)" in capsys.readouterr().out
    csv = pd.read_csv(out, keep_default_na=False)
    assert tuple(csv.columns) == EXPORT_COLUMNS and len(csv) == 14
    assert set(csv["answer"]) <= {"real", "fake"} and set(csv["confidence"]) == {4}
    assert all(set(filter(None, r.split(";"))) <= set(REASONS) for r in csv["reasons"])
    assert pd.to_datetime(csv["answered_at"], utc=True).notna().all()
    assert main(["study", "status", str(tmp_path / "study"), "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["judgments"] == 14 and counts["judgments_by_phase"] == {"attention": 2, "main": 8, "qualification": 4}
    store.dispose()


# ---------------------------------------------------------------- bad input through the CLI


def _init(tmp_path, real, *fakes, extra=()):
    argv = ["study", "init", str(tmp_path / "s"), "--real", str(real)]
    for fake in fakes:
        argv += ["--fake", str(fake)]
    return main(argv + ["--trials", "8", *extra])


def test_cli_init_and_bad_inputs(tmp_path, sources, capsys):
    assert _init(tmp_path, tmp_path / "missing", sources["dcgan"]) == 2
    assert "missing: no such file or folder" in capsys.readouterr().err
    # too few images: 8 trials + 6 qualification need 7 real images per participant
    few = tmp_path / "few.npz"
    save_npz(few, images=np.load(sources["real"])["images"][:5])
    assert _init(tmp_path, few, sources["dcgan"], extra=["--qualification", "6"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "5 image(s), but each participant needs 7 real image(s)" in err
    assert not (tmp_path / "s").exists()
    # the same pixels among real and fake: a warning, the study is still built
    assert _init(tmp_path, sources["real"], sources["real"]) == 0
    captured = capsys.readouterr()
    assert "warning: 20 image(s) appear among both real and fake" in captured.err
    assert "study created" in captured.out
    assert _init(tmp_path, sources["real"], sources["dcgan"]) == 2  # the folder holds a study already
    assert "already holds a study" in capsys.readouterr().err


def test_cli_corrupt_images(tmp_path, sources, capsys):
    real = np.load(sources["real"])["images"]
    folder = tmp_path / "real"
    folder.mkdir()
    for i, arr in enumerate(real[:8]):
        Image.fromarray(arr).save(folder / f"r{i}.png")
    for i in range(3):
        (folder / f"broken{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert _init(tmp_path, folder, sources["dcgan"]) == 0
    err = capsys.readouterr().err
    assert "skipped 3 corrupt image(s), e.g. broken" in err
    with StudyStore.open(tmp_path / "s") as store:
        assert Counter(store.images_progress()["model_label"]) == {"real": 8, "dcgan": 20}
    # too few readable ones left
    for i in range(4):
        (folder / f"r{i}.png").write_bytes(b"garbage")
    assert main(["study", "init", str(tmp_path / "s2"), "--real", str(folder), "--fake", sources["dcgan"],
                 "--trials", "10"]) == 2
    assert "only 4 readable image(s) (7 corrupt), but each participant needs 5 real" in capsys.readouterr().err
    assert not (tmp_path / "s2").exists()


def test_cli_labels_and_usage(tmp_path, sources, capsys):
    assert main(["study", "init", str(tmp_path / "s"), "--real", sources["real"], "--fake", sources["dcgan"],
                 "--label", "real", "--trials", "4"]) == 2
    assert "reserved" in capsys.readouterr().err
    # each --label names the --fake before it; an unlabelled one takes its file stem
    assert main(["study", "init", str(tmp_path / "s"), "--real", sources["real"], "--fake", sources["dcgan"],
                 "--fake", sources["wgan"], "--label", "A", "--trials", "4", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["labels"] == ["dcgan", "A"] and summary["images"] == {"real": 20, "dcgan": 20, "A": 20}
    with pytest.raises(SystemExit) as exit_info:
        main(["study", "init", str(tmp_path / "t"), "--real", sources["real"], "--label", "A", "--fake", "x"])
    assert exit_info.value.code == 2 and "give --fake SRC first" in capsys.readouterr().err
    assert main(["study", "status", str(tmp_path / "nope")]) == 2
    assert "not a study" in capsys.readouterr().err
    assert main(["study", "run", str(tmp_path / "nope")]) == 2


def test_cli_run_execs_streamlit_headless(tmp_path, sources, capsys, monkeypatch):
    """`study run` becomes `streamlit run study_app/app.py` (exec: one process, so any signal,
    SIGKILL included, stops the server), with the study folder and limits in the env."""
    import ganeval.cli.study as cli

    make_study(tmp_path, sources, trials=4).dispose()
    seen = {}

    def fake_execve(path, cmd, env):
        seen["path"], seen["cmd"], seen["env"] = path, cmd, env
        return None

    monkeypatch.setattr(cli.os, "execve", fake_execve)
    monkeypatch.setenv("GANEVAL_STUDY_ADMIN_PASSWORD", "password")
    db_url = f"sqlite:///{tmp_path / 'x.db'}"
    main(["study", "run", str(tmp_path / "study"), "--port", "8599", "--db-url", db_url,
          "--max-participants", "40", "--abandon-after", "5", "--min-display-ms", "250"])
    cmd = seen["cmd"]
    assert seen["path"] == cmd[0]
    assert cmd[1:4] == ["-m", "streamlit", "run"] and Path(cmd[4]).name == "study.py"
    assert Path(cmd[4]).read_text() == "from ganeval.study_app.app import main\n\nmain()\n"  # a neutral launcher
    flags = dict(zip(cmd[5::2], cmd[6::2]))
    assert flags == {"--server.headless": "true", "--server.address": "127.0.0.1", "--server.port": "8599",
                     "--browser.gatherUsageStats": "false", "--server.fileWatcherType": "none",
                     "--client.showErrorDetails": "false"}
    assert seen["env"]["GANEVAL_STUDY_DIR"] == str((tmp_path / "study").resolve())
    assert seen["env"]["GANEVAL_STUDY_DB_URL"] == db_url
    assert seen["env"]["GANEVAL_STUDY_MAX_PARTICIPANTS"] == "40"
    assert seen["env"]["GANEVAL_STUDY_ABANDON_AFTER_S"] == "300"
    assert seen["env"]["GANEVAL_STUDY_MIN_DISPLAY_MS"] == "250"
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8599/" in out and "http://127.0.0.1:8599/?admin=1" in out


def test_cli_run_refuses_a_short_admin_password(tmp_path, sources, capsys, monkeypatch):
    import ganeval.cli.study as cli

    make_study(tmp_path, sources, trials=4).dispose()
    monkeypatch.setattr(cli.os, "execve", lambda *a: pytest.fail("started with a short password"))
    monkeypatch.setenv("GANEVAL_STUDY_ADMIN_PASSWORD", "short")
    assert main(["study", "run", str(tmp_path / "study")]) == 2
    err = capsys.readouterr().err
    assert "at least 8 characters" in err and err.count("\n") == 1 and "short" not in err.replace("it has", "")


def test_pg_helper_reports_a_missing_server(monkeypatch):
    """Without server binaries the PostgreSQL tests are skipped with the reason, never passed."""
    import tests.pg_cluster as pg

    monkeypatch.setattr(pg.glob, "glob", lambda pattern: [])
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pg.PostgresUnavailable, match="no initdb/pg_ctl"):
        pg._find_bin()


def test_images_are_brought_to_one_size(tmp_path, sources, capsys):
    """96 px reals beside 32 px fakes would reveal the truth by sharpness: all become 32 px."""
    from ganeval.synth import make_faces

    big = tmp_path / "big.npz"
    save_npz(big, images=make_faces(12, size=96, seed=3))
    assert _init(tmp_path, big, sources["dcgan"]) == 0
    assert "all are brought to 32×32 px" in capsys.readouterr().err
    sizes = {Image.open(p).size for p in (tmp_path / "s" / "images").glob("*.png")}
    assert sizes == {(32, 32)}
    assert main(["study", "init", str(tmp_path / "t"), "--real", str(big), "--fake", sources["dcgan"],
                 "--trials", "8", "--image-size", "48"]) == 0
    assert {Image.open(p).size for p in (tmp_path / "t" / "images").glob("*.png")} == {(48, 48)}


# ---------------------------------------------------------------- one transaction per judgment


@pytest.mark.parametrize("qualification", [0, 2])
def test_crash_between_answer_and_next_trial_resumes(tmp_path, sources, db_url, monkeypatch, qualification):
    """A failure after the judgment is written but before the participant moves on rolls the
    whole answer back: the same trial is shown again and answering it then moves on."""
    store = make_study(tmp_path, sources, trials=4, qualification=qualification, db_url=db_url)
    token = store.start_participant()
    store.give_consent(token)
    for _ in range(max(0, qualification - 1)):  # up to the last warm-up picture, if any
        trial = store.current_trial(token)
        assert store.record(token, trial.trial_id, truth_of(store, trial.image_id)[0])
    trial = store.current_trial(token)
    from ganeval.study_app import store as store_module

    run_prepared = db.run_prepared

    def crash(conn, statement, params):  # the judgment's INSERT has run; moving the participant on fails
        if statement is store_module.MOVE_PARTICIPANT:
            assert conn.execute(select(db.judgments.c.id).where(db.judgments.c.trial_id == trial.trial_id)).first()
            raise RuntimeError("server killed")
        return run_prepared(conn, statement, params)

    with monkeypatch.context() as patch:
        patch.setattr(db, "run_prepared", crash)
        with pytest.raises(RuntimeError):
            store.record(token, trial.trial_id, truth_of(store, trial.image_id)[0])
    reopened = StudyStore.open(tmp_path / "study", db_url=db_url)  # "reload": a fresh server process
    assert reopened.current_trial(token).trial_id == trial.trial_id
    assert reopened.state(token).answered == max(0, qualification - 1)
    assert reopened.record(token, trial.trial_id, truth_of(store, trial.image_id)[0])
    state = reopened.state(token)
    assert state.status == "trials" and state.answered == max(1, qualification)
    nxt = reopened.current_trial(token)
    assert nxt.trial_id != trial.trial_id and nxt.phase == "main"
    answer_all(reopened, token)
    assert reopened.state(token).status == "done"
    reopened.dispose()
    store.dispose()


def test_a_participant_stuck_by_an_earlier_version_moves_on(tmp_path, sources):
    """Databases written when answer and status were separate writes can hold a complete
    warm-up with the status still 'qualification': the next read moves the participant on."""
    store = make_study(tmp_path, sources, trials=4, qualification=2)
    token = store.start_participant()
    store.give_consent(token)
    with db.write_tx(store.engine) as conn:
        pid = conn.execute(select(db.participants.c.id).where(db.participants.c.token == token)).scalar()
        for tid, image_id in conn.execute(select(db.trials.c.id, db.trials.c.image_id).where(
                db.trials.c.participant_id == pid, db.trials.c.phase == "qualification")).all():
            conn.execute(db.judgments.insert().values(
                participant_id=pid, trial_id=tid, answer=truth_of(store, image_id)[0], correct=True, reasons="",
                answered_at=db.iso(db.utcnow())))
    assert store.state(token).status == "qualification"
    trial = store.current_trial(token)
    assert trial is not None and trial.phase == "main" and store.state(token).status == "trials"
    store.dispose()


def test_next_trial_is_stamped_in_the_answer_transaction(tmp_path, sources):
    store = make_study(tmp_path, sources, trials=4)
    token = store.start_participant()
    store.give_consent(token)
    first = store.current_trial(token)
    store.record(token, first.trial_id, "real")
    with store.engine.connect() as conn:
        shown = dict(conn.execute(select(db.trials.c.position, db.trials.c.shown_at)).all())
    assert shown[0] is not None and shown[1] is not None and shown[2] is None


# ---------------------------------------------------------------- crowdsourcing and limits


def test_external_id_is_one_person_one_participant(tmp_path, sources):
    store = make_study(tmp_path, sources, trials=4, qualification=2)
    token = store.start_participant(external_id="5f1a-PROLIFIC")
    assert store.start_participant(external_id="5f1a-PROLIFIC") == token
    assert store.participant_for("5f1a-PROLIFIC") == token and store.participant_for("other") is None
    store.give_consent(token)
    answer_all(store, token, correct=False)
    assert store.state(token).status == "failed"
    # a fresh link with the same platform id comes back to the failed participant, not a new one
    assert store.start_participant(external_id="5f1a-PROLIFIC") == token
    assert len(store.participants_progress()) == 1
    store.set_open(False)
    assert store.start_participant(external_id="5f1a-PROLIFIC") == token  # known people still see their end page
    with pytest.raises(BadInput):
        store.start_participant(external_id=" ")
    store.dispose()


def test_max_participants_and_abandoned_participants(tmp_path, sources):
    from ganeval.study_app.store import StudyFull

    build_study(tmp_path / "study", sources["real"], [sources["dcgan"]], trials=4, seed=0)
    store = StudyStore.open(tmp_path / "study", max_participants=2, abandon_after_s=60)
    a, b = store.start_participant(), store.start_participant()
    with pytest.raises(StudyFull):
        store.start_participant()
    store.give_consent(a)
    trial = store.current_trial(a)
    store.record(a, trial.trial_id, "real")
    exposure = store.exposure()
    assert sum(exposure.values()) == 8  # two participants, four trials each
    # b goes quiet for longer than abandon_after: their place and unanswered images are released
    old = db.iso(db.utcnow() - pd.Timedelta(minutes=5))
    with db.write_tx(store.engine) as conn:
        conn.execute(db.participants.update().where(db.participants.c.token == b).values(active_at=old))
    assert sum(store.exposure().values()) == 4
    c = store.start_participant()
    assert sum(store.exposure().values()) == 8
    with pytest.raises(StudyFull):
        store.start_participant()
    # a's answered image still counts even once a is abandoned too
    with db.write_tx(store.engine) as conn:
        conn.execute(db.participants.update().where(db.participants.c.token == a).values(active_at=old))
    assert store.exposure().get(trial.image_id) == 1 and sum(store.exposure().values()) == 5
    assert c != a
    store.dispose()


def test_old_study_database_is_migrated(tmp_path, sources):
    """A study made before external_id/active_at and the browser timing columns existed opens
    and gains the columns; its answers export with those blank."""
    import sqlite3

    make_study(tmp_path, sources, trials=4).dispose()
    con = sqlite3.connect(tmp_path / "study" / "study.db")
    con.executescript("""
        PRAGMA foreign_keys=OFF;
        ALTER TABLE judgments DROP COLUMN rt_client_ms;
        ALTER TABLE judgments DROP COLUMN shown_client_at;
        ALTER TABLE admin_attempts DROP COLUMN source;
        DROP TABLE participants;
        CREATE TABLE participants (id INTEGER PRIMARY KEY AUTOINCREMENT, token VARCHAR(64) NOT NULL UNIQUE,
            kind VARCHAR(16) NOT NULL, status VARCHAR(16) NOT NULL, ordinal INTEGER NOT NULL,
            created_at VARCHAR(40) NOT NULL, consent_at VARCHAR(40), qualified_at VARCHAR(40),
            finished_at VARCHAR(40));
        INSERT INTO participants (token, kind, status, ordinal, created_at)
            VALUES ('old-token', 'human', 'consent', 1, '2026-01-01T00:00:00.000000+00:00');
    """)
    con.close()
    store = StudyStore.open(tmp_path / "study")
    token = store.start_participant(external_id="w1")
    assert store.start_participant(external_id="w1") == token
    assert store.state("old-token").status == "consent"
    store.give_consent(token)
    trial = store.current_trial(token)
    assert store.record(token, trial.trial_id, "real")
    frame = store.export_frame()
    assert pd.isna(frame["rt_client_ms"].iloc[0]) and frame["shown_client_at"].iloc[0] == ""
    assert store.admin_login("pw-right-1", "pw-right-1", "127.0.0.1")[0] == "ok"
    store.dispose()


# ---------------------------------------------------------------- admin access


def test_admin_lockout_is_shared_and_logged(tmp_path, sources, db_url, monkeypatch):
    from ganeval.study_app import store as store_module

    store = make_study(tmp_path, sources, trials=4, db_url=db_url)
    other = StudyStore.open(tmp_path / "study", db_url=db_url)  # another server on the same database
    now = [db.utcnow()]
    monkeypatch.setattr(store_module.db, "utcnow", lambda: now[0])
    outcome, session = store.admin_login("right-password", "right-password")
    assert outcome == "ok" and store.admin_session_valid(session) and other.admin_session_valid(session)
    assert not store.admin_session_valid("forged") and not store.admin_session_valid(None)
    for i in range(5):
        who = store if i % 2 else other
        assert who.admin_login("guess", "right-password") == ("failed", None)
        now[0] += pd.Timedelta(seconds=30)
    assert store.admin_login("right-password", "right-password") == ("locked", None)  # right one refused too
    assert other.admin_login("right-password", "right-password")[0] == "locked"
    now[0] += pd.Timedelta(minutes=9)
    assert store.admin_login("right-password", "right-password")[0] == "locked"
    now[0] += pd.Timedelta(minutes=1, seconds=1)
    outcome, session2 = store.admin_login("right-password", "right-password")
    assert outcome == "ok"
    attempts = other.admin_attempts()
    assert list(attempts["outcome"]) == ["ok"] + ["failed"] * 5 + ["locked"] * 3 + ["ok"]
    assert pd.to_datetime(attempts["at"], utc=True).is_monotonic_increasing
    store.admin_logout(session2)
    assert not other.admin_session_valid(session2)
    now[0] += pd.Timedelta(hours=13)
    assert not store.admin_session_valid(session)  # expired
    other.dispose()
    store.dispose()


def test_a_guesser_cannot_lock_the_admin_out(tmp_path, sources, monkeypatch):
    """Failures lock the address they come from, not the admin elsewhere; many addresses
    guessing together hit the global rate, which spares addresses that logged in before."""
    from ganeval.study_app import store as store_module

    store = make_study(tmp_path, sources, trials=4)
    now = [db.utcnow()]
    monkeypatch.setattr(store_module.db, "utcnow", lambda: now[0])
    assert store.admin_login("pw-right-1", "pw-right-1", "10.0.0.1")[0] == "ok"  # the admin, earlier
    for _ in range(6):
        store.admin_login("guess", "pw-right-1", "203.0.113.9")
        now[0] += pd.Timedelta(seconds=5)
    assert store.admin_login("pw-right-1", "pw-right-1", "203.0.113.9")[0] == "locked"
    assert store.admin_login("pw-right-1", "pw-right-1", "198.51.100.7")[0] == "ok"  # a new place still works
    for i in range(25):  # a guess from many addresses at once
        assert store.admin_login("guess", "pw-right-1", f"192.0.2.{i}")[0] in ("failed", "locked")
    assert store.admin_login("pw-right-1", "pw-right-1", "192.0.2.200")[0] == "locked"  # unknown: rate-limited
    assert store.admin_login("pw-right-1", "pw-right-1", "10.0.0.1")[0] == "ok"  # the admin's address is not
    now[0] += pd.Timedelta(minutes=2)
    assert store.admin_login("pw-right-1", "pw-right-1", "192.0.2.200")[0] == "ok"  # the rate recovers
    with store.engine.connect() as conn:
        sources_stored = {r[0] for r in conn.exec_driver_sql("SELECT source FROM admin_attempts")}
    assert not [s for s in sources_stored if "." in s]  # hashes, never addresses
    store.dispose()


def test_spread_out_failures_do_not_lock():
    from ganeval.study_app.store import locked_until

    t0 = db.utcnow()
    spread = [t0 + pd.Timedelta(minutes=3 * i) for i in range(6)]
    assert locked_until(spread) < t0
    burst = [t0 + pd.Timedelta(minutes=2 * i) for i in range(5)]
    assert locked_until(burst) == burst[-1] + pd.Timedelta(minutes=10)


# ---------------------------------------------------------------- export safety


def test_export_is_pseudonymous_and_formula_safe(tmp_path, sources, capsys):
    store = make_study(tmp_path, sources, trials=2)
    token = store.start_participant(external_id="=HYPERLINK(\"http://evil\")")
    store.give_consent(token)
    for text in ("=1+1", "@SUM(A1)"):
        trial = store.current_trial(token)
        store.record(token, trial.trial_id, "fake", reasons=["other"], other_text=text)
    out = tmp_path / "responses.csv"
    assert main(["study", "export", str(tmp_path / "study"), "-o", str(out)]) == 0
    text = out.read_text()
    assert token not in text
    csv = pd.read_csv(out, keep_default_na=False, dtype=str)
    assert set(csv["participant"]) == {"P00001"}
    assert list(csv["reason_other"]) == ["'=1+1", "'@SUM(A1)"]
    assert set(csv["external_id"]) == {"'=HYPERLINK(\"http://evil\")"}
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in csv.to_numpy().ravel())
    progress = store.participants_progress()
    assert token not in progress.to_csv() and list(progress["participant"]) == ["P00001"]
    store.dispose()


def test_export_refuses_bad_outputs_before_writing(tmp_path, sources, capsys):
    store = make_study(tmp_path, sources, trials=2)
    store.dispose()
    study = str(tmp_path / "study")
    (tmp_path / "folder").mkdir()
    assert main(["study", "export", study, "-o", str(tmp_path / "folder")]) == 2
    assert "is a folder" in capsys.readouterr().err
    existing = tmp_path / "old.csv"
    existing.write_text("keep me")
    assert main(["study", "export", study, "-o", str(existing)]) == 2
    assert "--overwrite" in capsys.readouterr().err and existing.read_text() == "keep me"
    assert main(["study", "export", study, "-o", str(existing), "--overwrite"]) == 0
    assert main(["study", "export", study, "-o", str(existing / "x.csv")]) == 2  # parent is a file
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file" in err
    assert main(["study", "export", study, "-o", str(tmp_path / "study" / "r.csv")]) == 2  # inside the input
    capsys.readouterr()
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        import os

        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions do not stop writes")
        assert main(["study", "export", study, "-o", str(locked / "x.csv")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ".tmp" not in err and "x.csv" in err
    finally:
        locked.chmod(0o700)


def test_cli_init_crowdsourcing_settings(tmp_path, sources, capsys):
    base = ["study", "init", str(tmp_path / "s"), "--real", sources["real"], "--fake", sources["dcgan"],
            "--trials", "4"]
    assert main(base + ["--completion-url", "javascript:alert(1)"]) == 2
    assert "--completion-url" in capsys.readouterr().err and not (tmp_path / "s").exists()
    url = "https://app.prolific.com/submissions/complete?cc=ABC123"
    assert main(base + ["--completion-url", url, "--max-participants", "50"]) == 0
    store = StudyStore.open(tmp_path / "s")
    assert store.settings.completion_url == url and store.max_participants == 50
    store.dispose()


# ---------------------------------------------------------------- several servers, one database


def _server_process(study_dir: str, db_url: str | None, n: int, seed: int) -> list[str]:
    """One app server: its own store (connection pool) with n participants as threads, as a
    Streamlit server runs sessions; every answer is also sent a second time at once (a double
    click), which must be stored once."""
    from concurrent.futures import ThreadPoolExecutor

    store = StudyStore.open(study_dir, db_url=db_url)
    errors: list[str] = []

    def participant(i: int) -> None:
        rng = np.random.default_rng(seed + i)
        try:
            token = store.start_participant(kind="simulated")
            store.give_consent(token)
            while (trial := store.current_trial(token)) is not None:
                answer = "real" if rng.random() < 0.5 else "fake"
                with ThreadPoolExecutor(2) as pool:
                    saved = list(pool.map(lambda _: store.record(token, trial.trial_id, answer), range(2)))
                if sorted(saved) != [False, True]:
                    errors.append(f"double submission saved {saved}")
        except Exception as err:  # noqa: BLE001 - reported to the test
            errors.append(f"{type(err).__name__}: {err}")

    try:
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(participant, range(n)))
    finally:
        store.dispose()
    return errors


@pytest.mark.slow
def test_two_servers_one_database_30_participants(tmp_path, sources, db_url):
    """Two server processes share one database (PostgreSQL, and the SQLite file): 30 simulated
    participants split between them, each double-submitting every answer. Every judgment is
    stored once, and images are shown equally often (within ±1 per class)."""
    import multiprocessing as mp

    trials = 6
    store = make_study(tmp_path, sources, trials=trials, db_url=db_url)
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        jobs = [pool.apply_async(_server_process, (str(tmp_path / "study"), db_url, 15, 100 * k)) for k in range(2)]
        errors = [e for job in jobs for e in job.get(timeout=300)]
    assert errors == []
    frame = store.export_frame()
    assert len(frame) == 30 * trials
    assert not frame.duplicated(["participant", "trial_number"]).any()
    assert frame["participant"].nunique() == 30
    exposure = store.exposure()
    images = store.images_progress()
    for label, group in images[images["role"] == "pool"].groupby("model_label"):
        counts = [exposure.get(i, 0) for i in group["image_id"]]
        assert max(counts) - min(counts) <= 1, (label, counts)
    assert sum(exposure.values()) == 30 * trials
    states = store.participants_progress()
    assert set(states["status"]) == {"done"} and (states["answered"] == trials).all()
    store.dispose()


def test_runs_reuse_one_private_launcher_folder(tmp_path):
    """`study run` execs Streamlit and cannot clean up after it: runs share one launcher folder
    per user instead of leaving one each, and a folder someone else controls is never used."""
    import os
    import stat

    from ganeval.study_app.launch import LAUNCHER, write_launcher

    first, second = write_launcher(tmp_path), write_launcher(tmp_path)
    assert first == second and first.read_text() == LAUNCHER
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.parent.name]
    assert stat.S_IMODE(os.stat(first.parent).st_mode) == 0o700
    os.chmod(first.parent, 0o777)  # opened to others: not trusted any more
    other = write_launcher(tmp_path)
    assert other.parent != first.parent and other.read_text() == LAUNCHER
    link_root = tmp_path / "links"
    link_root.mkdir()
    (link_root / first.parent.name).symlink_to(first.parent)
    assert write_launcher(link_root).parent.parent == link_root and not write_launcher(link_root).is_symlink()


def test_simulated_participants_answer_with_browser_like_times(tmp_path, sources):
    """The demo's participants carry response times as a browser would report them (so the
    report's response-time figure shows something), drawn apart from the answers."""
    from ganeval.study_app.simulate import simulate_participants

    store = make_study(tmp_path, sources, trials=6)
    try:
        simulate_participants(store, 3, seed=1)
        frame = store.export_frame()
    finally:
        store.dispose()
    rt = frame["rt_client_ms"].astype(float)
    assert rt.notna().all() and (rt > 200).all() and (rt < 60_000).all()
    assert 1000 < rt.median() < 4000
    sure = frame["confidence"].astype(float) >= 4
    assert rt[~sure].mean() > rt[sure].mean()  # doubt is slower
