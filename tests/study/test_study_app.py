"""The Streamlit study app, driven headless with ``streamlit.testing.v1.AppTest``: the whole
participant flow against a real study database (built by ``ganeval study init`` on synthetic
faces), resume by URL token, double submissions, qualification failure and the admin page."""
from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganeval.cli.main import main as cli
from ganeval.synth import write_faces

from streamlit.testing.v1 import AppTest  # noqa: E402

from ganeval import study_app  # noqa: E402
from ganeval.study_app import display  # noqa: E402
from ganeval.study_app.store import StudyStore  # noqa: E402

APP = str(Path(study_app.__file__).parent / "app.py")
PASSWORD = "s3cret-admin"


def make_study(tmp_path: Path, trials: int = 4, qualification: int = 0, attention: int = 0,
               n: int = 8, display_size: int = 128, name: str = "study", db_url: str | None = None) -> Path:
    """A small study made the way users make one: synthetic faces and ``ganeval study init``."""
    real = write_faces(tmp_path / f"{name}-real", n, size=32, seed=0)
    fake = write_faces(tmp_path / f"{name}-fake", n, size=32, seed=1)
    study = tmp_path / name
    rc = cli(["study", "init", str(study), "--real", str(real), "--fake", str(fake),
              "--trials", str(trials), "--qualification", str(qualification), "--attention", str(attention),
              "--seed", "3", "--display-size", str(display_size)] + (["--db-url", db_url] if db_url else []))
    assert rc == 0
    return study


@pytest.fixture
def study_env(monkeypatch):
    """Point the app at a study; answers are accepted at once (double-click guard off)."""
    def use(study: Path, debounce_ms: int = 0, password: str | None = PASSWORD, db_url: str | None = None) -> None:
        monkeypatch.setenv("GANEVAL_STUDY_DIR", str(study))
        if db_url:
            monkeypatch.setenv("GANEVAL_STUDY_DB_URL", db_url)
        else:
            monkeypatch.delenv("GANEVAL_STUDY_DB_URL", raising=False)
        monkeypatch.setenv("GANEVAL_STUDY_MIN_DISPLAY_MS", str(debounce_ms))
        if password is None:
            monkeypatch.delenv("GANEVAL_STUDY_ADMIN_PASSWORD", raising=False)
        else:
            monkeypatch.setenv("GANEVAL_STUDY_ADMIN_PASSWORD", password)
    return use


