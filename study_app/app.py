"""The real-vs-fake study, as a Streamlit app: ``ganeval study run STUDY_DIR`` starts it with
the study folder in ``GANEVAL_STUDY_DIR`` (and an optional database URL in
``GANEVAL_STUDY_DB_URL``).

Participants: consent and instructions → optional qualification → the trials → thank you.
Every step reads and writes through ``StudyStore`` (Streamlit's session state is never the
store), and the participant's token lives in the URL (``?p=TOKEN``) and in a cookie of the
study's site, so a reload, a lost connection, Back, a new tab or the plain study link again
resume the same participant at the same trial, and a double click is stored once.

Admin: the same app at ``?admin=1``, behind the password in ``GANEVAL_STUDY_ADMIN_PASSWORD``
or ``st.secrets["admin_password"]`` (not a pages/ entry, which would show participants an
"admin" link)."""
from __future__ import annotations

import logging
import os
import secrets
import time

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from ganeval.errors import BadInput, GanevalError
from ganeval.images import CorruptImage
from ganeval.study_app import display
from ganeval.study_app.protocol import (CONFIDENCE_LABELS, CONFIDENCE_MAX, CONFIDENCE_MIN, QUALIFICATION_THRESHOLD,
                                REASON_LABELS, REASONS)
from ganeval.study_app.export import csv_bytes
from ganeval.study_app.store import (ABANDON_AFTER_ENV, ADMIN_PASSWORD_ENV, DB_URL_ENV, DEFAULT_MIN_DISPLAY_MS,
                                     MAX_PARTICIPANTS_ENV, MIN_ADMIN_PASSWORD, MIN_DISPLAY_ENV, STUDY_DIR_ENV,
                                     DEFAULT_ABANDON_AFTER_S, ParticipantState, StudyClosed, StudyFull, StudyStore,
                                     LINK_ID_PARAM, LINK_SIG_PARAM, check_external_id, link_is_signed,
                                     parse_client_timing)

TOKEN_PARAM = "p"
# the browser's participant: a plain link, Back or a new tab finds it again (one person, one participant)
TOKEN_COOKIE = "ganeval_participant"
TOKEN_COOKIE_MAX_AGE_S = 30 * 24 * 3600
WRONG_PASSWORD_DELAY_S = 0.5
ADMIN_PARAM = "admin"
SESSION_PARAM = "session"
ADMIN_REFRESH_S = 3
# entry-link parameters that carry a crowdsourcing platform's participant id
EXTERNAL_ID_PARAMS = ("PROLIFIC_PID", "workerId")

log = logging.getLogger("ganeval.study_app")
_BROKEN_IMAGES: set[str] = set()  # images this server could not show: never given as replacements

# Bigger answer buttons, no Streamlit chrome that participants could wander into, and no
# clicks on stale widgets: while a run is under way, the previous picture's buttons are still
# on screen; a click there would be dropped by Streamlit (its form is gone) and would restart
# the run, so they stop taking clicks until the new ones arrive. The picture is sized to the
# screen's height, so on a phone (390x844) it and the Real/Fake buttons under it fit at once.
STYLE = """
<style>
[data-stale="true"] button, [data-stale="true"] input, [data-stale="true"] label {pointer-events: none;}
#MainMenu, footer, [data-testid="stHeader"] {display: none;}
[data-testid="stMainBlockContainer"] {padding-top: 1.5rem; max-width: 1200px;}
div[data-testid="stFormSubmitButton"] button {min-height: 3.2rem;}
div[data-testid="stFormSubmitButton"] button p {font-size: 1.35rem; font-weight: 600;}
div[data-testid="stImage"] img {border-radius: 6px; box-shadow: 0 1px 8px rgba(0,0,0,.15);
  max-height: min(512px, 58vh); max-width: 100%; width: auto; height: auto; object-fit: contain;}
@media (max-width: 640px) {
  [data-testid="stMainBlockContainer"] {padding: 0.5rem 0.8rem 2rem;}
  div[data-testid="stImage"] img {max-height: 46vh;}
  h4 {font-size: 1rem; margin: 0; padding: 0.2rem 0;}
}
[class*="st-key-client-"] {display: none;}
div[data-testid="stImage"].ganeval-masked {background: repeating-conic-gradient(#6b6b6b 0 25%, #9a9a9a 0 50%) 0 0/12px 12px;
  border-radius: 6px;}
div[data-testid="stImage"].ganeval-masked img {visibility: hidden;}
body.ganeval-timed [class*="st-key-answer-"]:not([data-ganeval-ready]) button {pointer-events: none; opacity: .45;}
#ganeval-offline {position: fixed; top: 0; left: 0; right: 0; z-index: 1000000; display: none;
  padding: 0.7rem 1rem; text-align: center; font-weight: 600; color: #fff; background: #b3261e;}
</style>
"""

