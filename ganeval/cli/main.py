"""The ``ganeval`` command: dispatches to one module per subcommand.

Every subcommand module exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a handler taking the parsed args and returning an exit code. Errors become one
line on stderr: exit 2 for bad usage or input, 1 for runtime failures, 130 on Ctrl-C."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from ganeval import __version__
from ganeval.errors import GanevalError

# subcommand modules, in the order `ganeval --help` lists them
COMMANDS = (
    "ganeval.cli.fid",
    "ganeval.cli.synth",
    "ganeval.cli.weights",
    "ganeval.cli.nearest",
    "ganeval.cli.gan",
    "ganeval.cli.stylegan",
    "ganeval.cli.inspect",
    "ganeval.cli.upscale",
    "ganeval.cli.translate",
    "ganeval.cli.study",
    "ganeval.cli.report",
    "ganeval.cli.demo",
)


EPILOG = """outputs:
  A command never writes onto or inside its inputs, and refuses an existing output file or
  a non-empty output folder unless --overwrite, which replaces only what that command wrote
  there earlier (listed in the folder's .ganeval-outputs.json). These checks run before any
  work. Interrupted sample/upscale/translate runs keep only complete files, say how many,
  and continue with --resume.

exit codes:
  0    success
  1    runtime error (one line on stderr; GANEVAL_DEBUG=1 adds the traceback)
  2    bad usage or bad input (including a refused output), before any work
  130  interrupted (Ctrl-C); 143 terminated (SIGTERM)

Run `ganeval COMMAND --help` for a command's options and examples."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ganeval",
        description="Train, sample and measure anime-face GANs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ganeval {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # command not written yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except GanevalError as err:
        print(f"ganeval {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as err:  # ganeval.outputs.Interrupted says what was written
        print(f"ganeval {args.command}: {err or 'interrupted'}", file=sys.stderr)
        return getattr(err, "exit_code", 130)
    except Exception as err:  # noqa: BLE001 - last resort: one line, not a traceback
        if os.environ.get("GANEVAL_DEBUG") == "1":
            traceback.print_exc()
        print(f"ganeval {args.command}: error: {type(err).__name__}: {err} "
              "(set GANEVAL_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
