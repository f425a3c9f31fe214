"""The study in a real browser: ``ganeval study run`` serves the app on 127.0.0.1 and Debian's
chromium, driven by Playwright (no browser download), completes a 6-trial study, with a double
click and a reload on the way. The database must then hold exactly those 6 judgments; the page
must not leak truth through an image's address or alt text and must serve the lossless display
image; the admin page's CSV download must be the export. Screenshots go to tmp_path (and to
tests/artifacts/ when GANEVAL_KEEP_SCREENSHOTS is set)."""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import pytest

import ganeval
from ganeval.cli.main import main as cli
from ganeval.images import decode_image
from ganeval.synth import write_faces
from ganeval.study_app.display import display_png
from ganeval.study_app.export import csv_bytes
from ganeval.study_app.protocol import REASON_LABELS
from ganeval.study_app.store import EXPORT_COLUMNS, StudyStore

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).parent / "artifacts"
TRIALS = 6

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing (Debian package 'chromium'; `make test` installs it)",
                allow_module_level=True)
from playwright import sync_api  # noqa: E402  (a test dependency: drives Debian's chromium)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"`ganeval study run` exited with {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the study app did not answer at {url} within {timeout:.0f} s")


@pytest.fixture
def study(tmp_path) -> Path:
    real = write_faces(tmp_path / "real", 8, size=32, seed=0)
    fake = write_faces(tmp_path / "fake", 8, size=32, seed=1)
    out = tmp_path / "study"
    assert cli(["study", "init", str(out), "--real", str(real), "--fake", str(fake),
                "--trials", str(TRIALS), "--qualification", "0", "--attention", "0", "--seed", "5"]) == 0
    return out


@contextlib.contextmanager
def running(study: Path, tmp_path: Path, port: int | None = None, **env_extra: str):
    """``ganeval study run`` in its own process group, killed whole at the end; yields (url, process)."""
    port = port or free_port()
    env = dict(os.environ)
    env.pop("GANEVAL_STUDY_DB_URL", None)
    env.pop("GANEVAL_STUDY_MIN_DISPLAY_MS", None)
    env["GANEVAL_STUDY_ADMIN_PASSWORD"] = "browser-test"
    env.update(env_extra)
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "ganeval", "study", "run", str(study),
                             "--host", "127.0.0.1", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(url, proc)
        except RuntimeError as err:
            log.flush()
            raise RuntimeError(f"{err}\n{(tmp_path / 'server.log').read_text(errors='replace')[-3000:]}") from None
        yield url, proc
    finally:
        for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


@pytest.fixture
def server(study, tmp_path):
    with running(study, tmp_path) as (url, _proc):
        yield url


def keep(path: Path) -> None:
    if os.environ.get("GANEVAL_KEEP_SCREENSHOTS"):
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(path, ARTIFACTS / path.name)