# Streamlit's own connection status lives in the header hidden above; this watches it and
# shows a banner while the server is out of reach (the page's widgets do nothing then). It
# also brings each new picture to the top of the view: after an answer given further down,
# the next picture would otherwise start off screen on a phone.
OFFLINE_SCRIPT = """
<script>
(function () {
  if (window.__ganevalOffline) return;
  window.__ganevalOffline = true;
  const banner = document.createElement("div");
  banner.id = "ganeval-offline";
  banner.setAttribute("role", "alert");
  banner.textContent = "Reconnecting\u2026 the connection to the study was lost. Your answers so far are saved; "
    + "please wait, or reload the page.";
  document.body.appendChild(banner);
  let shown = null;
  setInterval(function () {
    const status = document.querySelector('[data-testid="stStatusWidget"]');
    const text = status ? status.textContent : "";
    banner.style.display = /Connecting|Error|Unable/.test(text) ? "block" : "none";
    const img = document.querySelector('[data-testid="stImage"] img');
    if (img && img.src !== shown && img.complete) {
      shown = img.src;
      const top = document.querySelector('[data-testid="stMain"] h4') || img;
      top.scrollIntoView({block: "start"});
    }
  }, 200);
})();
</script>
"""

# Trials are timed in the browser. The Real and Fake buttons take clicks only once the picture
# has been on screen MIN_DISPLAY_MS, counted from its first paint (two animation frames after it
# loaded), and only once: the late second click of a double click, or a double click on Start,
# lands on buttons that are not ready and does nothing. At the press the script writes the
# response time (first paint to press) and the browser's clock at the first paint into the
# trial's hidden field, which the form submits with the answer. Without the script (or when
# its field arrives empty) the server falls back to its own clock from the draw. In a HYPE-time
# study the field's placeholder carries the trial's exposure: the picture is covered by a mask
# that long after its first paint, the buttons wait for the mask, and the time from paint to
# mask is sent as measured.
TIMING_SCRIPT = """
<script>
(function () {
  if (window.__ganevalTiming) return;
  window.__ganevalTiming = true;
  document.body.classList.add("ganeval-timed");
  const MIN_MS = __MIN_DISPLAY_MS__;
  const setValue = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set;
  let trial = null, paintedAt = null, paintedClock = null, pressed = false;
  let exposure = null, known = false, maskedAt = null;  // the trial's exposure: a number, or none (untimed)
  const answerBoxes = () => document.querySelectorAll('[class*="st-key-answer-"]');
  const trialKey = () => {
    const field = document.querySelector('[class*="st-key-client-"]');
    const img = document.querySelector('[data-testid="stImage"] img');
    return field && img ? field.className.match(/st-key-client-[0-9]+/)[0] + " " + img.src : null;
  };
  function maskLater(key) {  // HYPE-time: cover the picture `exposure` ms after its first paint
    const box = document.querySelector('[data-testid="stImage"]');
    setTimeout(() => {
      if (trial !== key) return;
      box.classList.add("ganeval-masked");
      requestAnimationFrame(() => { if (trial === key) maskedAt = performance.now(); });
    }, Math.max(0, paintedAt + exposure - performance.now() - 8));
  }
  setInterval(function () {
    const key = trialKey();
    const img = document.querySelector('[data-testid="stImage"] img');
    if (key !== trial) {
      if (!key || !(img.complete && img.naturalWidth > 0)) return;
      trial = key; paintedAt = null; pressed = false; maskedAt = null; known = false; exposure = null;
      img.closest('[data-testid="stImage"]').classList.remove("ganeval-masked");
      requestAnimationFrame(() => requestAnimationFrame(() => {
        if (trial !== key) return;
        paintedAt = performance.now(); paintedClock = Date.now();
        if (known && exposure !== null) maskLater(key);
      }));
    }
    if (!known) {  // the field's placeholder may arrive a moment after the picture
      const field = document.querySelector('[class*="st-key-client-"] input');
      const said = /exposure=([0-9]+|none)/.exec(field ? field.placeholder : "");
      if (said) {
        known = true;
        exposure = said[1] === "none" ? null : parseInt(said[1], 10);
        if (exposure !== null && paintedAt !== null) maskLater(trial);
      }
    }
    const shownLongEnough = paintedAt !== null && performance.now() - paintedAt >= MIN_MS;
    const ready = known && shownLongEnough && !pressed && (exposure === null || maskedAt !== null);
    answerBoxes().forEach(box => box.toggleAttribute("data-ganeval-ready", ready));
  }, 25);
  const notReady = e => {
    const box = e.target.closest && e.target.closest('[class*="st-key-answer-"]');
    if (box && !box.hasAttribute("data-ganeval-ready")) { e.preventDefault(); e.stopImmediatePropagation(); return null; }
    return box;
  };
  function stamp(e) {
    if (e.type === "keydown" && e.key !== "Enter" && e.key !== " ") return;
    const box = notReady(e);
    if (!box || paintedAt === null) return;
    const form = box.closest('[data-testid="stForm"]');
    const field = form && form.querySelector('[class*="st-key-client-"] input');
    if (!field) return;
    const timing = {rt: Math.round(performance.now() - paintedAt), shown: paintedClock};
    if (maskedAt !== null) timing.exposure = Math.round(maskedAt - paintedAt);
    setValue.call(field, JSON.stringify(timing));
    field.dispatchEvent(new Event("input", {bubbles: true}));
  }
  document.addEventListener("pointerdown", stamp, true);
  document.addEventListener("keydown", stamp, true);
  document.addEventListener("click", function (e) {
    if (notReady(e)) {
      pressed = true;  // one answer per picture: the next click waits for the next picture
      setTimeout(() => answerBoxes().forEach(box => box.removeAttribute("data-ganeval-ready")), 0);
    }
  }, true);
})();
</script>
"""

