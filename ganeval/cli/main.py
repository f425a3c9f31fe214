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
from ganeval.extras import missing_module_message

# Subcommand modules and the commands each registers, in the order `ganeval --help` lists them.
# Only the module of the command being run is imported (its register() builds the real parser);
# the others appear as one-line stubs, so `ganeval fid` never loads faiss, scipy.stats, pandas or
# streamlit. tests/core/test_imports.py checks this table against what the modules register.
COMMANDS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("ganeval.cli.fid", (("fid", "FID, KID, IS, precision/recall/density/coverage between two image sets"),)),
    ("ganeval.cli.synth", (("synth-faces", "write synthetic anime-style faces (the built-in dataset)"),)),
    ("ganeval.cli.weights", (("weights", "convert and list pretrained weights"),)),
    ("ganeval.cli.compare", (("compare", "one metrics table for several generators or image sets; FID over training"),)),
    ("ganeval.cli.nearest", (("nearest", "nearest training images of each generated image by exact SSIM"),)),
    ("ganeval.cli.gan", (("train", "train a GAN from the model zoo on an image source"),
                         ("sample", "write generated images from a checkpoint or an NVlabs pickle"),
                         ("models", "list the model families, one line each"),
                         ("timelapse", "turn a run's sample grids into a GIF (and MP4)"),
                         ("interpolate", "animate a spherical latent walk through seeds"))),
    ("ganeval.cli.export", (("export", "write a trained StyleGAN2 or StyleGAN3 as an NVlabs network pickle"),)),
    ("ganeval.cli.stylegan", (("style-mix", "stylegan2: grid of row seeds' images with column seeds' styles"),)),
    ("ganeval.cli.inspect", (("inspect", "save each generator layer's activations for one seed, with an HTML index"),)),
    ("ganeval.cli.upscale", (("upscale", "enlarge images with bicubic, Lanczos or an SRGAN checkpoint"),
                             ("upscale-compare", "PSNR/SSIM of an SRGAN against bicubic and Lanczos"))),
    ("ganeval.cli.translate", (("translate", "translate images with a CycleGAN or U-GAT-IT checkpoint"),)),
    ("ganeval.cli.study", (("study", "human real-vs-fake study: init, run, status, close/open, export"),)),
    ("ganeval.cli.report", (("report", "statistics, plots and an executed notebook + HTML report"),)),
    ("ganeval.cli.demo", (("demo", "run the main job on built-in synthetic faces"),)),
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


def _command_in(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the top level takes no option values)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: only the named command's module is imported and registered.

    Without ``argv`` (or when the command is not in COMMANDS) every module is registered."""
    parser = _Parser(
        prog="ganeval",
        description="Train, sample and measure anime-face GANs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ganeval {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    wanted = None if argv is None else _command_in(argv)
    known = {command for _, commands in COMMANDS for command, _ in commands}
    for name, commands in COMMANDS:
        if argv is None or (wanted is not None and wanted not in known) or wanted in dict(commands):
            _register(name, sub)
        else:
            for command, help_line in commands:
                sub.add_parser(command, help=help_line, add_help=False)
    return parser


def _register(name: str, sub) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name == name:  # command not written yet
            return
        raise
    module.register(sub)


def _printable_streams() -> None:
    """File names that are not UTF-8 reach messages as surrogates: print them escaped rather
    than fail with UnicodeEncodeError (stdout redirected to a file is strict by default)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _printable_streams()
    parser = build_parser(argv)
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
        said = str(err).strip() or "interrupted before finishing; files are written whole or not at all"
        print(f"ganeval {args.command}: {said}", file=sys.stderr)
        return getattr(err, "exit_code", 130)
    except ModuleNotFoundError as err:  # an optional extra that is not installed: one line naming it
        print(f"ganeval {args.command}: error: {missing_module_message(err)}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - last resort: one line, not a traceback
        if os.environ.get("GANEVAL_DEBUG") == "1":
            traceback.print_exc()
        print(f"ganeval {args.command}: error: {type(err).__name__}: {err} "
              "(set GANEVAL_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
