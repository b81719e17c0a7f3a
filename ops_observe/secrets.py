"""What is secret: the one vocabulary of secret key names, for masking and redaction alike.

API::

    from ops_observe.secrets import is_secret_key, key_words, secret_words

    is_secret_key("db_password")        # -> True
    is_secret_key("X-Auth-Token")       # -> True
    is_secret_key("input_tokens")       # -> False: whole words only, "tokens" is a count
    key_words("privateKey")             # -> ("private", "key")
    is_secret_key("otp", secret_words(["otp"]))   # extra words, as ``[ops_observe.logging.redaction] keys``

A key names a secret when, once split into words (``snake_case``, ``kebab-case``, ``camelCase``,
``HTTPAuthorization``, ``X-Auth-Token``; digits dropped, case ignored):

- one word is a secret word (:data:`SECRET_WORDS`: ``password``, ``token``, ``cookie``...) or an
  extra word;
- two adjacent words make a secret pair (:data:`SECRET_PAIRS`: ``api`` + ``key``, ``private`` +
  ``key``, ``session`` + ``id``...), or an extra word (``member number``);
- one word is such a pair or a strong word written glued, ending the word (:data:`GLUED_SUFFIXES`:
  ``dbpassword``, ``authtoken``, ``privatekey``), as lowercase settings keys are often written.

Never substrings anywhere in the key, so ``author``, ``tokenizer``, ``max_tokens``, ``keyboard``,
``passage`` and ``spin`` stay readable. :mod:`ops_observe.masking` (settings, health check options
and details) and :mod:`ops_observe.redaction` (log lines, span attributes) both decide with
:func:`is_secret_key`; the passwords inside URL and DSN values are the maskers' own business.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable
from typing import Final

__all__ = [
    "GLUED_SUFFIXES",
    "SECRET_PAIRS",
    "SECRET_WORDS",
    "is_secret_key",
    "key_words",
    "normalise_word",
    "secret_words",
]

SECRET_WORDS: Final = frozenset(
    {
        "password",
        "passwords",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "apikey",
        "authorization",
        "cookie",
        "cookies",
        "credential",
        "credentials",
        "signature",
        "jwt",
        "bearer",
        "sessionid",
        "ssn",
        "cvv",
        "cvc",
        "pin",
    }
)
"""Words that make a key's value secret, matched as whole words of the key."""

SECRET_PAIRS: Final = frozenset(
    {
        "apikey",
        "accesskey",
        "privatekey",
        "secretkey",
        "sessionid",
        "clientsecret",
        "setcookie",
        "cardnumber",
    }
)
"""Two-word names, compared with the separators taken out (``api_key``, ``api-key``, ``apiKey``)."""

GLUED_SUFFIXES: Final = (
    "password",
    "passwords",
    "passwd",
    "passphrase",
    "secret",
    "secrets",
    "token",
    "credential",
    "credentials",
    "apikey",
    "privatekey",
    "accesskey",
    "secretkey",
)
"""Words secret enough to count when glued to the end of another (``dbpassword``, ``authtoken``);
short or common words (``pin``, ``pwd``, ``key``) are not, nor is any word glued to the front."""

_NO_WORDS: Final[frozenset[str]] = frozenset()
# Word boundaries inside a key: "apiKey" -> "api_Key", "HTTPAuthorization" -> "HTTP_Authorization".
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPLIT = re.compile(r"[^a-zA-Z0-9]+")
_NUMBER = re.compile(r"\d+")
_CACHE_SIZE: Final = 8192


@functools.lru_cache(maxsize=_CACHE_SIZE)
def key_words(name: str) -> tuple[str, ...]:
    """The lowercase words of a key name, digits dropped (``"X-Auth-Token2"`` -> ``("x", "auth", "token")``);
    a word of digits only stays as it is."""
    words = (w.lower() for w in _SPLIT.split(_CAMEL.sub("_", name)) if w)
    return tuple(_NUMBER.sub("", w) or w for w in words)


def normalise_word(word: str) -> str:
    """An extra secret word as :func:`is_secret_key` compares it: ``"Member number"`` -> ``"membernumber"``."""
    return _SPLIT.sub("", word).lower()


def secret_words(extra: Iterable[str] = ()) -> frozenset[str]:
    """The normalised extra words to give :func:`is_secret_key`; blank ones are dropped."""
    return frozenset(w for w in map(normalise_word, extra) if w)


def is_secret_key(name: str, extra_words: frozenset[str] = _NO_WORDS) -> bool:
    """True when the key ``name`` says its value is a secret (see the module doc).

    ``extra_words`` (from :func:`secret_words`) are more secret words, matched like
    :data:`SECRET_WORDS` (one word, or two adjacent words glued) but never as glued suffixes.
    Verdicts are cached (bounded): key names repeat.
    """
    return _verdict(name, extra_words)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _verdict(name: str, extra_words: frozenset[str]) -> bool:
    words = key_words(name)
    for word in words:
        if word in SECRET_WORDS or word in SECRET_PAIRS or word in extra_words or word.endswith(GLUED_SUFFIXES):
            return True
    for a, b in itertools.pairwise(words):
        pair = a + b
        if pair in SECRET_PAIRS or pair in SECRET_WORDS or pair in extra_words:
            return True
    return False
