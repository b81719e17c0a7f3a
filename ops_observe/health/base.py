"""The check framework: a small base class and the typed errors a check raises to fail.

A check is any class built as ``Cls(**options)`` with a ``check()`` method (``async def`` or a
plain ``def``, which runs in a thread). It raises to fail and may return a dict of details.
Subclassing :class:`HealthCheck` is optional; it gives a repr that never shows a secret.
*Model: django-health-check v4 ``base.py``.*
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ops_observe.masking import mask_secrets

__all__ = [
    "HealthCheck",
    "HealthCheckError",
    "ServiceUnavailable",
    "ServiceWarning",
    "UnexpectedResult",
]


class HealthCheckError(Exception):
    """Base of the errors a check raises on purpose; its message is shown (masked) in the answers.

    Args:
        message: What is wrong, for a human; secrets in it are masked before it is shown.
        details: Extra facts to show beside the error (e.g. ``{"free_percent": 3.2}``).
    """

    status = "fail"

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})


class ServiceUnavailable(HealthCheckError):
    """The dependency cannot be reached or refuses to work: the check fails."""


class UnexpectedResult(HealthCheckError):
    """The dependency answered, but not what a healthy one answers: the check fails."""


class ServiceWarning(HealthCheckError):
    """The dependency works but needs attention: shown as ``warn``, never fails readiness."""

    status = "warn"


class HealthCheck:
    """Optional base class of a check: subclasses implement ``check()`` and keep options as attributes.

    ``repr()`` lists the instance's attributes with secret-named ones and URL passwords masked, so
    a check can be logged or shown in a traceback without leaking its DSN or token.
    """

    # Declared without ``async`` in the type: subclasses may define either ``async def check``
    # or a plain ``def check`` (run in a thread); the runner tells the two apart.
    check: Any

    def __repr__(self) -> str:
        shown = mask_secrets({k: v for k, v in vars(self).items() if not k.startswith("_")})
        inner = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"{type(self).__name__}({inner})"
