"""Masking of secrets wherever settings, check options or errors are shown."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ops_observe.secrets import is_secret_key

__all__ = ["MASK", "is_secret_key", "mask_secrets", "mask_url"]

MASK = "****"

# Which key names hold secrets is decided by ops_observe.secrets (shared with the log redaction);
# what is here is the masking of values: the passwords written inside URLs and DSNs.

# The password of a URL or DSN: scheme://user:PASSWORD@host
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/@:\s]*:)(?P<password>[^@\s]*)(?P<tail>@)")
# password=... inside a libpq key/value DSN ("host=db password=s3cret")
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<password>'[^']*'|\S+)", re.I)


def mask_url(text: str) -> str:
    """Hide the passwords of URLs and DSNs inside ``text``, keeping everything else readable."""
    if "@" in text:
        text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK + m["tail"], text)
    if "=" in text:
        text = _KV_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    return text


def mask_secrets(options: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``options`` with secret-named values hidden and URL passwords masked, recursively."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if is_secret_key(str(key)) and value not in (None, ""):
            out[key] = MASK
        elif isinstance(value, Mapping):
            out[key] = mask_secrets(value)
        elif isinstance(value, str):
            out[key] = mask_url(value)
        else:
            out[key] = value
    return out
