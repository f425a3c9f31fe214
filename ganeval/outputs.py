"""The one output policy every command follows, so no command damages what a user owns.

A command refuses (``OutputRefused``, exit 2, one line naming the path and the flag that
allows it), before any work starts, to write
  (a) onto or inside any of its inputs, or onto a folder that holds an input: never allowed;
  (b) onto an existing file: allowed with ``--overwrite``;
  (c) into a non-empty folder it did not create: allowed with ``--overwrite``, and then only
      the files this command wrote there before (recorded in the folder's manifest) are
      replaced; a user's file is never touched.

Output folders record the files a command wrote in ``MANIFEST`` so that a later run with
``--overwrite`` removes its own stale outputs (and nothing else) and ``ganeval demo`` can
recognise an earlier demo folder."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ganeval.errors import BadInput

MANIFEST = ".ganeval-outputs.json"
OVERWRITE_FLAG = "--overwrite"

PathLike = str | os.PathLike


class OutputRefused(BadInput):
    """Writing there would damage an input or a user's file (exit 2)."""


def _real(path: PathLike) -> Path:
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def _is_within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_not_input(output: PathLike, inputs: Iterable[PathLike | None], flag: str = "-o") -> Path:
    """Refuse an output that is an input, lies inside an input folder, or contains an input."""
    out = _real(output)
    for given in inputs:
        if given is None:
            continue
        inp = _real(given)
        if _is_within(out, inp):
            what = "is" if out == inp else "is inside"
            raise OutputRefused(f"refusing to write {output} ({flag}): it {what} the input {given}")
        if _is_within(inp, out) and (out.is_dir() or not out.exists()):
            raise OutputRefused(f"refusing to write {output} ({flag}): it holds the input {given}")
    return out


def check_output_file(output: PathLike, inputs: Iterable[PathLike | None] = (), overwrite: bool = False,
                      flag: str = "-o") -> Path:
    """Validate a file output before the work: not an input, not a folder, not an existing
    file unless ``overwrite``, in a folder that exists (or can be made) and is writable."""
    path = Path(output)
    check_not_input(path, inputs, flag)
    if path.is_dir():
        raise OutputRefused(f"{output} ({flag}) is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutputRefused(f"{output} ({flag}) already exists; pass {OVERWRITE_FLAG} to replace it")
    _check_writable_parent(path, flag)
    return path


def _check_writable_parent(path: Path, flag: str) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    existing = parent
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise OutputRefused(f"cannot write {path} ({flag}): {existing} is a file, not a folder")
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise OutputRefused(f"cannot write {path} ({flag}): {existing} is not writable")


@dataclass
class OutputDir:
    """A folder a command writes into; ``claim`` names each file before it is written and
    ``record`` adds it to the manifest once written."""

    path: Path
    command: str
    files: list[str] = field(default_factory=list)
    _foreign: set[str] = field(default_factory=set)

    def claim(self, name: str) -> Path:
        """The path for an output file; refuses a name that belongs to someone else."""
        rel = Path(name).as_posix()
        if rel in self._foreign:
            raise OutputRefused(f"refusing to replace {self.path / rel}: this command did not write it")
        return self.path / rel

    def record(self, *names: str | Path) -> None:
        for name in names:
            rel = Path(name).relative_to(self.path).as_posix() if Path(name).is_absolute() else Path(name).as_posix()
            if rel not in self.files:
                self.files.append(rel)
        self._write_manifest()

    def _write_manifest(self) -> None:
        from ganeval import atomic

        atomic.write_text(self.path / MANIFEST, json.dumps({"command": self.command, "files": self.files}, indent=1))


def read_manifest(folder: PathLike) -> dict | None:
    """The manifest of a folder a ganeval command wrote, or None."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        return None
    return data


def prepare_output_dir(output: PathLike, command: str, inputs: Iterable[PathLike | None] = (),
                       overwrite: bool = False, flag: str = "-o",
                       commands: Sequence[str] | None = None) -> OutputDir:
    """Validate (and create) an output folder before the work.

    An empty or new folder is fine. A non-empty folder needs ``overwrite``; then the files
    that an earlier run of ``command`` (or one of ``commands``) recorded are removed, and
    every other file is left alone and may not be replaced."""
    path = Path(output)
    inputs = list(inputs)
    check_not_input(path, inputs, flag)
    if path.exists() and not path.is_dir():
        raise OutputRefused(f"{output} ({flag}) is a file; give a folder")
    _check_writable_parent(path / "x", flag)
    own_commands = set(commands or [command])
    manifest = read_manifest(path) if path.is_dir() else None
    ours: list[str] = []
    if manifest and manifest.get("command") in own_commands:
        ours = [f for f in manifest["files"] if isinstance(f, str)]
    present = sorted(p for p in _listing(path)) if path.is_dir() else []
    if present and not overwrite:
        raise OutputRefused(f"{output} ({flag}) is not empty; pass {OVERWRITE_FLAG} to replace what ganeval "
                            f"{command} wrote there, or choose another folder")
    path.mkdir(parents=True, exist_ok=True)
    for rel in ours:  # stale outputs of an earlier run, and only those
        target = path / rel
        if _is_within(_real(target), _real(path)) and target.is_file():
            target.unlink()
    _prune_empty_dirs(path, {str(Path(rel).parent) for rel in ours})
    foreign = {p for p in _listing(path) if p not in ours}
    out = OutputDir(path=path, command=command, _foreign=foreign)
    out._write_manifest()
    return out


def _listing(folder: Path) -> list[str]:
    return [p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.name != MANIFEST and (p.is_file() or p.is_symlink())]


def _prune_empty_dirs(root: Path, rels: set[str]) -> None:
    for rel in sorted(rels, key=lambda r: -len(Path(r).parts)):
        d = root / rel
        while d != root and _is_within(d, root):
            try:
                d.rmdir()
            except OSError:
                break
            d = d.parent