# ----------------------------------------------------------------------------- helpers

@st.cache_resource(show_spinner=False, max_entries=8)
def _open_store(study_dir: str, db_url: str | None, max_participants: int | None, abandon_after_s: float) -> StudyStore:
    """One store (one connection pool) per study per server process, shared by all sessions."""
    return StudyStore.open(study_dir, db_url, max_participants=max_participants, abandon_after_s=abandon_after_s)


def _env_number(name: str) -> float | None:
    try:
        return float(os.environ[name]) if os.environ.get(name) else None
    except ValueError:
        return None


def _store() -> tuple[StudyStore | None, str | None]:
    """The study's store, or None and the one line to show instead."""
    study_dir = os.environ.get(STUDY_DIR_ENV)
    if not study_dir:
        return None, (f"No study configured: start this app with `ganeval study run STUDY_DIR` "
                      f"(or set {STUDY_DIR_ENV}).")
    try:
        max_participants = _env_number(MAX_PARTICIPANTS_ENV)
        abandon = _env_number(ABANDON_AFTER_ENV)
        return _open_store(study_dir, os.environ.get(DB_URL_ENV) or None,
                           int(max_participants) if max_participants else None,
                           abandon if abandon else DEFAULT_ABANDON_AFTER_S), None
    except GanevalError as err:  # the details (paths, URLs) go to the server's log, never to the browser
        request = secrets.token_hex(4)
        log.error("cannot open the study (request %s): %s", request, err)
        return None, f"The study cannot be opened right now; please try again later. (reference {request})"