@pytest.mark.slow
def test_browser_completes_a_six_trial_study(study, server, tmp_path):
    with StudyStore.open(study) as store:
        images = store.images_progress()
    secrets = list(images["image_id"]) + [Path(k).stem for k in images["source_key"]]

    given = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            person = browser.new_context(viewport={"width": 1280, "height": 900})  # one person's browser
            page = person.new_page()
            page.set_default_timeout(30_000)
            frames: list[bytes] = []  # everything the server sends the browser over the websocket
            page.on("websocket", lambda ws: ws.on(
                "framereceived", lambda data: frames.append(data if isinstance(data, bytes) else data.encode())))
            page.goto(server + "/")
            page.get_by_role("heading", name="Real or fake?").wait_for()
            page.screenshot(path=tmp_path / "study_consent.png", full_page=True)
            keep(tmp_path / "study_consent.png")
            page.get_by_text("I have read the above and agree to take part.").click()
            start_box = page.get_by_role("button", name="Start").bounding_box()
            page.get_by_role("button", name="Start").dblclick()  # the second click must not answer trial 1
            page.get_by_text(f"Picture 1 of {TRIALS}").wait_for()
            for name in ("Real", "Fake"):  # Start and the answers never share a place on the page
                box = page.get_by_role("button", name=name, exact=True).bounding_box()
                assert box["x"] >= start_box["x"] + start_box["width"] or box["x"] + box["width"] <= start_box["x"]

            previous_src = None
            for i in range(TRIALS):
                page.get_by_text(f"Picture {i + 1} of {TRIALS}").wait_for()
                # Streamlit updates the progress text before the picture: wait for a new, loaded one
                src, width = page.wait_for_function(
                    "prev => { const i = document.querySelector('[data-testid=\"stImage\"] img');"
                    " return i && i.src !== prev && i.complete && i.naturalWidth > 0"
                    " ? [i.src, i.naturalWidth] : false; }", arg=previous_src).json_value()
                previous_src = src
                assert width == 512
                html = page.content()
                leaks = [s for s in secrets if s and s in html]
                assert not leaks, f"the page names study images: {leaks}"
                for img_src, img_alt in page.eval_on_selector_all("img", "els => els.map(e => [e.src, e.alt || ''])"):
                    for word in ("real", "fake", "attention", "face_", "study", "images"):
                        assert word not in img_src.lower() and word not in img_alt.lower(), (img_src, img_alt)
                if i == 0:
                    # the pixels served are exactly the lossless display image (no JPEG re-encoding)
                    token = parse_qs(urlparse(page.url).query)["p"][0]
                    with StudyStore.open(study) as store:
                        want = display_png(store.image_path(store.current_trial(token).image_id), 512)
                    served = page.request.get(urljoin(server + "/", src)).body()
                    assert decode_image(served).tobytes() == decode_image(want).tobytes()
                    page.screenshot(path=tmp_path / "study_trial.png", full_page=True)
                    keep(tmp_path / "study_trial.png")
                page.wait_for_timeout(500)  # a person looks before answering (and the double-click guard)
                if i == 0:
                    # a double click stores one answer and does not answer the next picture
                    page.get_by_role("button", name="Real", exact=True).dblclick()
                    given.append(("real", None, ""))
                    page.get_by_text(f"Picture 2 of {TRIALS}").wait_for()
                    page.wait_for_timeout(700)
                    with StudyStore.open(study) as store:
                        assert len(store.export_frame()) == 1
                    continue
                if i % 2 == 1:
                    page.get_by_text("4", exact=True).click()
                    page.get_by_text("If you answer Fake: what gave it away?").click()
                    page.get_by_text(REASON_LABELS["deformation"]).click()
                    page.get_by_role("button", name="Fake", exact=True).click()
                    given.append(("fake", 4, "deformation"))
                else:
                    page.get_by_role("button", name="Real", exact=True).click()
                    given.append(("real", None, ""))
                if i + 1 < TRIALS:
                    page.get_by_text(f"Picture {i + 2} of {TRIALS}").wait_for()
                if i == 2:
                    page.reload()  # a reload (or a lost connection) resumes at the same picture
                    previous_src = None
                    page.get_by_text(f"Picture {i + 2} of {TRIALS}").wait_for()
                if i == 3:
                    # one person, one participant: the plain study link in a new tab, and Back
                    # to it, resume the same participant at the same picture
                    tab = page.context.new_page()
                    tab.goto(server + "/")
                    tab.get_by_text(f"Picture {i + 2} of {TRIALS}").wait_for()
                    assert parse_qs(urlparse(tab.url).query)["p"][0] == token
                    tab.close()
                    page.goto(server + "/")
                    page.get_by_text(f"Picture {i + 2} of {TRIALS}").wait_for()
                    page.go_back()
                    page.go_back()
                    page.get_by_text(f"Picture {i + 2} of {TRIALS}").wait_for()
                    previous_src = None
            page.get_by_role("heading", name="Thank you!").wait_for()
            server_paths = {str(Path(ganeval.__file__).resolve().parent.parent), str(study.resolve()), str(tmp_path)}
            assert frames and not [p for p in server_paths if any(p.encode() in f for f in frames)]
            again = page.context.new_page()  # the link again after the end: thanks, not a new start
            again.goto(server + "/")
            again.get_by_role("heading", name="Thank you!").wait_for()
            again.close()
            page.screenshot(path=tmp_path / "study_done.png", full_page=True)
            keep(tmp_path / "study_done.png")

            admin = browser.new_page(viewport={"width": 1280, "height": 900})
            admin.goto(server + "/?admin=1")
            admin.locator("input[type=password]").fill("browser-test")
            admin.get_by_role("button", name="Log in").click()
            admin.get_by_role("heading", name="Participants").wait_for()
            assert "browser-test" not in admin.url and "session=" in admin.url
            admin.reload()  # a reload keeps the admin logged in (server-side session)
            admin.get_by_role("heading", name="Participants").wait_for()
            admin.get_by_role("button", name="Download responses (CSV)").wait_for()
            admin.wait_for_timeout(500)
            admin.screenshot(path=tmp_path / "study_admin.png", full_page=True)
            keep(tmp_path / "study_admin.png")
            with admin.expect_download() as download:
                admin.get_by_role("button", name="Download responses (CSV)").click()
            downloaded = Path(download.value.path()).read_text()
            assert download.value.suggested_filename == "responses.csv"
        finally:
            browser.close()

    with StudyStore.open(study) as store:
        frame = store.export_frame()
        state = store.state(token)
    assert len(frame) == TRIALS and frame["participant"].nunique() == 1
    assert downloaded == csv_bytes(frame).decode()  # the admin's CSV is the export
    assert token not in downloaded  # the token is a credential: the admin sees a pseudonym
    assert downloaded.splitlines()[0].split(",") == list(EXPORT_COLUMNS)
    assert state.status == "done" and state.answered == TRIALS
    assert list(frame["trial_number"]) == list(range(1, TRIALS + 1))
    assert set(frame["phase"]) == {"main"} and set(frame["participant_kind"]) == {"human"}
    assert sorted(frame["truth"]) == ["fake"] * 3 + ["real"] * 3
    for row, (ans, conf, reasons) in zip(frame.itertuples(), given):
        assert row.answer == ans and row.reasons == reasons
        assert (conf is None and row.confidence is pd_na()) or row.confidence == conf
        assert row.correct == int(row.answer == row.truth)
        assert row.response_ms > 0
        assert 300 <= row.rt_client_ms <= row.response_ms  # the browser's time: from paint, without transfer
        assert dt.datetime.fromisoformat(row.shown_client_at).utcoffset() == dt.timedelta(0)
        shown, answered = dt.datetime.fromisoformat(row.shown_at), dt.datetime.fromisoformat(row.answered_at)
        assert shown.utcoffset() == dt.timedelta(0) and shown < answered
        assert abs((answered - shown).total_seconds() * 1000 - row.response_ms) < 5
    assert (tmp_path / "study_trial.png").stat().st_size > 10_000


