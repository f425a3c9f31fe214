"""Optional dependencies: which install extra brings which package, and the one line a user
sees when a command needs one that is missing.

The base install (``pip install ganeval``) runs ``fid``, ``nearest``, ``train``, ``sample`` and
the other measuring commands. ``ganeval[study]`` adds the Streamlit study, ``ganeval[report]``
the statistics and notebook report; commands import those packages only when they run."""
from __future__ import annotations

import importlib.util

from ganeval.errors import GanevalError

# top-level module → the extra that installs it
EXTRA_OF = {
    "streamlit": "study",
    "sqlalchemy": "study",
    "psycopg": "study",
    "statsmodels": "report",
    "nbformat": "report",
    "nbclient": "report",
    "nbconvert": "report",
    "ipykernel": "report",
}


class MissingExtra(GanevalError):
    """A command needs a package from an install extra that is not installed (exit 1)."""


def install_hint(module: str) -> str | None:
    """"install ganeval[EXTRA]" for a module an extra provides, else None."""
    extra = EXTRA_OF.get(module.split(".")[0])
    return f"it needs {module.split('.')[0]}: install ganeval[{extra}] (pip install 'ganeval[{extra}]')" if extra else None


def require(*modules: str) -> None:
    """Raise ``MissingExtra`` naming the extra when any of ``modules`` is not installed; for
    commands that start a subprocess (``study run``) and would otherwise fail there."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtra(install_hint(module) or f"it needs the Python package {module}")


def missing_module_message(err: ModuleNotFoundError) -> str:
    """One line for a ``ModuleNotFoundError`` that reached the command line."""
    return install_hint(err.name or "") or f"ModuleNotFoundError: {err}"