def _total_trials(store: StudyStore) -> int:
    s = store.settings
    return s.qualification + s.trials + s.attention


def min_display_ms() -> int:
    """How long a picture must have been on screen before an answer to it counts."""
    try:
        return max(0, int(float(os.environ.get(MIN_DISPLAY_ENV, DEFAULT_MIN_DISPLAY_MS))))
    except ValueError:
        return DEFAULT_MIN_DISPLAY_MS


def _first_seen(trial_id: int) -> float:
    """When this browser session first rendered this trial (monotonic clock): the guard for a
    page whose timing script did not run. Session state is only that memory here: answers and
    progress live in the store."""
    seen = st.session_state.get("_trial_seen")
    if not seen or seen[0] != trial_id:
        seen = (trial_id, time.monotonic())
        st.session_state["_trial_seen"] = seen
    return seen[1]


def _centered():
    """A narrower middle column for text pages (the trial page uses the full width)."""
    return st.columns([1, 3, 1])[1]


# ----------------------------------------------------------------------------- participant pages

def closed_page(started: bool = False) -> None:
    with _centered():
        st.title("This study is closed")
        st.write("Thank you for your interest. The study is not taking answers at the moment.")
        if started:
            st.write("Your answers so far are saved. If the study reopens, this same link "
                     "continues where you left off.")


def thank_you_page(completion_url: str | None = None) -> None:
    with _centered():
        st.title("Thank you!")
        if completion_url:
            st.success("All your answers are saved. You are being taken back to confirm your participation; "
                       "if nothing happens, press the button below.")
            st.link_button("Complete and return", completion_url, type="primary", width="stretch")
            # followed automatically (the URL was checked at init: http(s) only, no quotes)
            st.html(f'<script>setTimeout(function () {{ window.location.href = "{completion_url}"; }}, 1500);'
                    "</script>", unsafe_allow_javascript=True)
        else:
            st.success("All your answers are saved. You can close this tab now.")
            st.balloons()


def full_page(return_url: str | None = None, came_back: bool = False) -> None:
    with _centered():
        st.title("This study is full")
        if came_back:
            st.write("After a long pause your place went to another participant, and the study now has all "
                     "the participants it needs. Your answers so far are saved. Thank you for your time.")
        else:
            st.write("Thank you for your interest. The study has all the participants it needs.")
        if return_url:
            st.link_button("Return to the study platform", return_url)


def failed_page(return_url: str | None = None) -> None:
    with _centered():
        st.title("Thank you for taking part")
        st.write(
            "The warm-up pictures are there to make sure the task works for everyone, and this "
            "time the answers did not reach the level the study needs, so the study ends here. "
            "This says nothing about you: telling these pictures apart is genuinely hard. "
            "Your answers are saved and help us."
            + (" Please return to the study platform with the button below." if return_url
               else " You can close this tab now."))
        if return_url:  # the platform's screened-out link: the participant can be paid or released
            st.link_button("Return to the study platform", return_url, type="primary")