def pd_na():
    import pandas as pd

    return pd.NA


PHONE = {"width": 390, "height": 844}
GUARD_MS = 8000  # the quick-click guard for this test: long, so a slow machine cannot make it flaky


def loaded_picture(page, previous_src=None) -> str:
    return page.wait_for_function(
        "prev => { const i = document.querySelector('[data-testid=\"stImage\"] img');"
        " return i && i.src !== prev && i.complete && i.naturalWidth > 0 ? i.src : false; }",
        arg=previous_src).json_value()


def in_view(page, locator) -> bool:
    box = locator.bounding_box()
    return box is not None and box["y"] >= -1 and box["y"] + box["height"] <= PHONE["height"] + 1


@pytest.mark.slow
def test_phone_enter_quick_click_reconnect(study, tmp_path):
    """On a 390x844 phone: the picture fits the screen, and the question, confidence and
    reasons come before the Real/Fake buttons; Enter in the "Other reason" box saves nothing
    and keeps the text; a click before the picture has been on screen for the minimum time does
    nothing (the buttons are not ready) and keeps the form; the answer after it carries the
    browser's response time; the next picture is scrolled into view; after a SIGKILL of
    `ganeval study run` the page says it is reconnecting and no server survives."""
    with running(study, tmp_path, GANEVAL_STUDY_MIN_DISPLAY_MS=str(GUARD_MS)) as (url, proc), \
            sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
            page.set_default_timeout(30_000)
            page.goto(url + "/")
            page.get_by_text("I have read the above and agree to take part.").click()
            page.get_by_role("button", name="Start").dblclick()  # a double click on Start answers nothing
            page.get_by_text(f"Picture 1 of {TRIALS}").wait_for()
            src = loaded_picture(page)
            picture = page.locator('[data-testid="stImage"] img')
            real = page.get_by_role("button", name="Real", exact=True)
            fake = page.get_by_role("button", name="Fake", exact=True)
            question = page.get_by_text("Drawn by a person, or generated?")
            sureness = page.get_by_text("How sure are you? (optional)")
            reasons = page.get_by_text("If you answer Fake: what gave it away?")
            page.screenshot(path=tmp_path / "study_phone.png", full_page=True)
            keep(tmp_path / "study_phone.png")
            assert in_view(page, picture) and in_view(page, question)
            y = [loc.bounding_box()["y"] for loc in (picture, question, sureness, reasons, real)]
            assert y == sorted(y), y  # picture, question, confidence, reasons, then the buttons
            assert fake.bounding_box()["y"] >= y[-1]

            reasons.click()
            other = page.get_by_placeholder("Describe it briefly")
            other.fill("odd ears")
            page.get_by_text(REASON_LABELS["artefacts"]).click()
            box = fake.bounding_box()
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # too soon: not ready
            assert float(fake.evaluate("b => getComputedStyle(b).opacity")) < 0.6
            other.press("Enter")
            page.wait_for_timeout(1500)
            with StudyStore.open(study) as store:
                assert len(store.export_frame()) == 0  # neither the quick click nor Enter answered
            assert other.input_value() == "odd ears" and page.get_by_text(f"Picture 1 of {TRIALS}").is_visible()
            assert page.get_by_role("checkbox", name=REASON_LABELS["artefacts"]).is_checked()
            page.wait_for_timeout(GUARD_MS)
            assert float(fake.evaluate("b => getComputedStyle(b).opacity")) == 1.0
            fake.click()
            page.get_by_text(f"Picture 2 of {TRIALS}").wait_for()
            loaded_picture(page, src)
            page.wait_for_timeout(500)
            assert in_view(page, picture)  # the next picture is on screen
            with StudyStore.open(study) as store:
                row = store.export_frame().iloc[0]
            assert (row.answer, row.reasons, row.reason_other) == ("fake", "artefacts;other", "odd ears")
            assert GUARD_MS <= row.rt_client_ms < row.response_ms  # the browser's time excludes transfer

            banner = page.locator("#ganeval-offline")
            assert not banner.is_visible()
            os.kill(proc.pid, signal.SIGKILL)  # the `study run` process is the server (exec)
            proc.wait(timeout=10)
            banner.wait_for(state="visible", timeout=20_000)
            assert "Reconnecting" in banner.inner_text()
            page.screenshot(path=tmp_path / "study_offline.png")
            keep(tmp_path / "study_offline.png")
            with pytest.raises(ProcessLookupError):
                os.killpg(proc.pid, 0)  # nothing of the server is left running
        finally:
            browser.close()


