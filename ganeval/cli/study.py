"""``ganeval study``: build, run, watch and export a human real-vs-fake study (HYPE-style).

A study lives in one folder: study.json (settings), images/ (PNG copies under opaque random
ids) and study.db (SQLite, WAL mode) unless --db-url names another database, e.g.
PostgreSQL for an online deployment. Every judgment is committed the moment it is given."""
from __future__ import annotations

import argparse
import tempfile
import os
import sys
from pathlib import Path

from ganeval.cli import study_plan
from ganeval.cli.common import HelpFormatter, emit_json, nonneg_int, positive_int, warn


EXAMPLES = """examples:
  ganeval study init my-study --real real/ --fake dcgan.npz --trials 24 --qualification 6 --attention 2
  ganeval study init my-study --real real.zip --fake a/ --label dcgan --fake b/ --label wgan-gp --trials 100
  GANEVAL_STUDY_ADMIN_PASSWORD=a-long-secret ganeval study run my-study --port 8501
  ganeval study status my-study
  ganeval study close my-study            # no new participants or answers; `open` reopens
  ganeval study export my-study -o responses.csv [--overwrite]
  ganeval study init my-study --real real-jpegs/ --fake samples/ --equalize jpeg:90   # same JPEG for all
  ganeval study audit my-study --json     # can the image files alone tell real from fake?

invited participants (links you hand out yourself):
  ganeval study init my-study --real real/ --fake gan.npz --signed-links
  ganeval study links my-study --url https://HOST --ids ids.txt -o links.csv   # or -n 50: new random ids

crowdsourcing (Prolific, MTurk):
  ganeval study init my-study --real real/ --fake gan.npz --trials 40 --qualification 6 \\
      --completion-url "https://app.prolific.com/submissions/complete?cc=CODE" --max-participants 100
  study link: https://HOST/?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}
          or: https://HOST/?workerId=...&assignmentId=...   (the same id always returns to its participant)
  ganeval study run my-study --db-url postgresql+psycopg://study@db/study --port 8501   # several servers,
  ganeval study run my-study --db-url postgresql+psycopg://study@db/study --port 8502   # one database

database:
  The default is the SQLite file STUDY_DIR/study.db (WAL mode). --db-url takes any SQLAlchemy
  URL, e.g. postgresql+psycopg://user@host:5432/study; it is stored in study.json, so give a
  password through $GANEVAL_STUDY_DB_URL instead (it overrides study.json's URL).
"""

RUN_HELP = """Starts the Streamlit app (headless) and prints the participant and admin URLs.
This command becomes the server (exec): one signal, SIGKILL included, stops it all.
Participants open the participant URL; their token in the URL lets a reload or a lost
connection resume at the same trial. The admin page (live progress, accuracy and HYPE,
close/reopen, CSV download) asks for the password in $GANEVAL_STUDY_ADMIN_PASSWORD, or
`admin_password` in Streamlit secrets (.streamlit/secrets.toml), at least 8 characters;
without one it stays locked. After 5 failed logins within 10 minutes (counted in the
database, across servers) the login is locked for 10 minutes. The admin view is the
same app at http://HOST:PORT/?admin=1; a login lasts 12 hours, reloads included."""


AUDIT_HELP = """Trains a cross-validated classifier (logistic regression, stratified 5-fold) on
statistics of the image files as served (STUDY_DIR/images) to predict real vs fake, and reports
its AUC with a 95% bootstrap interval, in two groups:
  pipeline cues   JPEG 8x8-grid blockiness, file bytes, metadata chunks, width, height, colour
                  mode: they say nothing about the generator; above AUC 0.6 a warning names the
                  strongest one (try `study init --equalize jpeg:90`)
  generator cues  sharpness (Laplacian variance), high-frequency energy, colour statistics:
                  for information, people are meant to judge these
Attention-check images are left out. `study init` runs it at the end (--no-audit skips it)."""