def consent_page(store: StudyStore, token: str | None, external_id: str | None = None) -> None:
    """Instructions and consent; the participant is created only when they agree."""
    s = store.settings
    with _centered():
        st.title(s.title)
        st.markdown(
            f"You will see **{_total_trials(store)} pictures** of anime-style faces, one at a time. "
            "Some were drawn by people; the others were **generated by a computer program**.\n\n"
            "For each picture, decide whether it is **Real** (drawn by a person) or **Fake** "
            "(generated). "
            + ("Each picture is shown **only for a moment** (between a tenth of a second and one "
               "second) and then covered; answer once it is covered. The time adapts to your answers, "
               "so some pictures are hard to catch: that is expected. " if s.protocol == "hype-time" else
               "Go with your impression: there is no time limit, and most people take a few seconds. ")
            + "You can also say how sure you are and, for pictures you think are fake, what gave it away."
            + (" A few pictures are easy checks that you are paying attention." if s.attention else ""))
        if s.qualification:
            st.markdown(
                f"The first **{s.qualification} pictures are a warm-up**: to go on to the main part, "
                f"at least {QUALIFICATION_THRESHOLD:.0%} of the real and of the fake warm-up pictures "
                "need the right answer.")
        st.markdown(
            "**Your data.** We store your answers, confidence and reasons, and how long each answer "
            "took, under a random code: no name, e-mail or IP address. Taking part is voluntary and "
            "you can stop at any time. Your code is kept in the page address and in a cookie of this "
            "site, so reloading the page, going back or opening the study link again continues "
            "where you left off.")
        with st.form("consent", border=True):
            agreed = st.checkbox("I have read the above and agree to take part.")
            # on the left: the answer buttons sit on the right, so a double click on Start
            # can never land on Real or Fake, whatever the window's height
            start = st.columns([2, 3])[0].form_submit_button("Start", type="primary", width="stretch")
        if not start:
            return
        if not agreed:
            st.warning("Please tick the box to agree before starting.")
            return
        try:
            if token is None:
                token = store.start_participant("human", external_id=external_id)
                # remembered before anything else, so even an interrupted run resumes this participant
                remember_participant(token)
            store.give_consent(token)
        except StudyClosed:
            st.rerun()
        except StudyFull:
            st.session_state["_full"] = True
        st.rerun()


def _record(store: StudyStore, token: str, trial_id: int, answer: str, confidence: int | None,
            ticked: list[str], other_text: str, timing=None, exposure: int | None = None) -> None:
    """Save one answer. An answer already saved (double click, second tab) is not saved twice:
    the store returns False, and the participant simply moves on to their current trial."""
    reasons: list[str] = []
    other: str | None = None
    if answer == "fake":
        other = other_text.strip() or None
        reasons = [r for r in REASONS if r in ticked or (r == "other" and other)]
    try:
        saved = store.record(token, trial_id, answer, confidence=confidence, reasons=reasons, other_text=other,
                             client=timing, exposure_ms=exposure)
    except BadInput as err:  # a stale trial from another tab: nothing to save, move on
        log.info("answer not saved: %s", err)
        saved = False
    if not saved:
        log.info("trial %s of %s was already answered; moving on", trial_id, token[:6])


