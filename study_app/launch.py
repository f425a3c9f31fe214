"""The script `ganeval study run` hands to Streamlit.

Streamlit sends its script's absolute path to every browser (and looks for a git repository
around it), so the script it runs is a neutral two-line launcher in a private folder, never a
file of the installation: nothing about the server's file system reaches participants. The folder
is one per user (``<tmp>/ganeval-study-<uid>``, mode 0700), written again by every run: the
server replaces the command's process and cannot remove a folder when it stops, so runs reuse
one instead of leaving one each behind."""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

LAUNCHER = "from ganeval.study_app.app import main\n\nmain()\n"


def _private_folder(root: Path) -> Path:
    """``root/ganeval-study-<uid>``, made if missing; a fresh private folder instead when that name
    is taken by something this user does not own alone (another user's folder, a link)."""
    folder = root / f"ganeval-study-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return Path(tempfile.mkdtemp(prefix="ganeval-study-", dir=root))
    info = os.lstat(folder)
    owned = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    if stat.S_ISDIR(info.st_mode) and owned and not info.st_mode & 0o077:
        return folder
    return Path(tempfile.mkdtemp(prefix="ganeval-study-", dir=root))


def write_launcher(root: str | os.PathLike | None = None) -> Path:
    """``<tmp>/ganeval-study-<uid>/study.py``, which runs the app."""
    folder = _private_folder(Path(root or tempfile.gettempdir()))
    path = folder / "study.py"
    tmp = folder / f".study.py.{os.getpid()}"
    tmp.write_text(LAUNCHER)
    os.replace(tmp, path)  # a server already running from it never reads half a file
    return path
