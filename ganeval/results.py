"""What the Python API returns: the same mapping ``--json`` prints, with attribute access.

A result is a ``dict`` (so ``result["fid"]`` and ``json.dumps(result)`` work as they always
did) whose keys are also attributes (``result.fid``); ``as_dict()`` is exactly the object the
command's ``--json`` prints."""
from __future__ import annotations

import json
from typing import Any


class Result(dict):
    """A command's result: its ``--json`` keys, readable as items or attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no {name!r}; keys: {', '.join(self)}") from None

    def as_dict(self) -> dict[str, Any]:
        """A plain JSON-able copy, equal to the command's ``--json`` output."""
        return json.loads(json_text(self))


def json_text(obj: Any) -> str:
    """``obj`` as the JSON every ``--json`` prints."""
    return json.dumps(obj, indent=2, default=_plain)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays, paths: what ``--json`` writes for them."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