def trial_page(store: StudyStore, token: str, state: ParticipantState) -> None:
    s = store.settings
    trial = store.current_trial(token)  # also records when it was first shown (server time)
    if trial is None:
        # the status moved on between reads (e.g. the last answer came from another tab)
        state = store.state(token)
        if state is not None and state.status == "done":
            thank_you_page(s.completion_url)
        elif state is not None and state.status == "failed":
            failed_page(store.settings.screened_out_url)
        else:
            st.error("Something went wrong loading the next picture; please reload the page.")
        return
    seen = _first_seen(trial.trial_id)
    done = trial.number - 1
    if trial.phase == "qualification":
        label = f"Warm-up · picture {trial.number} of {state.qualification_total}"
        fraction = done / max(1, state.qualification_total)
    else:
        main_total = trial.total - state.qualification_total
        main_number = trial.number - state.qualification_total
        label = f"Picture {main_number} of {main_total}"
        fraction = (main_number - 1) / max(1, main_total)
    st.markdown(f"#### {s.title}")
    st.progress(min(1.0, max(0.0, fraction)), text=label)
    if trial.phase != "qualification" and state.qualification_total and main_number == 1:
        st.success("Warm-up complete: thank you! The main part starts now.")

    # Enter in the text box does not submit: only the Real and Fake buttons give an answer. The
    # form is not cleared on submit (each trial has its own form), so a refused click keeps it.
    # Question, confidence and reasons come before the buttons, so on a phone (one column) a
    # person reads what they answer before reaching Real and Fake.
    tid = trial.trial_id
    exposure = store.exposure_for(token, trial.phase)  # HYPE-time: shown this long, then masked
    try:
        png = display.display_png(store.image_path(trial.image_id), s.display_size, s.upscaler)
    except (BadInput, OSError, CorruptImage) as err:  # a lost or unreadable file: never shown broken
        _BROKEN_IMAGES.add(trial.image_id)
        new = store.replace_trial_image(token, tid, sorted(_BROKEN_IMAGES))
        if new is None:
            raise GanevalError(f"image {trial.image_id} cannot be shown ({err}) and no other image of its "
                               "class is left") from err
        log.error("image %s cannot be shown (%s); trial %s now shows %s, of the same class",
                  trial.image_id, err, tid, new)
        st.rerun()
    with st.form(f"trial-{tid}", enter_to_submit=False, border=False):
        left, right = st.columns([5, 4], gap="large")
        with left:
            st.image(png, width="content", output_format="PNG")  # never JPEG: its artefacts would bias answers
        with right:
            st.markdown("**Drawn by a person, or generated?** Answer **Real** if you think a person drew this "
                        "face, **Fake** if a computer program generated it. Confidence and reasons are optional; "
                        "give them before you press Real or Fake.")
            confidence = st.radio(
                "How sure are you? (optional)", options=list(range(CONFIDENCE_MIN, CONFIDENCE_MAX + 1)),
                format_func=lambda c: CONFIDENCE_LABELS.get(c, str(c)), index=None, horizontal=True,
                key=f"confidence-{tid}")
            with st.expander("If you answer Fake: what gave it away? (optional)"):
                ticked = [code for code in REASONS if st.checkbox(REASON_LABELS[code], key=f"reason-{code}-{tid}")]
                other_text = st.text_input("Other reason", max_chars=300, placeholder="Describe it briefly",
                                           label_visibility="collapsed", key=f"other-{tid}")
            client = st.text_input("timing", label_visibility="collapsed", key=f"client-{tid}",  # hidden
                                   placeholder=f"exposure={'none' if exposure is None else exposure}")
            col_real, col_fake = st.columns(2)
            real = col_real.form_submit_button("Real", width="stretch", key=f"answer-real-{tid}")
            fake = col_fake.form_submit_button("Fake", width="stretch", key=f"answer-fake-{tid}")
            too_soon = st.empty()
    if not (real or fake):
        return
    timing = parse_client_timing(client)
    on_screen_ms = timing.rt_ms if timing else (time.monotonic() - seen) * 1000  # no script: the server's clock
    if on_screen_ms < min_display_ms():
        log.info("refused an answer %.0f ms after trial %s appeared (double click?)", on_screen_ms, tid)
        too_soon.warning("That was very quick: please look at the picture, then press Real or Fake again.")
        return
    try:
        _record(store, token, tid, "real" if real else "fake", confidence, ticked, other_text, timing, exposure)
    except StudyClosed:
        pass  # the closed page comes on the rerun
    st.rerun()


def _invalid_link(why: str) -> None:
    with _centered():
        st.warning(f"This study link is not valid ({why}). Please open the link you were given again.")
    st.stop()


def external_id_from_link(store: StudyStore) -> str | None:
    """The participant id from the entry link (a platform's, or ``pid`` of a personal link), if
    any. An id that is too long or holds control characters (a NUL breaks PostgreSQL) gets a
    friendly page; so does one without its signature when the study uses --signed-links."""
    secret = store.settings.link_secret
    for param in (LINK_ID_PARAM, *EXTERNAL_ID_PARAMS):
        value = st.query_params.get(param)
        if value and value.strip():
            try:
                external_id = check_external_id(value)
            except BadInput:
                _invalid_link("the participant id in it cannot be used")
            if secret and not link_is_signed(secret, external_id, st.query_params.get(LINK_SIG_PARAM)):
                log.warning("refused an entry link whose signature does not match its participant id")
                _invalid_link("it is not the personal link made for this participant")
            return external_id
    return None


