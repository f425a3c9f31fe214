"""The one output policy every command follows, so no command damages what a user owns.

A command refuses (``OutputRefused``, exit 2, one line naming the path and the flag that
allows it), before any work starts, to write
  (a) onto or inside any of its inputs, or onto a folder that holds an input: never allowed;
  (b) onto an existing file: allowed with ``--overwrite``;
  (c) into a non-empty folder it did not create: allowed with ``--overwrite``, and then only
      the files this command wrote there before (recorded in the folder's manifest) are
      replaced; a user's file is never touched.

Output folders record the files a command wrote in ``MANIFEST`` so that a later run with
``--overwrite`` removes its own stale outputs (and nothing else), a run with ``--resume``
continues an interrupted one (same settings, complete files kept), and ``ganeval demo`` can
recognise an earlier demo folder. Files are written atomically (``ganeval.atomic``), so a
file that exists is complete; an interrupted command raises ``Interrupted`` saying how many
files it wrote."""
from __future__ import annotations

import fnmatch
import json
import os
import signal
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ganeval.errors import BadInput

MANIFEST = ".ganeval-outputs.json"
OVERWRITE_FLAG = "--overwrite"
RESUME_FLAG = "--resume"
MANIFEST_SAVE_SECONDS = 2.0  # a manifest of 50k names is rewritten at most this often while writing

PathLike = str | os.PathLike