def open_app(**params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def no_exception(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def consent(at: AppTest) -> str:
    """Agree and start; returns the participant token now in the URL."""
    at.checkbox[0].check()
    [b for b in at.button if b.label == "Start"][0].click()
    no_exception(at.run())
    token = at.query_params.get("p")
    assert token, "the token goes into the URL after consent"
    return token


def shown_trial_id(at: AppTest) -> int:
    """The trial the page shows, read from its widget keys (one form per trial)."""
    ids = {int(c.key.rsplit("-", 1)[1]) for c in at.checkbox if c.key and c.key.startswith("reason-")}
    assert len(ids) == 1, ids
    return ids.pop()


def answer(at: AppTest, choice: str, confidence: int | None = None, reasons=(), other: str = "") -> AppTest:
    tid = shown_trial_id(at)
    if confidence is not None:
        at.radio(key=f"confidence-{tid}").set_value(confidence)
    for code in reasons:
        at.checkbox(key=f"reason-{code}-{tid}").check()
    if other:
        at.text_input(key=f"other-{tid}").input(other)
    [b for b in at.button if b.label == choice.capitalize()][0].click()
    return no_exception(at.run())


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def truths(study: Path) -> dict[str, str]:
    with StudyStore.open(study) as store:
        frame = store.images_progress()
    return dict(zip(frame["image_id"], frame["truth"]))


def judgments(study: Path):
    with StudyStore.open(study) as store:
        return store.export_frame()


def test_display_png_is_lanczos_at_display_size(tmp_path):
    faces = write_faces(tmp_path / "f", 1, size=32, seed=0)
    path = next(Path(faces).glob("*.png"))
    png = display.display_png(path, 96)
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG" and img.size == (96, 96)
        assert not img.info.get("Title") and not any(k.lower() in ("comment", "description") for k in img.info)
        got = np.asarray(img.convert("RGB"))
    with Image.open(path) as src:
        want = np.asarray(src.convert("RGB").resize((96, 96), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(got, want)
    assert display.display_png(path, 96) is png  # cached
    assert display.fit_size(30, 60, 512) == (256, 512) and display.fit_size(60, 30, 512) == (512, 256)


def test_display_missing_upscaler_falls_back_to_lanczos(tmp_path, monkeypatch):
    monkeypatch.setattr(display, "UPSCALER_KIND", "no_such_upscaler_for_ganeval_tests")
    display._warn_once.cache_clear()
    arr = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    with pytest.warns(RuntimeWarning, match="using Lanczos"):
        out = display.upscale(arr, 64, "srgan:/nowhere/model.pt")
    np.testing.assert_array_equal(out, display.lanczos(arr, 64))
    assert "not available" in display.upscaler_status("srgan:/nowhere/model.pt")


def test_display_uses_model_upscaler_when_present(monkeypatch):
    calls = []

    def upscale_image(rgb, size, method, device):
        calls.append((size, method))
        return np.repeat(np.repeat(rgb, size[0] // rgb.shape[0], axis=0), size[1] // rgb.shape[1], axis=1)

    monkeypatch.setattr(display, "image_upscaler", lambda kind: upscale_image)
    arr = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = display.upscale(arr, 64, "srgan:/ckpt.pt")
    assert calls == [((64, 64), "srgan:/ckpt.pt")]
    np.testing.assert_array_equal(out, np.repeat(np.repeat(arr, 4, axis=0), 4, axis=1))
    assert display.upscaler_status("srgan:/ckpt.pt").startswith("srgan:/ckpt.pt")


def test_the_installed_package_registers_its_srgan_upscaler():
    from ganeval.models.upscale import upscale_image
    from ganeval.upscale import image_upscaler

    assert image_upscaler("srgan") is upscale_image
    assert image_upscaler("no_such_upscaler") is None


def test_display_broken_checkpoint_falls_back_to_lanczos(tmp_path):
    """The real image-to-image module with a checkpoint that is not one: Lanczos, a warning."""
    display._warn_once.cache_clear()
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    arr = np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    with pytest.warns(RuntimeWarning, match="failed"):
        out = display.upscale(arr, 64, f"srgan:{bad}")
    np.testing.assert_array_equal(out, display.lanczos(arr, 64))
    assert "not available" in display.upscaler_status(f"srgan:{bad}")


def test_consent_all_trials_then_thank_you(tmp_path, study_env):
    study = make_study(tmp_path, trials=4, attention=1)
    study_env(study)
    at = no_exception(open_app())
    assert titles(at) == ["Real or fake?"]
    intro = " ".join(m.value for m in at.markdown)
    assert "5 pictures" in intro and "easy checks" in intro and "warm-up" not in intro
    assert "p" not in at.query_params  # nobody is created before consenting
    with StudyStore.open(study) as store:
        assert len(store.participants_progress()) == 0

    # starting without ticking the box is refused
    [b for b in at.button if b.label == "Start"][0].click()
    no_exception(at.run())
    assert "p" not in at.query_params and at.warning

    token = consent(at)
    given = []
    for i in range(5):
        # the picture: lossless (no JPEG artefacts to judge), captioned with nothing
        assert len(at.image) == 1 and not any(at.image[0].captions)
        assert at.image[0].proto.imgs[0].url.endswith(".png")
        progress = at.get("progress")
        assert progress and f"Picture {i + 1} of 5" in str(progress[0].proto.text)
        if i % 2 == 0:
            given.append(("fake", 4, "deformation;other", "odd ears"))
            answer(at, "fake", confidence=4, reasons=["deformation"], other="odd ears")
        else:
            given.append(("real", None, "", ""))
            answer(at, "real")
    assert titles(at) == ["Thank you!"]

    frame = judgments(study)
    assert len(frame) == 5
    assert list(frame["participant"].unique()) == ["P00001"]  # pseudonymous: the token never leaves
    assert list(frame["trial_number"]) == [1, 2, 3, 4, 5]
    assert sorted(frame["phase"]) == ["attention", "main", "main", "main", "main"]
    for row, (ans, conf, reasons, other) in zip(frame.itertuples(), given):
        assert row.answer == ans
        assert (pd_isna(row.confidence) and conf is None) or row.confidence == conf
        assert row.reasons == reasons and row.reason_other == other
        assert row.correct == int(row.answer == row.truth)
        assert row.response_ms is not None and row.response_ms >= 0
        assert row.shown_at and row.answered_at >= row.shown_at
    with StudyStore.open(study) as store:
        assert store.state(token).status == "done"

    # coming back with the link shows the thank-you page again, and stores nothing more
    again = no_exception(open_app(p=token))
    assert titles(again) == ["Thank you!"] and len(judgments(study)) == 5


@pytest.mark.slow
def test_reload_resumes_at_the_same_trial(tmp_path, study_env):
    study = make_study(tmp_path, trials=6)
    study_env(study)
    at = open_app()
    token = consent(at)
    answer(at, "real")
    answer(at, "fake")
    tid = shown_trial_id(at)
    with StudyStore.open(study) as store:
        shown_before = store.current_trial(token)
    assert shown_before.trial_id == tid and shown_before.number == 3

    reloaded = no_exception(open_app(p=token))  # a new browser session with the same link
    assert shown_trial_id(reloaded) == tid
    assert reloaded.query_params["p"] == token
    answer(reloaded, "real")
    frame = judgments(study)
    assert list(frame["trial_number"]) == [1, 2, 3]
    assert list(frame["answer"]) == ["real", "fake", "real"]

    # a participant created but interrupted before consenting keeps their token
    with StudyStore.open(study) as store:
        waiting = store.start_participant()
    late = no_exception(open_app(p=waiting))
    assert titles(late) == ["Real or fake?"] and not late.image
    assert consent(late) == waiting and len(late.image) == 1

    # a stranger's made-up token starts afresh instead of failing
    stranger = no_exception(open_app(p="not-a-token"))
    assert "p" not in stranger.query_params and titles(stranger) == ["Real or fake?"]


def test_double_submission_is_stored_once(tmp_path, study_env):
    study = make_study(tmp_path, trials=4)
    study_env(study)
    first = open_app()
    token = consent(first)
    second = no_exception(open_app(p=token))  # the same participant in a second tab
    tid = shown_trial_id(first)
    assert shown_trial_id(second) == tid

    answer(first, "real")
    answer(second, "fake")  # the late duplicate: not stored, the tab moves on
    frame = judgments(study)
    assert len(frame) == 1 and frame["answer"].tolist() == ["real"]
    assert shown_trial_id(second) == shown_trial_id(first) != tid


@pytest.mark.slow
def test_resume_and_double_submission_on_postgresql(tmp_path, study_env, fresh_pg_url):
    """The same flows with the database on a throwaway PostgreSQL server (``--db-url``)."""
    study = make_study(tmp_path, trials=4, db_url=fresh_pg_url)
    assert not (study / "study.db").exists()
    study_env(study, db_url=fresh_pg_url)
    first = open_app()
    token = consent(first)
    answer(first, "fake", confidence=2, reasons=["no_expression"])
    second = no_exception(open_app(p=token))  # reload / second tab resumes at trial 2
    tid = shown_trial_id(first)
    assert shown_trial_id(second) == tid
    answer(first, "real")
    answer(second, "fake")  # the duplicate is not stored
    for _ in range(2):
        answer(first, "real")
    assert titles(first) == ["Thank you!"]
    frame = judgments(study)
    assert frame["answer"].tolist() == ["fake", "real", "real", "real"]
    assert frame["reasons"].tolist()[0] == "no_expression" and frame["confidence"].tolist()[0] == 2
    with StudyStore.open(study, fresh_pg_url) as store:
        assert store.engine.dialect.name == "postgresql" and store.state(token).status == "done"


def test_double_click_on_the_next_picture_is_ignored(tmp_path, study_env, monkeypatch):
    """The second click of a double click lands on the next picture's button within a moment
    of it appearing: that is not an answer. (The guard window is read at each run; a long one
    stands for "too soon" and none for "after a look", so timing never makes this flaky.)"""
    study = make_study(tmp_path, trials=4)
    study_env(study)
    at = open_app()
    consent(at)
    answer(at, "fake")           # a considered answer
    tid = shown_trial_id(at)
    monkeypatch.setenv("GANEVAL_STUDY_MIN_DISPLAY_MS", "60000")
    answer(at, "fake", confidence=3, reasons=["artefacts"])  # within the window: refused
    assert shown_trial_id(at) == tid and len(judgments(study)) == 1
    assert "very quick" in at.warning[0].value  # said so, not dropped silently
    # the form is kept as the participant filled it in
    assert at.radio(key=f"confidence-{tid}").value == 3 and at.checkbox(key=f"reason-artefacts-{tid}").value
    monkeypatch.setenv("GANEVAL_STUDY_MIN_DISPLAY_MS", "0")
    answer(at, "real")           # a considered answer is taken
    frame = judgments(study)
    assert frame["answer"].tolist() == ["fake", "real"] and shown_trial_id(at) != tid


def test_browser_timing_is_stored_and_guards_the_answer(tmp_path, study_env, monkeypatch):
    """The page's script sends the time from the picture's first paint to the press: it is
    stored next to the server's time, and it (not the server's draw time) decides whether the
    picture was on screen long enough. Anything malformed from the browser is ignored."""
    study = make_study(tmp_path, trials=4)
    study_env(study, debounce_ms=300)
    at = open_app()
    consent(at)
    tid = shown_trial_id(at)
    at.text_input(key=f"client-{tid}").input('{"rt": 120, "shown": 1764806400000}')
    answer(at, "real")  # 120 ms on screen by the browser's clock: the late half of a double click
    assert shown_trial_id(at) == tid and len(judgments(study)) == 0 and "very quick" in at.warning[0].value
    at.text_input(key=f"client-{tid}").input('{"rt": 812.4, "shown": 1764806400000}')
    answer(at, "real")
    tid2 = shown_trial_id(at)
    at.text_input(key=f"client-{tid2}").input('{"rt": "<script>", "shown": -1}')
    monkeypatch.setenv("GANEVAL_STUDY_MIN_DISPLAY_MS", "0")
    answer(at, "fake")
    frame = judgments(study)
    assert frame["rt_client_ms"].tolist()[0] == 812 and pd_isna(frame["rt_client_ms"].tolist()[1])
    assert frame["shown_client_at"].tolist() == ["2025-12-04T00:00:00.000000+00:00", ""]
    assert frame["response_ms"].notna().all()  # the server's own time is kept as well


def test_failed_qualification_ends_politely(tmp_path, study_env):
    study = make_study(tmp_path, trials=4, qualification=4)
    url = "https://app.prolific.com/submissions/complete?cc=SCREENED"  # the platform's screened-out link
    from ganeval.study_app.store import update_settings

    update_settings(study, screened_out_url=url)
    study_env(study)
    truth = truths(study)
    at = open_app()
    assert "warm-up" in " ".join(m.value for m in at.markdown)
    token = consent(at)
    for i in range(4):
        progress = at.get("progress")
        assert f"Warm-up · picture {i + 1} of 4" in str(progress[0].proto.text)
        with StudyStore.open(study) as store:
            image_id = store.current_trial(token).image_id
        answer(at, "fake" if truth[image_id] == "real" else "real")  # always wrong
    assert titles(at) == ["Thank you for taking part"]
    assert not at.button and not at.image
    assert [b.proto.url for b in at.get("link_button")] == [url]  # the way back to the platform
    frame = judgments(study)
    assert len(frame) == 4 and set(frame["phase"]) == {"qualification"} and frame["correct"].sum() == 0
    with StudyStore.open(study) as store:
        assert store.state(token).status == "failed"
    assert titles(no_exception(open_app(p=token))) == ["Thank you for taking part"]


def test_passed_qualification_goes_on_to_the_trials(tmp_path, study_env):
    study = make_study(tmp_path, trials=2, qualification=2)
    study_env(study)
    truth = truths(study)
    at = open_app()
    token = consent(at)
    for _ in range(2):
        with StudyStore.open(study) as store:
            image_id = store.current_trial(token).image_id
        answer(at, truth[image_id])  # always right
    assert "Picture 1 of 2" in str(at.get("progress")[0].proto.text)
    assert "Warm-up complete" in at.success[0].value
    answer(at, "real")
    answer(at, "real")
    assert titles(at) == ["Thank you!"]
    assert judgments(study)["phase"].tolist() == ["qualification", "qualification", "main", "main"]


def admin_login(at: AppTest, password: str) -> AppTest:
    at.text_input[0].input(password)
    [b for b in at.button if b.label == "Log in"][0].click()
    return no_exception(at.run())


@pytest.mark.slow
def test_admin_refuses_wrong_password_then_manages_the_study(tmp_path, study_env):
    study = make_study(tmp_path, trials=2)
    study_env(study)
    participant = open_app()
    consent(participant)
    answer(participant, "fake", reasons=["artefacts"])

    admin = no_exception(open_app(admin="1"))
    assert not admin.dataframe and not admin.get("download_button")
    admin_login(admin, "wrong")
    assert [e.value for e in admin.error] == ["Wrong password."]
    assert not admin.dataframe and not admin.get("download_button")

    admin_login(admin, PASSWORD)
    assert not admin.error
    assert len(admin.dataframe) == 2
    people, pictures = (d.value for d in admin.dataframe)
    assert len(people) == 1 and people["answered"].tolist() == [1]
    assert pictures["judged"].sum() == 1
    metrics = {m.label: m.value for m in admin.metric}
    assert metrics["Study"] == "open" and metrics["Judgments"] == "1"
    assert admin.get("download_button")

    [b for b in admin.button if b.label == "Close the study"][0].click()
    no_exception(admin.run())
    with StudyStore.open(study) as store:
        assert not store.is_open
    assert {m.label: m.value for m in admin.metric}["Study"] == "closed"
    assert titles(no_exception(open_app())) == ["This study is closed"]
    closed = no_exception(open_app(p=participant.query_params["p"]))
    assert titles(closed) == ["This study is closed"] and not closed.button and not closed.image
    assert "answers so far are saved" in " ".join(m.value for m in closed.markdown)

    [b for b in admin.button if b.label == "Reopen the study"][0].click()
    no_exception(admin.run())
    with StudyStore.open(study) as store:
        assert store.is_open
    resumed = no_exception(open_app(p=participant.query_params["p"]))
    answer(resumed, "real")
    assert titles(resumed) == ["Thank you!"]


@pytest.mark.slow
def test_admin_session_survives_a_reload_and_lockout_counts_in_the_database(tmp_path, study_env):
    study = make_study(tmp_path, trials=2)
    study_env(study)
    participant = open_app()
    token = consent(participant)
    admin = admin_login(no_exception(open_app(admin="1")), PASSWORD)
    session = admin.query_params["session"]
    assert session and PASSWORD not in str(dict(admin.query_params))
    people = admin.dataframe[0].value
    assert token not in people.to_csv() and list(people["participant"]) == ["P00001"]
    # a reload (a new browser session with the same address) stays logged in
    reloaded = no_exception(open_app(admin="1", session=session))
    assert len(reloaded.dataframe) == 2 and not reloaded.text_input
    forged = no_exception(open_app(admin="1", session="not-a-session"))
    assert not forged.dataframe and forged.text_input
    # failures count across sessions (each attempt from a fresh page): the 6th is locked, right password too
    for _ in range(5):
        assert [e.value for e in admin_login(no_exception(open_app(admin="1")), "wrong-guess").error] == [
            "Wrong password."]
    locked = admin_login(no_exception(open_app(admin="1")), PASSWORD)
    assert "locked" in locked.error[0].value and not locked.dataframe
    with StudyStore.open(study) as store:
        assert list(store.admin_attempts()["outcome"]) == ["ok"] + ["failed"] * 5 + ["locked"]
    # the live view re-reads the database: a new judgment shows up on the next refresh
    with StudyStore.open(study) as store:
        trial = store.current_trial(token)
        store.record(token, trial.trial_id, "real")
    no_exception(reloaded.run())
    assert {m.label: m.value for m in reloaded.metric}["Judgments"] == "1"
    [b for b in reloaded.button if b.label == "Log out"][0].click()
    no_exception(reloaded.run())
    assert "session" not in reloaded.query_params
    assert not no_exception(open_app(admin="1", session=session)).dataframe


@pytest.mark.slow
def test_crowdsourcing_link_is_one_person_one_participant(tmp_path, study_env, monkeypatch):
    study = make_study(tmp_path, trials=2, qualification=2)
    url = "https://app.prolific.com/submissions/complete?cc=C0DE"
    assert cli(["study", "init", str(tmp_path / "crowd"), "--real", str(tmp_path / "study-real"),
                "--fake", str(tmp_path / "study-fake"), "--trials", "2", "--completion-url", url]) == 0
    study_env(tmp_path / "crowd")
    link = {"PROLIFIC_PID": "60f1c0ffee", "STUDY_ID": "s1", "SESSION_ID": "x1"}
    at = open_app(**link)
    token = consent(at)
    answer(at, "real")
    # the same platform id with a fresh link (no token) comes back to the same participant
    again = no_exception(open_app(**link))
    assert again.query_params["p"] == token
    answer(again, "fake")
    assert titles(again) == ["Thank you!"]
    buttons = again.get("link_button")
    assert buttons and buttons[0].proto.url == url
    frame = judgments(tmp_path / "crowd")
    assert set(frame["external_id"]) == {"60f1c0ffee"} and set(frame["participant"]) == {"P00001"}
    # MTurk ids work the same way; a failed warm-up cannot be restarted with a fresh link
    study_env(study)
    truth = truths(study)
    at = open_app(workerId="A1TURK", assignmentId="3X")
    token = consent(at)
    for _ in range(2):
        with StudyStore.open(study) as store:
            image_id = store.current_trial(token).image_id
        answer(at, "fake" if truth[image_id] == "real" else "real")
    assert titles(at) == ["Thank you for taking part"]
    assert titles(no_exception(open_app(workerId="A1TURK", assignmentId="4Y"))) == ["Thank you for taking part"]
    # --max-participants: the next new person is told the study is full
    monkeypatch.setenv("GANEVAL_STUDY_MAX_PARTICIPANTS", "1")
    full = open_app(workerId="B2")
    full.checkbox[0].check()
    [b for b in full.button if b.label == "Start"][0].click()
    no_exception(full.run())
    assert titles(full) == ["This study is full"] and "p" not in full.query_params


def test_admin_disabled_without_a_password(tmp_path, study_env):
    study = make_study(tmp_path, trials=2)
    study_env(study, password=None)
    admin = no_exception(open_app(admin="1"))
    assert "disabled" in admin.warning[0].value
    assert not admin.text_input and not admin.dataframe
    study_env(study, password="short")  # e.g. from Streamlit secrets, which `study run` cannot check
    admin = no_exception(open_app(admin="1"))
    assert "at least 8 characters" in admin.warning[0].value and not admin.text_input


def test_admin_password_from_streamlit_secrets(tmp_path, study_env):
    study = make_study(tmp_path, trials=2)
    study_env(study, password=None)
    admin = AppTest.from_file(APP, default_timeout=60)
    admin.secrets["admin_password"] = "from-secrets"
    admin.query_params["admin"] = "1"
    no_exception(admin.run())
    admin_login(admin, PASSWORD)
    assert [e.value for e in admin.error] == ["Wrong password."]
    admin_login(admin, "from-secrets")
    assert not admin.error and len(admin.dataframe) == 2


def test_database_failure_is_a_polite_message(tmp_path, study_env):
    study = make_study(tmp_path, trials=2)
    study_env(study)
    at = open_app()
    token = consent(at)
    with sqlite3.connect(study / "study.db") as conn:  # the database breaks under the running app
        conn.execute("ALTER TABLE participants RENAME TO participants_gone")
    broken = no_exception(open_app(p=token))
    assert "unavailable for a moment" in broken.error[0].value
    assert not broken.button and not broken.image


def test_not_a_study_says_so(tmp_path, study_env):
    study_env(tmp_path / "nothing-here")
    at = no_exception(open_app())
    # the browser gets one friendly line; why ("not a study", with the path) goes to the server log
    assert "cannot be opened right now" in at.error[0].value and str(tmp_path) not in at.error[0].value


@pytest.fixture
def srgan_checkpoint(tmp_path) -> Path:
    """A tiny untrained SRGAN (×2, one block) saved in the one checkpoint format."""
    import torch

    from ganeval.models.checkpoint import save_checkpoint
    from ganeval.models.registry import FAMILIES, build_models

    torch.manual_seed(0)
    cfg = FAMILIES["srgan"].config(32, 3, width=8, options={"scale": 2, "n_blocks": 1, "perceptual": "off"})
    G, D = build_models(cfg)
    path = tmp_path / "srgan.pt"
    save_checkpoint(path, {"model": "srgan", "config": {"model": cfg.to_dict(), "train": {}}, "step": 0,
                           "G": G.state_dict(), "D": D.state_dict(), "G_ema": G.state_dict()})
    return path


def test_study_with_srgan_upscaler_shows_model_output(tmp_path, study_env, srgan_checkpoint, recwarn):
    """``--upscaler srgan:CKPT``: the display is the model's output (then Lanczos to size),
    identical to the image-to-image module's own ``upscale_image``."""
    from ganeval.images import decode_image
    from ganeval.models.upscale import upscale_image

    method = f"srgan:{srgan_checkpoint}"
    path = next(Path(write_faces(tmp_path / "one", 1, size=32, seed=4)).glob("*.png"))
    arr = decode_image(path)
    got = decode_image(display.display_png(path, 96, method))
    np.testing.assert_array_equal(got, upscale_image(arr, (96, 96), method, "cpu"))
    assert not np.array_equal(got, display.lanczos(arr, 96))  # the model did something else
    assert display.upscaler_status(method).startswith(method)

    real = write_faces(tmp_path / "real", 4, size=32, seed=0)
    fake = write_faces(tmp_path / "fake", 4, size=32, seed=1)
    study = tmp_path / "study"
    assert cli(["study", "init", str(study), "--real", str(real), "--fake", str(fake), "--trials", "2",
                "--display-size", "64", "--upscaler", method]) == 0
    study_env(study)
    at = open_app()
    consent(at)
    assert len(at.image) == 1
    answer(at, "real")
    answer(at, "fake")
    assert titles(at) == ["Thank you!"]
    assert not [w for w in recwarn if "upscaler" in str(w.message)]


def _page_text(at: AppTest) -> str:
    parts = [e.value for e in (*at.error, *at.warning, *at.info, *at.markdown, *at.title, *at.caption)]
    return " ".join(str(p) for p in parts)


def test_failures_show_one_friendly_line_and_no_server_path(tmp_path, study_env):
    """A missing image file (or any other failure) is never a traceback or a path in the browser."""
    study = make_study(tmp_path, trials=4)
    study_env(study)
    at = open_app()
    consent(at)
    for png in (study / "images").glob("*.png"):
        png.unlink()  # the operator lost the image folder
    at.run()
    assert not at.exception
    text = _page_text(at)
    assert "Something went wrong on our side; your answers so far are saved" in text
    assert str(tmp_path) not in text and "Traceback" not in text
    study_env(tmp_path / "nowhere")  # a study folder that is gone
    at = open_app()
    assert not at.exception
    text = _page_text(at)
    assert "cannot be opened right now" in text and str(tmp_path) not in text


def test_a_missing_image_is_replaced_by_one_of_its_class(tmp_path, study_env, caplog):
    """A lost or unreadable picture is never shown broken: the trial gets another picture of the
    same class that this participant has not been given, and the study goes on."""
    study = make_study(tmp_path, trials=4)
    study_env(study)
    at = open_app()
    token = consent(at)
    with StudyStore.open(study) as store:
        first = store.current_trial(token)
        truth = dict(zip(*store.images_progress()[["image_id", "truth"]].T.values))
    (study / "images" / f"{first.image_id}.png").unlink()
    at.run()
    assert not at.exception and "Something went wrong" not in _page_text(at)
    assert shown_trial_id(at) == first.trial_id and at.image  # the same trial, now with a picture
    for _ in range(4):
        answer(at, "real")
    assert titles(at) == ["Thank you!"]
    frame = judgments(study)
    assert len(frame) == 4 and first.image_id not in set(frame["image_id"]) and frame["image_id"].is_unique
    replaced = frame.loc[frame["trial_number"] == first.number, "image_id"].item()
    assert truth[replaced] == truth[first.image_id]
    assert "of the same class" in caplog.text


def test_a_bad_platform_id_gets_a_friendly_page(tmp_path, study_env):
    study = make_study(tmp_path, trials=4)
    study_env(study)
    at = open_app(PROLIFIC_PID="abc\x00def")
    assert not at.exception
    assert "This study link is not valid" in _page_text(at)
    with StudyStore.open(study) as store:
        assert store.counts()["participants"] == 0


def test_signed_links_let_only_invited_people_take_part(tmp_path, study_env, capsys):
    """--signed-links: the plain link and an id without its signature cannot take part; the
    personal link from `study links` can, and comes back to the same participant."""
    from urllib.parse import parse_qs, urlparse

    import pandas as pd

    study = make_study(tmp_path, trials=4)
    assert cli(["study", "links", str(study), "--url", "https://s.example.org", "-n", "2",
                "-o", str(tmp_path / "l.csv")]) == 2
    assert "made without --signed-links" in capsys.readouterr().err
    study = make_study(tmp_path, trials=4, name="invited")
    from ganeval.study_app.store import new_link_secret, update_settings

    update_settings(study, link_secret=new_link_secret())
    (tmp_path / "ids.txt").write_text("alice\nbob\n")
    assert cli(["study", "links", str(study), "--url", "https://s.example.org/", "--ids", str(tmp_path / "ids.txt"),
                "-o", str(tmp_path / "links.csv")]) == 0
    links = pd.read_csv(tmp_path / "links.csv", dtype=str)
    assert list(links["id"]) == ["alice", "bob"] and links["link"].str.startswith("https://s.example.org/?pid=").all()
    query = {k: v[0] for k, v in parse_qs(urlparse(links["link"][0]).query).items()}
    assert cli(["study", "links", str(study), "--url", "https://s.example.org", "-n", "3",
                "-o", str(tmp_path / "links.csv")]) == 2  # never overwrites without --overwrite

    study_env(study)
    plain = no_exception(open_app())
    assert "by invitation" in " ".join(i.value for i in plain.info) and not plain.checkbox
    forged = no_exception(open_app(pid="alice", sig="0" * 24))
    assert "not the personal link" in forged.warning[0].value and not forged.checkbox
    unsigned = no_exception(open_app(PROLIFIC_PID="alice"))
    assert "not the personal link" in unsigned.warning[0].value
    invited = no_exception(open_app(**query))
    token = consent(invited)
    again = no_exception(open_app(**query))
    assert again.query_params.get("p") == token
    with StudyStore.open(study) as store:
        assert store.counts()["participants"] == 1 and store.participant_for("alice") == token


def test_staircase_adapts_the_exposure():
    from ganeval.study_app.store import staircase_exposure

    assert staircase_exposure([]) == 500
    assert staircase_exposure([True, True]) == 500 and staircase_exposure([True] * 3) == 470
    assert staircase_exposure([True, True, False]) == 530  # a wrong answer resets the streak
    assert staircase_exposure([True] * 3 + [True, True, False, True]) == 500
    assert staircase_exposure([True] * 300) == 100 and staircase_exposure([False] * 300) == 1000


def test_hype_time_study_times_each_main_picture(tmp_path, study_env, capsys):
    """--protocol hype-time: each main picture carries its staircase exposure to the page (the
    script masks the picture after it); exposure and the measured paint-to-mask time are
    stored, and the export says the protocol, as the HYPE-time analysis reads it."""
    from ganeval.analysis.hype import hype_time_table
    from ganeval.analysis.responses import load_responses

    study = make_study(tmp_path, trials=6, name="timed")
    study_env(study)
    from ganeval.study_app.store import update_settings

    update_settings(study, protocol="hype-time")
    at = open_app()
    assert "only for a moment" in " ".join(m.value for m in at.markdown)
    consent(at)
    for i in range(6):
        tid = shown_trial_id(at)
        field = at.text_input(key=f"client-{tid}")
        exposure = int(field.placeholder.split("=")[1])
        with StudyStore.open(study) as store:
            truth = store.images_progress().set_index("image_id").loc[store.current_trial(at.query_params["p"]).image_id,
                                                                         "truth"]
        field.input(f'{{"rt": {exposure + 400}, "shown": 1764806400000, "exposure": {exposure + 4}}}')
        answer(at, truth if i < 3 else ("fake" if truth == "real" else "real"))  # 3 right, then 3 wrong
    frame = judgments(study)
    assert frame["exposure_ms"].tolist() == [500, 500, 500, 470, 500, 530]
    assert (frame["exposure_shown_ms"] - frame["exposure_ms"]).tolist() == [4] * 6
    assert set(frame["protocol"]) == {"hype-time"}
    table = hype_time_table(load_responses(frame), resamples=50)
    assert table.loc[table["scope"] == "all", "value"].item() == 500.0  # the modal exposure
