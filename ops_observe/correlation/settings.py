"""Settings of the correlation-ID middleware."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ops_observe.schema import between, setting

_HEADER = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


def header_name(value: str) -> None:
    if not _HEADER.fullmatch(value):
        raise ValueError("must be an HTTP header name (letters, digits and '-')")


def header_names(values: tuple[str, ...]) -> None:
    for value in values:
        header_name(value)


@dataclass(frozen=True)
class CorrelationSettings:
    """``[ops_observe.correlation]``: where the request's correlation ID comes from and goes to."""

    header: str = setting(
        "X-Correlation-ID", doc="Header read from the request and set on the response.", check=header_name
    )
    accept_headers: tuple[str, ...] = setting(
        ("X-Request-ID",),
        doc="Further request headers whose valid value is kept when `header` is absent.",
        check=header_names,
    )
    max_length: int = setting(
        128, doc="Longest incoming ID kept; longer ones are replaced by a fresh ID.", check=between(1, 1024)
    )
