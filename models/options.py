"""Checking a family's ``ModelConfig.options`` against its defaults, with one-line errors.

A family's ``options`` function can be ``lambda res, given: fill_options("srgan", given,
defaults)`` plus its own range checks: unknown keys are refused, values are coerced to the
type of their default (``-O n_blocks=4`` arrives as an int, ``--light`` as a bool), and
missing keys get the default. The result is stored in checkpoints, so it must pass through
again unchanged."""
from __future__ import annotations

from typing import Any

from ganeval.errors import BadInput


def _coerce(family: str, key: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    elif kind is str:
        return str(value)
    raise BadInput(f"{family} option {key} must be {kind.__name__}, got {value!r}")


def fill_options(family: str, given: dict[str, Any], defaults: dict[str, Any],
                 non_negative: tuple[str, ...] = (), types: dict[str, type] | None = None) -> dict[str, Any]:
    """``defaults`` overridden by ``given`` (types coerced); BadInput on an unknown key or on a
    negative value of a key named in ``non_negative``. A default of None means "automatic"
    (e.g. from the resolution or batch); ``types`` names the type such a key takes when
    given, and None may be given back for it."""
    types = types or {}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise BadInput(f"{family} has no option {', '.join(unknown)}; its options: "
                       f"{', '.join(f'{k} (default {v!r})' for k, v in defaults.items())}")
    options = {}
    for key, default in defaults.items():
        value = given.get(key, default)
        if value is None and default is None:
            options[key] = None
        else:
            options[key] = _coerce(family, key, value, types.get(key, type(default)))
    for key in non_negative:
        at_least(family, options, key, 0)
    return options


def at_least(family: str, options: dict[str, Any], key: str, low: float) -> None:
    """BadInput when ``options[key]`` is below ``low`` (None, "automatic", passes)."""
    if options[key] is not None and options[key] < low:
        bound = "0 or more" if low == 0 else f"at least {low}"
        raise BadInput(f"{family} option {key} must be {bound}, got {options[key]}")