class _FakeAction(argparse.Action):
    """--fake SRC appends [SRC, None]; a following --label NAME fills in its label."""

    def __call__(self, parser, namespace, values, option_string=None):
        pairs = list(getattr(namespace, self.dest, None) or [])
        pairs.append([values, None])
        setattr(namespace, self.dest, pairs)


class _LabelAction(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        pairs = list(getattr(namespace, self.dest, None) or [])
        if not pairs:
            parser.error("--label names the --fake before it; give --fake SRC first")
        if pairs[-1][1] is not None:
            parser.error(f"--fake {pairs[-1][0]} has two labels ({pairs[-1][1]!r}, {values!r})")
        pairs[-1] = [pairs[-1][0], values]
        setattr(namespace, self.dest, pairs)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="human real-vs-fake study: init, run, status, close/open, export",
                       description=__doc__, epilog=EXAMPLES, formatter_class=HelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    init = actions.add_parser("init", help="build a study folder from real and fake images",
                              description="Copy images in under opaque random ids and set up the database. Each "
                                          "participant gets --trials main trials (half real, half fake, the fakes "
                                          "split evenly over the --fake sources), --qualification trials before "
                                          "them (continue at >= 65% correct on both real and fake) and --attention "
                                          "checks (scrambled images) mixed in.",
                              epilog=EXAMPLES, formatter_class=HelpFormatter)
    init.add_argument("study_dir", metavar="STUDY_DIR", help="new (or empty) folder for the study")
    init.add_argument("--real", required=True, help="real images: folder, .zip, .npy or .npz")
    init.add_argument("--fake", action=_FakeAction, required=True, dest="fakes", metavar="SRC",
                      help="generated images (repeat for several models): a folder, .zip, .npy or .npz, or a "
                           "generator (ganeval checkpoint or run folder, NVlabs .pkl, TorchScript), from which "
                           "--pool images of seeds 0, 1, … are drawn")
    init.add_argument("--label", action=_LabelAction, dest="fakes", metavar="NAME",
                      help="model label of the --fake just before it (default: that source's file stem)")
    init.add_argument("--trials", type=positive_int, default=24, help="main trials per participant")
    init.add_argument("--qualification", type=nonneg_int, default=0, help="qualification trials before them")
    init.add_argument("--attention", type=nonneg_int, default=0, help="attention checks mixed into the main trials")
    init.add_argument("--seed", type=int, default=0, help="seed of the image subsets and the assignment")
    init.add_argument("--display-size", type=positive_int, default=512, help="side in pixels images are shown at")
    init.add_argument("--upscaler", default=None, metavar="srgan:CKPT",
                      help="upscale with a model instead of Lanczos")
    init.add_argument("--pool", type=positive_int, default=200,
                      help="at most this many images per source (a seeded random subset)")
    init.add_argument("--image-size", type=positive_int, default=None,
                      help="bring every image to this square size in px (default: the smallest side among the "
                           "images, so that resolution cannot give the truth away)")
    init.add_argument("--equalize", default=None, metavar="jpeg:Q",
                      help="pass every image, real and fake, through the same resampling and JPEG encoding at "
                           "quality Q (1-95), so the reals' JPEG 8x8 grid no longer tells them apart (see `study audit`)")
    init.add_argument("--no-audit", action="store_true", help="skip the leak audit at the end of init")
    init.add_argument("--db-url", default=None, help="SQLAlchemy database URL (default: STUDY_DIR/study.db)")
    init.add_argument("--title", default=None, help="title shown to participants")
    init.add_argument("--completion-url", default=None, metavar="URL",
                      help="crowdsourcing: where participants go after the last trial (e.g. Prolific's completion "
                           "link); shown as a button and followed automatically")
    init.add_argument("--screened-out-url", default=None, metavar="URL",
                      help="crowdsourcing: where participants go who end early (failed warm-up, or their place went "
                           "to someone else after a long pause), e.g. Prolific's screened-out link with its code")
    init.add_argument("--max-participants", type=positive_int, default=None, metavar="N",
                      help="accept at most N participants (abandoned ones free their place); `run` can override")
    init.add_argument("--protocol", choices=("hype-infinity", "hype-time"), default="hype-infinity",
                      help="hype-infinity: each picture stays until answered; hype-time (Zhou et al. 2019): each "
                           "picture is shown for an exposure adapted per participant by a staircase (100-1000 ms), "
                           "then masked")
    init.add_argument("--signed-links", action="store_true",
                      help="take part only through personal links (`ganeval study links`): an id alone, or "
                           "the plain study link, cannot answer for anyone")
    init.add_argument("--json", action="store_true", help="print a summary as JSON")
    init.set_defaults(func=_init)

    audit = actions.add_parser("audit", help="leak audit: can the image files alone tell real from fake?",
                               description=AUDIT_HELP, epilog=EXAMPLES, formatter_class=HelpFormatter)
    audit.add_argument("study_dir", metavar="STUDY_DIR", help="a folder made by `ganeval study init`")
    audit.add_argument("--db-url", default=None, help="database URL (overrides study.json and $GANEVAL_STUDY_DB_URL)")
    audit.add_argument("--seed", type=int, default=0, help="seed of the CV folds and the bootstrap")
    audit.add_argument("--resamples", type=nonneg_int, default=1000, help="bootstrap resamples of the AUC interval")
    audit.add_argument("--json", action="store_true", help="print the full result as JSON")
    audit.set_defaults(func=_audit)

    run = actions.add_parser("run", help="start the Streamlit app", description=RUN_HELP,
                             epilog=EXAMPLES, formatter_class=HelpFormatter)
    run.add_argument("study_dir", metavar="STUDY_DIR", help="a folder made by `ganeval study init`")
    run.add_argument("--port", type=positive_int, default=8501, help="port to listen on")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    run.add_argument("--db-url", default=None, help="database URL (overrides study.json and $GANEVAL_STUDY_DB_URL)")
    run.add_argument("--max-participants", type=positive_int, default=None, metavar="N",
                     help="accept at most N participants (default: init's --max-participants, else no cap)")
    run.add_argument("--abandon-after", type=positive_int, default=30, metavar="MINUTES",
                     help="an unfinished participant idle this long is abandoned: their unanswered images go to "
                          "others and their place is free")
    run.add_argument("--min-display-ms", type=nonneg_int, default=None, metavar="MS",
                     help="an answer counts only after its picture has been on screen this long, timed in the "
                          "browser from the picture's first paint (a late second click of a double click is "
                          "not taken as the next picture's answer; default 300)")
    run.set_defaults(func=_run)

    export = actions.add_parser("export", help="write every judgment to a CSV file",
                                description="One row per judgment: participant, participant_kind, image_id, truth, "
                                            "model_label, phase, trial_number, answer, correct, confidence, reasons, "
                                            "reason_other, response_ms, shown_at, answered_at, external_id, "
                                            "rt_client_ms, shown_client_at.",
                                epilog=EXAMPLES, formatter_class=HelpFormatter)
    export.add_argument("study_dir", metavar="STUDY_DIR", help="a folder made by `ganeval study init`")
    export.add_argument("-o", "--output", required=True, help="CSV file to write")
    export.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    export.add_argument("--db-url", default=None, help="database URL (overrides study.json and $GANEVAL_STUDY_DB_URL)")
    export.set_defaults(func=_export)

    status = actions.add_parser("status", help="counts of participants and judgments",
                                epilog=EXAMPLES, formatter_class=HelpFormatter)
    status.add_argument("study_dir", metavar="STUDY_DIR", help="a folder made by `ganeval study init`")
    status.add_argument("--db-url", default=None, help="database URL (overrides study.json and $GANEVAL_STUDY_DB_URL)")
    status.add_argument("--json", action="store_true", help="print progress as JSON")
    status.set_defaults(func=_status)

    links = actions.add_parser("links", help="personal signed links for a study made with --signed-links",
                               epilog=EXAMPLES, formatter_class=HelpFormatter)
    links.add_argument("study_dir", metavar="STUDY_DIR", help="a folder made by `ganeval study init --signed-links`")
    links.add_argument("--url", required=True, help="the study's public address, e.g. https://study.example.org")
    who = links.add_mutually_exclusive_group(required=True)
    who.add_argument("--ids", metavar="FILE", help="a text file of participant ids, one a line")
    who.add_argument("-n", type=positive_int, metavar="N", help="N new random participant ids")
    links.add_argument("-o", "--output", required=True, help="CSV file to write (id,link)")
    links.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    links.set_defaults(func=_links)

    for name, is_open in (("close", False), ("open", True)):
        q = actions.add_parser(name, help=("stop accepting participants and answers" if not is_open else
                                           "accept participants and answers again"),
                               epilog=EXAMPLES, formatter_class=HelpFormatter)
        q.add_argument("study_dir", metavar="STUDY_DIR", help="a folder made by `ganeval study init`")
        q.add_argument("--db-url", default=None, help="database URL (overrides study.json and $GANEVAL_STUDY_DB_URL)")
        q.set_defaults(func=_set_open, is_open=is_open)

    study_plan.register(actions)


def _open(args, existing: bool = True):
    """The study's store; ``existing``: a missing or empty SQLite database is an error (status,
    export, close/open read a study, they never make one)."""
    from ganeval.study_app.store import StudyStore

    return StudyStore.open(args.study_dir, db_url=args.db_url, existing=existing)


def _check_upscaler(spec: str | None) -> None:
    """The study loads its upscaler per picture, in front of participants: load it once now, so
    an unreadable or non-SRGAN checkpoint stops ``init`` with one line instead."""
    from ganeval.study_app.build import parse_upscaler

    parsed = parse_upscaler(spec)
    if parsed:
        from ganeval.models.upscale import SRGANUpscaler

        SRGANUpscaler(parsed.partition(":")[2], "cpu")


def _init(args: argparse.Namespace) -> int:
    from ganeval.study_app.store import check_completion_url

    check_completion_url(args.completion_url)  # before any work
    check_completion_url(args.screened_out_url)
    _check_upscaler(args.upscaler)

    from ganeval.generators import is_generator_file

    with tempfile.TemporaryDirectory(prefix="ganeval-study-fakes-") as tmp:
        fakes = [_fake_images(src, args, Path(tmp)) for src, _ in args.fakes]
        # a generator's images are named after the generator, not the temporary file
        labels = [label or (Path(src).stem or Path(src).name if is_generator_file(src) else None)
                  for src, label in args.fakes]
        return _build(args, fakes, labels)


def _fake_images(src: str, args: argparse.Namespace, tmp: Path) -> str:
    """An image source stays as it is; a generator gives --pool images (seeds 0 … pool−1, the one
    sampler) in a temporary .npz that init copies in like any other source."""
    from ganeval.generators import is_generator_file, load_generator

    if not is_generator_file(src):
        return src
    import numpy as np

    from ganeval.atomic import save_npz

    G = load_generator(src, device="auto")
    images = np.concatenate([b.numpy() for b in G.sample(n=args.pool, seed=0, show_progress=True)])
    out = tmp / f"{len(list(tmp.iterdir()))}-{Path(src).stem}.npz"
    save_npz(out, images=images)
    return str(out)


def _build(args: argparse.Namespace, fakes: list[str], labels: list[str]) -> int:
    from ganeval.study_app.build import build_study
    from ganeval.study_app.store import new_link_secret, update_settings

    result = build_study(args.study_dir, args.real, fakes, labels=labels, trials=args.trials,
                         qualification=args.qualification, attention=args.attention, seed=args.seed,
                         display_size=args.display_size, upscaler=args.upscaler, db_url=args.db_url,
                         title=args.title, pool=args.pool, image_size=args.image_size, equalize=args.equalize,
                         warn=warn)
    if (args.completion_url or args.max_participants or args.screened_out_url or args.signed_links
            or args.protocol != "hype-infinity"):
        result.settings = update_settings(result.study_dir, completion_url=args.completion_url,
                                          max_participants=args.max_participants,
                                          screened_out_url=args.screened_out_url,
                                          link_secret=new_link_secret() if args.signed_links else None,
                                          protocol=args.protocol)
    s = result.settings
    leak = None if args.no_audit else _init_audit(result.study_dir, args.db_url, args.seed)
    if args.json:
        emit_json({"study_dir": str(result.study_dir), "images": result.images, "corrupt": result.corrupt,
                   "warnings": result.warnings, "database": result.db, "trials": s.trials,
                   "qualification": s.qualification, "attention": s.attention, "labels": s.labels,
                   "equalize": result.equalize, "audit": leak.to_dict() if leak else None})
    else:
        images = ", ".join(f"{n} {label}" for label, n in result.images.items())
        print(f"study created in {result.study_dir}: {images} images; each participant answers "
              f"{s.qualification} qualification + {s.trials} main + {s.attention} attention trials")
        print(f"database: {result.db}")
        if leak:
            print(leak.summary())
        print(f"next: ganeval study run {result.study_dir}")
    return 0


def _init_audit(study_dir, db_url, seed):
    """The leak audit at the end of init; its warning goes to stderr. A study too small to
    audit (fewer than 2 images of a class) is said in one line, not an error: the study exists."""
    from ganeval.errors import BadInput
    from ganeval.study_app.audit import audit_study

    try:
        leak = audit_study(study_dir, db_url=db_url, seed=seed, resamples=200)
    except BadInput as err:
        warn(f"leak audit skipped: {err}")
        return None
    if leak.warning:
        warn(leak.warning)
    return leak


def _audit(args: argparse.Namespace) -> int:
    from ganeval.study_app.audit import audit_study

    leak = audit_study(args.study_dir, db_url=args.db_url, seed=args.seed, resamples=args.resamples)
    if leak.warning:
        warn(leak.warning)
    if leak.skipped:
        warn(f"skipped {len(leak.skipped)} unreadable image file(s), e.g. {leak.skipped[0]}")
    if args.json:
        emit_json(leak.to_dict())
    else:
        print(leak.summary())
        for name, group in (("pipeline", leak.pipeline), ("generator", leak.generator)):
            print(f"  {name} cues: " + ", ".join(f"{cue} {auc:.2f}" for cue, auc in
                                                 sorted(group.cues.items(), key=lambda kv: -kv[1])))
    return 0


def _run(args: argparse.Namespace) -> int:
    from ganeval.extras import require

    require("streamlit")  # the app runs in a subprocess: say which extra is missing here, in one line
    from ganeval.study_app.store import (ABANDON_AFTER_ENV, ADMIN_PASSWORD_ENV, DB_URL_ENV, MAX_PARTICIPANTS_ENV,
                                         MIN_DISPLAY_ENV, STUDY_DIR_ENV, check_admin_password)

    password = os.environ.get(ADMIN_PASSWORD_ENV)
    if password:
        check_admin_password(password)
    store = _open(args, existing=False)  # fails early, with one line, when this is not a study or the database is unreachable
    store.dispose()
    from ganeval.study_app.launch import write_launcher

    app = write_launcher()  # nothing of the installation reaches browsers
    env = dict(os.environ)
    env[STUDY_DIR_ENV] = str(Path(args.study_dir).expanduser().resolve())
    if args.db_url:
        env[DB_URL_ENV] = args.db_url
    if args.max_participants:
        env[MAX_PARTICIPANTS_ENV] = str(args.max_participants)
    env[ABANDON_AFTER_ENV] = str(args.abandon_after * 60)
    if args.min_display_ms is not None:
        env[MIN_DISPLAY_ENV] = str(args.min_display_ms)
    cmd = [sys.executable, "-m", "streamlit", "run", str(app),
           "--server.headless", "true", "--server.address", args.host, "--server.port", str(args.port),
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
           "--client.showErrorDetails", "false"]
    _check_port_free(args.host, args.port)  # before the URLs: a clash must not look like a running study
    shown = "localhost" if args.host in ("0.0.0.0", "::") else args.host
    base = f"http://{shown}:{args.port}"
    print(f"participants: {base}/", flush=True)
    print(f"admin:        {base}/?admin=1  (password from ${ADMIN_PASSWORD_ENV} or Streamlit secrets)", flush=True)
    if not (password or _has_secrets()):
        warn(f"no admin password set (${ADMIN_PASSWORD_ENV}); the admin page stays locked")
    sys.stdout.flush()
    sys.stderr.flush()
    # the server replaces this process: one process, so any signal (SIGKILL included) stops it all
    os.execve(sys.executable, cmd, env)
    return 1  # not reached


def _check_port_free(host: str, port: int) -> None:
    import socket

    from ganeval.errors import BadInput

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            raise BadInput(f"cannot serve on {host}:{port} ({err.strerror or err}); "
                               "another program uses the port: choose one with --port") from None


def _has_secrets() -> bool:
    return any(p.is_file() for p in (Path.cwd() / ".streamlit" / "secrets.toml",
                                     Path.home() / ".streamlit" / "secrets.toml"))


def _export(args: argparse.Namespace) -> int:
    from ganeval.outputs import check_output_file
    from ganeval.study_app.export import write_csv

    check_output_file(args.output, inputs=[args.study_dir], overwrite=args.overwrite)
    with _open(args) as store:
        frame = store.export_frame()
    out = write_csv(frame, args.output)
    print(f"wrote {len(frame)} judgment(s) from {frame['participant'].nunique()} participant(s) to {out}")
    return 0


def _links(args: argparse.Namespace) -> int:
    import secrets

    import pandas as pd

    from ganeval.errors import BadInput
    from ganeval.study_app.export import write_csv
    from ganeval.outputs import check_output_file
    from ganeval.study_app.store import SETTINGS_FILE, StudySettings, personal_links

    check_output_file(args.output, inputs=[args.study_dir] + ([args.ids] if args.ids else []), overwrite=args.overwrite)
    settings = StudySettings.load(Path(args.study_dir).expanduser() / SETTINGS_FILE)
    if not settings.link_secret:
        raise BadInput(f"{args.study_dir}: made without --signed-links; anyone with the study link can take part")
    if not args.url.startswith(("http://", "https://")):
        raise BadInput(f"--url must be an http(s) address, got {args.url!r}")
    if args.ids:
        try:
            ids = [line.strip() for line in Path(args.ids).read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as err:
            raise BadInput(f"{args.ids}: cannot read participant ids ({err})") from None
        if len(set(ids)) != len(ids):
            raise BadInput(f"{args.ids}: an id is listed twice")
    else:
        ids = [secrets.token_hex(6) for _ in range(args.n)]
    write_csv(pd.DataFrame(personal_links(settings.link_secret, args.url, ids), columns=["id", "link"]), args.output)
    print(f"wrote {len(ids)} personal link(s) to {args.output}")
    return 0


def _status(args: argparse.Namespace) -> int:
    with _open(args) as store:
        counts = store.counts()
    if args.json:
        emit_json(counts)
        return 0
    print(f"study {'open' if counts['open'] else 'closed'}: {counts['participants']} participant(s) "
          f"({', '.join(f'{v} {k}' for k, v in counts['participants_by_status'].items()) or 'none'}), "
          f"{counts['judgments']} judgment(s) "
          f"({', '.join(f'{v} {k}' for k, v in counts['judgments_by_phase'].items()) or 'none'})")
    print("images: " + ", ".join(f"{v} {k}" for k, v in counts["images_by_label"].items()))
    return 0


def _set_open(args: argparse.Namespace) -> int:
    with _open(args) as store:
        store.set_open(args.is_open)
    print(f"study {'open' if args.is_open else 'closed'}: {args.study_dir}")
    return 0
