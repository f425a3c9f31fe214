"""The script `ganeval study run` hands to Streamlit.

Streamlit sends its script's absolute path to every browser (and looks for a git repository
around it), so the script it runs is a neutral two-line launcher in a fresh private folder,
never a file of the installation: nothing about the server's file system reaches participants."""
from __future__ import annotations

import tempfile
from pathlib import Path

LAUNCHER = "from ganeval.study_app.app import main\n\nmain()\n"


def write_launcher() -> Path:
    """A new ``/tmp/ganeval-study-XXXX/study.py`` that runs the app."""
    path = Path(tempfile.mkdtemp(prefix="ganeval-study-")) / "study.py"
    path.write_text(LAUNCHER)
    return path
