"""Errors and warnings raised by salesplan.

Every error says what is wrong, where, what was seen and how to fix it. They
subclass :class:`ValueError` so that code which already guards against bad
values keeps working.
"""

from __future__ import annotations

__all__ = [
    "SalesplanError",
    "SalesplanDataError",
    "SalesplanWarning",
    "SalesplanDataWarning",
]


class SalesplanError(ValueError):
    """Base class of every error salesplan raises on purpose."""


class SalesplanDataError(SalesplanError):
    """Input data that cannot be used as given (missing columns, bad values...)."""


class SalesplanWarning(UserWarning):
    """Base class of salesplan warnings: recoverable oddities, always counted."""


class SalesplanDataWarning(SalesplanWarning):
    """Rows that were dropped or repaired while loading or validating data."""
