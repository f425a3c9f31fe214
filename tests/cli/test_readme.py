"""README, docs, --help and behaviour agree: every `ganeval …` line of README.md and docs/*.md
parses with the real parser, and every default they state is the parser's default."""
from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from ganeval.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _code_lines() -> list[str]:
    """Command lines in the pages' bash blocks, continuations joined, comments dropped."""
    lines, fence, pending = [], None, ""
    for raw in (line for page in PAGES for line in page.read_text().splitlines()):
        if raw.startswith("```"):  # a fence opens a block (of any language) or closes the open one
            fence = None if fence else raw.strip()
            continue
        if fence not in ("```bash", "```sh", "```console"):  # (a bare ``` block is a diagram)
            continue
        text = pending + raw.strip()
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        pending = ""
        lines.append(text)
    return lines


def _ganeval_argv(line: str) -> list[list[str]] | None:
    """The argv (or argvs, for [optional] parts: with and without) a README line runs."""
    code = re.split(r"\s#\s|\s#$", " " + line + " ", maxsplit=1)[0].strip()
    variants = []
    for text in (re.sub(r"\[[^\[\]]*\]", " ", code), re.sub(r"\[([^\[\]]*)\]", r" \1 ", code)):
        words = shlex.split(text)
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):  # VAR=value prefixes
            words = words[1:]
        if words[:1] == ["ganeval"]:
            variants.append(words[1:])
        elif words[:1] == ["torchrun"] and "-m" in words and words[words.index("-m") + 1:][:1] == ["ganeval"]:
            variants.append(words[words.index("-m") + 2:])
        elif words[:3] == ["python", "-m", "ganeval"]:
            variants.append(words[3:])
    return variants or None


def _commands() -> list[tuple[str, list[str]]]:
    out = []
    for line in _code_lines():
        argvs = _ganeval_argv(line)
        for argv in argvs or []:
            out.append((line, argv))
    return out


COMMANDS = _commands()


def test_the_readme_has_commands_to_check():
    assert len(COMMANDS) >= 40


@pytest.mark.parametrize("line,argv", COMMANDS, ids=[" ".join(a)[:60] for _, a in COMMANDS])
def test_every_readme_command_parses(line, argv):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse's way of saying no
        pytest.fail(f"README line does not parse ({exc.code}): {line}")
    assert getattr(args, "func", None) is not None or "--help" in argv or "--version" in argv, line


def _subparser(parser: argparse.ArgumentParser, path: list[str]) -> argparse.ArgumentParser:
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def _documented_defaults() -> list[tuple[list[str], str, str]]:
    """(subcommand path, flag, value) for sentences "`--flag` … (default V)" under a
    "## `ganeval CMD …`" heading of README.md or docs/*.md."""
    found = []
    pattern = re.compile(r"`(--[a-z0-9-]+)`[^`.;]{0,40}?[(,]\s*default:?\s+`?(\d[\d,_]*\d|[^`),;\s]+)`?")
    for line in (line for page in PAGES for line in [None, *page.read_text().splitlines()]):
        if line is None:  # a new page: no command heading yet
            command = None
            continue
        heading = re.match(r"#+ `ganeval ([a-z-]+)(?: ([a-z-]+))?", line)
        if heading:
            command = [heading.group(1)]
            continue
        if line.startswith("#"):
            command = None if re.match(r"#{1,2} ", line) else command
        if command is None:
            continue
        for flag, value in pattern.findall(line):
            found.append((command, flag, value.replace(",", "").replace("_", "") if value[0].isdigit() else value))
    return found


DEFAULTS = _documented_defaults()


def test_documented_defaults_are_found():
    assert DEFAULTS, "the README states defaults (e.g. --candidates); the pattern should find them"


@pytest.mark.parametrize("command,flag,value", DEFAULTS, ids=[f"{c[0]} {f}" for c, f, _ in DEFAULTS])
def test_documented_default_is_the_parsers(command, flag, value):
    parser = _subparser(build_parser(), command)
    parsers = [parser] + [p for a in parser._actions if isinstance(a, argparse._SubParsersAction)
                          for p in a.choices.values()]  # `ganeval study run --abandon-after` …
    action = next((a for p in parsers for a in p._actions if flag in a.option_strings), None)
    assert action is not None, f"README documents {flag} for ganeval {' '.join(command)}, which has no such flag"
    default = action.default
    assert str(default) == value or (isinstance(default, float) and float(value) == default), (
        f"README says {flag} defaults to {value}; the parser says {default!r}")


def test_every_argument_has_help():
    """`--help` explains every flag and positional of every command (issue 12: study
    status/export/close/open listed STUDY_DIR, --db-url and --json without a word)."""
    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, path + [name])
            elif not isinstance(action, argparse._HelpAction) and action.help != argparse.SUPPRESS:
                yield path, action

    missing = [f"ganeval {' '.join(path)} {'/'.join(a.option_strings) or a.dest}"
               for path, a in walk(build_parser(), []) if not (a.help or "").strip()]
    assert not missing, missing