class OutputRefused(BadInput):
    """Writing there would damage an input or a user's file (exit 2)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (exit 130) or SIGTERM (exit 143) during a command; the message says what was
    written and how to continue. A KeyboardInterrupt, so code that cleans up on Ctrl-C
    cleans up on it too."""

    def __init__(self, message: str = "", exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into ``Interrupted(exit_code=143)`` for the block (main thread only), so a
    killed job stops like a Ctrl-C'd one: finally blocks run, the manifest is saved."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Interrupted("terminated", exit_code=128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted(err: KeyboardInterrupt, message: str) -> Interrupted:
    """The ``Interrupted`` to raise for ``err`` (a Ctrl-C or an earlier ``Interrupted``)."""
    return Interrupted(message, getattr(err, "exit_code", 130))


def _real(path: PathLike) -> Path:
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def _is_within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_not_special(output: PathLike, flag: str = "-o") -> None:
    """Refuse an existing output that is neither a regular file nor a folder (a device node such
    as /dev/null, a FIFO, a socket), also behind a symlink: replacing one with a regular file
    would damage the system, and ``--overwrite`` does not change that."""
    try:
        mode = os.stat(os.path.expanduser(os.fspath(output))).st_mode
    except (OSError, ValueError):
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = ("a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise OutputRefused(f"refusing to write {output} ({flag}): it is {kind}, not a regular file or folder")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_not_input(output: PathLike, inputs: Iterable[PathLike | None], flag: str = "-o") -> Path:
    """Refuse an output that is an input (also a hard link to it), lies inside an input folder,
    or contains an input; and an existing output that is not a regular file or folder."""
    check_not_special(output, flag)
    out = _real(output)
    for given in inputs:
        if given is None:
            continue
        inp = _real(given)
        if out != inp and out.is_file() and _same_file(out, inp):
            raise OutputRefused(f"refusing to write {output} ({flag}): it is the same file as the input {given}")
        if _is_within(out, inp):
            what = "is" if out == inp else "is inside"
            raise OutputRefused(f"refusing to write {output} ({flag}): it {what} the input {given}")
        if _is_within(inp, out) and (out.is_dir() or not out.exists()):
            raise OutputRefused(f"refusing to write {output} ({flag}): it holds the input {given}")
    return out


def checkpoint_input(path: PathLike | None, name: str = "checkpoint.pt") -> PathLike | None:
    """A run folder given as a checkpoint stands for its checkpoint file: that file is the
    input, so outputs may go beside it (``-o RUN/samples/``)."""
    if path is not None and Path(path).is_dir() and (Path(path) / name).is_file():
        return Path(path) / name
    return path


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


def check_output_files(outputs: Sequence[PathLike], inputs: Iterable[PathLike | None] = (), overwrite: bool = False,
                       flag: str = "-o") -> list[Path]:
    """``check_output_file`` for each of several outputs of one command, which must differ."""
    inputs = list(inputs)
    if len({_real(p) for p in outputs}) < len(outputs):
        raise OutputRefused(f"{flag} names the same file twice")
    return [check_output_file(p, inputs, overwrite, flag) for p in outputs]


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
    settings: dict[str, Any] | None = None
    resumed: bool = False
    _pending: list[str] = field(default_factory=list)  # stale outputs to remove when opened
    _opened: bool = True
    _saved_at: float = 0.0
    _dirty: bool = False
    _recorded: set[str] = field(default_factory=set)  # ``files`` as a set: 50k names stay O(1) to look up
    others: dict[str, list[str]] = field(default_factory=dict)  # other commands' records in this folder

    def __post_init__(self) -> None:
        self._recorded = set(self.files)

    def open(self, remove_stale: bool = True) -> "OutputDir":
        """Create the folder, remove the stale outputs of an earlier run, write the manifest
        (done by ``prepare_output_dir`` unless ``defer``; then by the first ``claim``).
        ``remove_stale=False``: the caller has already replaced them itself."""
        if self._opened:
            return self
        self.path.mkdir(parents=True, exist_ok=True)
        for rel in self._pending if remove_stale else ():  # stale outputs of an earlier run, and only those
            target = self.path / rel
            if _is_within(_real(target), _real(self.path)) and (target.is_file() or target.is_symlink()):
                target.unlink()
        _prune_empty_dirs(self.path, {str(Path(rel).parent) for rel in self._pending})
        self._pending = []
        self._opened = True
        self.save()
        return self

    def claim(self, name: str) -> Path:
        """The path for an output file; refuses a name that belongs to someone else."""
        rel = Path(name).as_posix()
        if rel in self._foreign:
            raise OutputRefused(f"refusing to replace {self.path / rel}: this command did not write it")
        self.open()
        return self.path / rel

    def done(self, name: str) -> bool:
        """On ``--resume``: ``name`` is an output of the interrupted run (complete, since
        writes are atomic), now recorded; it need not be written again."""
        rel = Path(name).as_posix()
        if not (self.path / rel).is_file():
            return False
        if rel in self._recorded:
            return True
        if self.resumed and rel in self._foreign:  # written after the last manifest save (killed hard)
            self._foreign.discard(rel)
            self.record(rel, save=False)
            return True
        return False

    def record(self, *names: str | Path, save: bool = True) -> None:
        """Add written files to the manifest; ``save=False`` saves at most every
        MANIFEST_SAVE_SECONDS (call ``save()`` at the end, also on errors)."""
        for name in names:
            rel = Path(name).relative_to(self.path).as_posix() if Path(name).is_absolute() else Path(name).as_posix()
            if rel not in self._recorded:
                self.files.append(rel)
                self._recorded.add(rel)
                self._dirty = True
        if save or time.monotonic() - self._saved_at >= MANIFEST_SAVE_SECONDS:
            self.save()

    def record_new(self) -> list[str]:
        """Record every file now in the folder that was not there (as someone else's) before:
        for library code that writes its outputs by name rather than through ``claim``."""
        if not self.path.is_dir():
            return []
        new = [rel for rel in sorted(_listing(self.path)) if rel not in self._foreign and rel not in self._recorded]
        self.record(*new)
        return new

    def save(self) -> None:
        if not self._opened:
            return
        self._write_manifest()
        self._saved_at = time.monotonic()
        self._dirty = False

    def _write_manifest(self) -> None:
        from ganeval import atomic

        data: dict[str, Any] = {"command": self.command, "files": self.files}
        if self.settings is not None:
            data["settings"] = self.settings
        others = {name: [f for f in files if (self.path / f).is_file()] for name, files in self.others.items()}
        if any(others.values()):
            data["others"] = {name: files for name, files in others.items() if files}
        atomic.write_text(self.path / MANIFEST, json.dumps(data, indent=1))


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
                       commands: Sequence[str] | None = None, *, resume: bool = False,
                       settings: dict[str, Any] | None = None, reserve: Sequence[str] = (),
                       defer: bool = False, can_resume: bool = False) -> OutputDir:
    """Validate (and create) an output folder before the work.

    An empty or new folder is fine. A non-empty folder needs ``overwrite``; then the files
    that an earlier run of ``command`` (or one of ``commands``) recorded are removed, and
    every other file is left alone and may not be replaced. ``resume`` instead keeps the
    files of an interrupted run of ``command`` with the same ``settings`` (see
    ``OutputDir.done``). ``reserve``: glob patterns of names the command writes without
    ``claim``; a file of someone else's matching one is refused up front. ``defer``: create
    the folder and remove stale files only at the first ``claim`` (or ``open()``), so a
    command that fails while loading leaves nothing behind."""
    path = Path(output)
    inputs = list(inputs)
    if resume and overwrite:
        raise OutputRefused(f"{OVERWRITE_FLAG} and {RESUME_FLAG} exclude each other: replace the earlier "
                            "outputs or continue them")
    check_not_input(path, inputs, flag)
    if path.exists() and not path.is_dir():
        raise OutputRefused(f"{output} ({flag}) is a file; give a folder")
    _check_writable_parent(path / "x", flag)
    own_commands = set(commands or [command])
    manifest = read_manifest(path) if path.is_dir() else None
    owners = _owners(manifest)  # every command's record survives another command writing there
    ours = [f for name in sorted(own_commands) for f in owners.pop(name, [])]
    present = sorted(p for p in _listing(path)) if path.is_dir() else []
    if resume and present:
        if not manifest or manifest.get("command") not in own_commands:
            raise OutputRefused(f"{output} ({flag}): nothing to resume (no outputs of ganeval {command} there)")
        if settings is not None and manifest.get("settings") != settings:
            raise OutputRefused(f"{output} ({flag}) holds outputs of ganeval {command} with other settings "
                                f"({_settings_diff(manifest.get('settings'), settings)}); resume with the same "
                                f"settings, or pass {OVERWRITE_FLAG} to start again")
    elif present and not overwrite:
        raise OutputRefused(f"{output} ({flag}) is not empty; pass {OVERWRITE_FLAG} to replace what ganeval "
                            f"{command} wrote there{', ' + RESUME_FLAG + ' to continue it' if can_resume else ''}"
                            ", or choose another folder")
    foreign = {p for p in present if p not in ours}
    for rel in sorted(foreign):
        if any(fnmatch.fnmatch(rel, pattern) for pattern in reserve):
            raise OutputRefused(f"refusing to write into {output} ({flag}): ganeval {command} would replace "
                                f"{rel}, which it did not write; move it or choose another folder")
    if resume:
        out = OutputDir(path=path, command=command, files=[f for f in ours if (path / f).is_file()],
                        _foreign=foreign, settings=settings, resumed=bool(present), _opened=False, others=owners)
    else:
        out = OutputDir(path=path, command=command, _foreign=foreign, settings=settings,
                        _pending=ours, _opened=False, others=owners)
    return out if defer else out.open()


def _owners(manifest: dict | None) -> dict[str, list[str]]:
    """command → the files it recorded, from a manifest (its own command and the ``others``)."""
    if not manifest:
        return {}
    owners: dict[str, list[str]] = {}
    for name, files in [(manifest.get("command"), manifest["files"]), *dict(manifest.get("others") or {}).items()]:
        if isinstance(name, str) and isinstance(files, list):
            owners.setdefault(name, []).extend(f for f in files if isinstance(f, str))
    return owners


def _settings_diff(old: Any, new: dict[str, Any]) -> str:
    if not isinstance(old, dict):
        return "unknown"
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return ", ".join(f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in keys[:3])


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