def remember_participant(token: str) -> None:
    """The token in the page address and in a cookie (set by the page itself: Streamlit cannot
    send headers), so that Back to the plain link, a new tab or the link opened again later
    finds the same participant. Written on every page of a known participant: cheap, and it
    survives a run that was cut short."""
    st.session_state["_token"] = token
    if st.query_params.get(TOKEN_PARAM) != token:
        st.query_params[TOKEN_PARAM] = token
    st.html(f'<script>document.cookie = "{TOKEN_COOKIE}={token}; Path=/; Max-Age={TOKEN_COOKIE_MAX_AGE_S}; '
            'SameSite=Lax";</script>', unsafe_allow_javascript=True)


def remembered_participant(store: StudyStore) -> str | None:
    """This browser's participant: from the Streamlit session (which Back stays in), else from the
    cookie (a reload, a new tab, the plain link again); None when the study knows neither."""
    for token in (st.session_state.get("_token"), st.context.cookies.get(TOKEN_COOKIE)):
        if token and store.state(token) is not None:
            return token
    return None


def participant_view(store: StudyStore) -> None:
    token = st.query_params.get(TOKEN_PARAM) or None
    external_id = external_id_from_link(store)
    if token is None and external_id is not None:
        # one person, one participant: a known platform id comes back to its own participant
        token = store.participant_for(external_id)
    elif token is None:
        token = remembered_participant(store)
        if token is None and store.settings.link_secret:  # --signed-links: nobody takes part without one
            with _centered():
                st.info("This study is by invitation: please open the personal link you were given.")
            return
    state = store.state(token) if token else None
    if token and state is None:
        del st.query_params[TOKEN_PARAM]
        token = None
        st.info("This link is not known to the study; you can start afresh below.")
    if token is not None:
        remember_participant(token)
    if state is not None and state.status == "done":
        thank_you_page(store.settings.completion_url)
    elif state is not None and state.status == "failed":
        failed_page(store.settings.screened_out_url)
    elif not store.is_open:
        closed_page(started=state is not None and state.status != "consent")
    elif state is None and st.session_state.get("_full"):
        full_page()
    elif state is None or state.status == "consent":
        consent_page(store, token, external_id)
    elif not store.keep_place(token):
        full_page(store.settings.screened_out_url, came_back=True)
    else:
        trial_page(store, token, state)


# ----------------------------------------------------------------------------- admin

def _admin_password() -> str | None:
    password = os.environ.get(ADMIN_PASSWORD_ENV)
    if password:
        return password
    try:
        password = st.secrets.get("admin_password")
    except Exception:  # no secrets.toml at all
        return None
    return str(password) if password else None


def client_address() -> str | None:
    """The browser's address as the server's socket saw it, for the admin lockout. Headers such
    as X-Forwarded-For are not read: a guesser could name the admin's address in them and get it
    locked out. None on localhost (and wherever Streamlit knows no address)."""
    address = st.context.ip_address
    return address if isinstance(address, str) else None


def admin_view(store: StudyStore) -> None:
    st.title(f"Admin · {store.settings.title}")
    password = _admin_password()
    if password is None or len(password) < MIN_ADMIN_PASSWORD:
        st.warning(f"The admin page is disabled: set {ADMIN_PASSWORD_ENV} (or `admin_password` in "
                   f"Streamlit secrets), at least {MIN_ADMIN_PASSWORD} characters, before starting the study.")
        return
    session = st.query_params.get(SESSION_PARAM)
    if not store.admin_session_valid(session):
        if session:
            del st.query_params[SESSION_PARAM]
        with st.form("admin-login"):
            given = st.text_input("Password", type="password")
            submitted = st.form_submit_button("Log in", type="primary")
        if submitted:
            outcome, session = store.admin_login(given, password, client_address())
            if outcome == "ok":
                # a random session token (only its hash is stored, it expires): a reload stays
                # logged in, and the password never goes into the URL
                st.query_params[SESSION_PARAM] = session
                st.rerun()
            time.sleep(WRONG_PASSWORD_DELAY_S)  # slows down guessing
            if outcome == "locked":
                st.error("Too many failed logins: the admin login is locked for a while. Try again in 10 minutes.")
            else:
                st.error("Wrong password.")
        return

    top = st.columns([3, 1])
    with top[1]:
        if st.button("Log out"):
            store.admin_logout(session)
            del st.query_params[SESSION_PARAM]
            st.rerun()
    admin_live(store)