@pytest.mark.slow
def test_prolific_link_returns_and_completes(tmp_path):
    """A Prolific entry link: the same PROLIFIC_PID opened afresh resumes the same participant,
    and after the last trial the browser is taken to the completion URL."""
    port = free_port()
    completion = f"http://127.0.0.1:{port}/_stcore/health?cc=DONE42"
    real = write_faces(tmp_path / "real", 4, size=32, seed=0)
    fake = write_faces(tmp_path / "fake", 4, size=32, seed=1)
    study = tmp_path / "study"
    assert cli(["study", "init", str(study), "--real", str(real), "--fake", str(fake), "--trials", "2",
                "--completion-url", completion]) == 0
    with running(study, tmp_path, port=port, GANEVAL_STUDY_MIN_DISPLAY_MS="0") as (url, _proc), \
            sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            link = url + "/?PROLIFIC_PID=5f00c0ffee&STUDY_ID=st1&SESSION_ID=se1"
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(link)
            page.get_by_text("I have read the above and agree to take part.").click()
            page.get_by_role("button", name="Start").click()
            page.get_by_text("Picture 1 of 2").wait_for()
            loaded_picture(page)
            page.get_by_role("button", name="Real", exact=True).click()
            page.get_by_text("Picture 2 of 2").wait_for()
            page.close()
            again = browser.new_page(viewport={"width": 1280, "height": 900})  # a fresh tab, same platform id
            again.set_default_timeout(30_000)
            again.goto(link)
            again.get_by_text("Picture 2 of 2").wait_for()
            loaded_picture(again)
            again.get_by_role("button", name="Fake", exact=True).click()
            again.wait_for_url("**/_stcore/health?cc=DONE42", timeout=30_000)
        finally:
            browser.close()
    with StudyStore.open(study) as store:
        frame = store.export_frame()
    assert len(frame) == 2 and set(frame["external_id"]) == {"5f00c0ffee"} and set(frame["participant"]) == {"P00001"}


