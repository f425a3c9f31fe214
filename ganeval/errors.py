"""Errors the CLI turns into one line and an exit code (1 runtime, 2 bad usage/input)."""
from __future__ import annotations


class GanevalError(Exception):
    """A failure the user can act on; the message is shown as is."""

    exit_code = 1


class BadInput(GanevalError):
    """The user's data or arguments cannot be used (exit 2)."""

    exit_code = 2


class MissingWeights(GanevalError):
    """Pretrained weights are not available offline; the message says where to put them."""

    exit_code = 1