@st.fragment(run_every=ADMIN_REFRESH_S)
def admin_live(store: StudyStore) -> None:
    """The admin's figures, re-read from the database every few seconds."""
    is_open = store.is_open
    participants = store.participants_progress()
    images = store.images_progress()
    frame = store.export_frame()
    main = frame[frame["phase"] == "main"]
    top = st.columns([1, 1, 1, 1, 1, 2])
    top[0].metric("Study", "open" if is_open else "closed")
    top[1].metric("Participants", len(participants))
    top[2].metric("Judgments", len(frame))
    top[3].metric("Accuracy (main)", f"{main['correct'].mean():.1%}" if len(main) else "–")
    # HYPE∞: the share of main-trial judgments that were wrong (people fooled)
    top[4].metric("HYPE∞ so far", f"{1 - main['correct'].mean():.1%}" if len(main) else "–")
    with top[5]:
        if is_open:
            if st.button("Close the study", type="primary"):
                store.set_open(False)
                st.rerun()
        else:
            if st.button("Reopen the study", type="primary"):
                store.set_open(True)
                st.rerun()
        st.download_button("Download responses (CSV)", data=csv_bytes(frame),
                           file_name="responses.csv", mime="text/csv")
    st.caption(f"Display: {display.upscaler_status(store.settings.upscaler)}, "
               f"{store.settings.display_size} px · {len(images)} images · updated {time.strftime('%H:%M:%S')}")
    st.subheader("Participants")
    st.dataframe(participants, hide_index=True, width="stretch")
    st.subheader("Images")
    st.dataframe(images, hide_index=True, width="stretch")


# ----------------------------------------------------------------------------- entry

def main() -> None:
    store, problem = _store()
    title = store.settings.title if store is not None else "Study"
    st.set_page_config(page_title=title, layout="wide", initial_sidebar_state="collapsed")
    st.markdown(STYLE, unsafe_allow_html=True)
    st.html(OFFLINE_SCRIPT, unsafe_allow_javascript=True)
    st.html(TIMING_SCRIPT.replace("__MIN_DISPLAY_MS__", str(min_display_ms())), unsafe_allow_javascript=True)
    if store is None:
        st.error(problem)
        return
    try:
        if st.query_params.get(ADMIN_PARAM):
            admin_view(store)
        else:
            participant_view(store)
    except SQLAlchemyError as err:  # database unreachable or broken: no traceback for participants
        log.error("study database error: %s: %s", type(err).__name__, str(err).splitlines()[0] if str(err) else "")
        st.error("The study is unavailable for a moment. Your answers so far are saved; "
                 "please reload the page in a little while.")
    except Exception:  # noqa: BLE001 - anything else: one friendly line here, the traceback in the server log
        something_went_wrong(store)


def something_went_wrong(store: StudyStore) -> None:
    """What a participant sees when the app fails: one line, a reference the operator can find in
    the server log (which holds the traceback), and the way back to the platform when there is one.
    Streamlit's own rerun/stop signals are BaseExceptions and never arrive here."""
    request = secrets.token_hex(4)
    log.exception("study app error (request %s)", request)
    st.error(f"Something went wrong on our side; your answers so far are saved. (reference {request})")
    url = getattr(store.settings, "completion_url", None)
    if url and not st.query_params.get(ADMIN_PARAM):
        st.link_button("Return to the study platform", url)


if __name__ == "__main__":  # `streamlit run` of this file; `ganeval study run` runs the launch.py launcher
    main()