@pytest.mark.slow
def test_hype_time_masks_the_picture_after_its_exposure(tmp_path):
    """--protocol hype-time in a real browser: the picture is covered by the mask after its
    exposure (500 ms for the first trial), the buttons wait for the mask, and the paint-to-mask
    time measured in the browser is stored beside the exposure."""
    real = write_faces(tmp_path / "real", 4, size=32, seed=0)
    fake = write_faces(tmp_path / "fake", 4, size=32, seed=1)
    study = tmp_path / "study"
    assert cli(["study", "init", str(study), "--real", str(real), "--fake", str(fake), "--trials", "2",
                "--protocol", "hype-time", "--no-audit"]) == 0
    with running(study, tmp_path, GANEVAL_STUDY_MIN_DISPLAY_MS="0") as (url, _proc), \
            sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(url + "/")
            page.get_by_text("only for a moment").wait_for()
            page.get_by_text("I have read the above and agree to take part.").click()
            page.get_by_role("button", name="Start").click()
            page.get_by_text("Picture 1 of 2").wait_for()
            loaded_picture(page)
            fake_button = page.get_by_role("button", name="Fake", exact=True)
            box = page.locator('[data-testid="stImage"]')
            assert "ganeval-masked" not in (box.get_attribute("class") or "")
            assert float(fake_button.evaluate("b => getComputedStyle(b).opacity")) < 0.6  # waits for the mask
            page.wait_for_function("() => document.querySelector('[data-testid=\"stImage\"].ganeval-masked')",
                                   timeout=5_000)
            assert page.locator('[data-testid="stImage"] img').evaluate("i => getComputedStyle(i).visibility") == "hidden"
            page.screenshot(path=tmp_path / "study_hype_time_mask.png")
            keep(tmp_path / "study_hype_time_mask.png")
            page.wait_for_timeout(100)
            fake_button.click()
            page.get_by_text("Picture 2 of 2").wait_for()
        finally:
            browser.close()
    with StudyStore.open(study) as store:
        row = store.export_frame().iloc[0]
    assert row.protocol == "hype-time" and row.exposure_ms == 500
    assert 490 <= row.exposure_shown_ms <= 650  # the measured time the picture was on screen
    assert row.rt_client_ms >= row.exposure_shown_ms
