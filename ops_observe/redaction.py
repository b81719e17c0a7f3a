"""PII and secret redaction for everything the suite emits as text: log lines, access logs, span attributes.

API::

    from ops_observe.redaction import Redactor, default_redactor, get_redactor

    r = Redactor(extra_patterns={"order": r"ORD-\\d{6}"}, extra_keys=("pin",))
    r.text("mail bob@example.com")      # -> "mail [REDACTED:email]"
    r.value({"password": "x", "to": ["bob@example.com"]})
    #   -> {"password": "[REDACTED:secret]", "to": ["[REDACTED:email]"]}
    r.is_secret_key("db_password")      # -> True ("input_tokens" -> False: whole words only)
    r.field("api_key", "abc")           # one key/value pair -> "[REDACTED:secret]"

    default_redactor                    # the built-in patterns and key names, no extras
    get_redactor(settings)              # from ``[ops_observe.logging.redaction]`` (cached per settings);
                                        # a no-op redactor when ``enabled = false``

What is replaced, each by a typed marker ``[REDACTED:<type>]``:

- ``email``: e-mail addresses;
- ``ssn``: US social security numbers written ``123-45-6789``;
- ``card``: 13 to 19 digit card numbers, spaced or dashed, *Luhn-checked* so that order numbers
  survive; ints of that size too;
- ``secret``: the value of any key whose name holds a secret word (``password``, ``passwd``, ``pwd``,
  ``secret``, ``token``, ``api_key``, ``access_key``, ``private_key``, ``authorization``, ``cookie``,
  ``session_id``, ``credential``, ``signature``, ... plus ``extra_keys``; the one vocabulary of
  :mod:`ops_observe.secrets`, which masking shares), in mappings given to
  :meth:`Redactor.value`, in ``key=value`` / ``key: value`` text, in query strings and in JSON text;
  the password of a ``scheme://user:password@host`` URL;
- ``token``: the credentials after ``Bearer`` / ``Basic``;
- ``jwt``: JSON Web Tokens;
- ``aws_key``, ``github_token``, ``stripe_key``, ``api_key`` (OpenAI-style ``sk-...``), ``slack_token``:
  the common API key formats;
- ``<name>``: each extra pattern, by the name it is given.

Guarantees: :meth:`Redactor.text` is idempotent (``text(text(s)) == text(s)``); strings without
anything to redact come back as the very same object; UUIDs, timestamps, amounts, IP addresses,
paths and plain prose pass unchanged. Speed: each built-in pattern runs only when a cheap substring
test says it could match (``"@" in s`` before the e-mail pattern, and so on), and strings already
seen clean are remembered in a small bounded set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Protocol

from ops_observe.secrets import SECRET_PAIRS, SECRET_WORDS, is_secret_key, secret_words

__all__ = [
    "MARKER",
    "SECRET_PAIRS",
    "SECRET_WORDS",
    "Redactor",
    "default_redactor",
    "get_redactor",
    "luhn_ok",
    "marker",
]

MARKER: Final = "[REDACTED:{}]"
"""The shape of every replacement; ``{}`` is the type (``email``, ``card``, ``secret``...)."""


def marker(kind: str) -> str:
    """The replacement text for one kind of redacted value, e.g. ``[REDACTED:email]``."""
    return MARKER.format(kind)


def luhn_ok(digits: str) -> bool:
    """True when a string of 13 to 19 digits passes the Luhn check that card numbers carry."""
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


class _Rule(Protocol):
    def __call__(self, text: str) -> str: ...


def _regex_rule(pattern: re.Pattern[str], replacement: str | Callable[[re.Match[str]], str]) -> _Rule:
    sub = pattern.sub

    def rule(text: str) -> str:
        return sub(replacement, text)

    return rule


# -- the built-in text patterns ------------------------------------------------------------------

_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# A credential has a digit or a symbol in it: "bearer bonds" in prose is left alone.
_BEARER = re.compile(
    r"\b(?P<scheme>[Bb]earer|BEARER|[Bb]asic|BASIC)(?P<sp>\s+)(?!\[REDACTED)"
    r"(?=[A-Za-z]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{6,}"
)
# Every pattern that can start inside a run of the characters it consumes has a look-behind that
# makes it start only at the run's beginning, and bounded repeats: matching stays linear in the
# length of the text (an unanchored e-mail pattern takes quadratic time on "aaaa...@").
_URL_PASSWORD = re.compile(
    r"(?P<head>(?<![A-Za-z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]{0,31}://[^/@:\s]{0,256}:)(?!\[REDACTED)[^@\s/]{1,256}(?=@)"
)
_AWS = re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b")
_AWS_SECRET = re.compile(r"(?i)(?P<head>aws.{0,20}?(?:secret|key).{0,20}?[=:]\s*[\"']?)[A-Za-z0-9/+]{40}\b")
_GITHUB = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})\b")
_STRIPE = re.compile(r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{10,255}\b|\bwhsec_[A-Za-z0-9]{20,255}\b")
_OPENAI = re.compile(r"\bsk-[A-Za-z0-9_-]{20,255}")
_SLACK = re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{10,255}|https://hooks\.slack\.com/services/[A-Za-z0-9_/]+")
# "%40": an address inside a URL-encoded query string.
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]{1,64}(?:@|%40)(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,63}")
# Dashed only: nine bare digits are as likely an order or a phone number. The ranges SSA never
# issues (000, 666, 9xx; 00; 0000) are left alone.
_SSN = re.compile(r"(?<![\w-])(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
# 13 to 19 digits, run together or grouped as cards print them (4-4-4-4..., Amex 4-6-5, Diners
# 4-6-4) with one kind of separator; the Luhn check decides. Loose grouping would take dashed
# numbers that follow each other ("123-45-6789 987-65-4321") for a card.
_CARD = re.compile(
    r"(?<![\w.-])(?:\d{13,19}"
    r"|\d{4}(?P<s>[ -])\d{4}(?:(?P=s)\d{4})(?:(?P=s)\d{1,4}){1,2}"
    r"|\d{4}(?P<t>[ -])\d{6}(?P=t)\d{4,5})"
    r"(?![\w-]|\.\d)"
)
_VALUE = (
    r"(?P<v>\[REDACTED:[a-z0-9_]+\]|\"(?:[^\"\\]|\\.)*\"|'[^']*'|(?:[Bb]earer|[Bb]asic)\s+[^\s,;&]+|[^\s,;&}\]\"']+)"
)
# key=value, key: value, "key": "value", key="value" (the key's words are checked by is_secret_key).
# A ":" followed by "//" is a URL's scheme, not a key: "http://x/?token=..." must reach "token".
_KEY_VALUE = re.compile(
    r"(?P<k>[\"']?(?<![A-Za-z0-9_.-])(?P<key>[A-Za-z_][A-Za-z0-9_.-]{1,63})[\"']?)(?P<sep>\s*(?:=|:(?!//))\s*)" + _VALUE
)


class Redactor:
    """Replaces PII and secrets in text and in nested values by typed markers (see the module doc).

    Args:
        extra_patterns: ``{name: regex}``; each match becomes ``[REDACTED:<name>]``.
        extra_keys: More key words whose values are secret (whole words, case-insensitive).
        max_depth: Nesting below this depth in :meth:`value` is replaced by ``[REDACTED:depth]``.
        cache_size: How many clean strings to remember (0 disables the memo).
    """

    def __init__(
        self,
        extra_patterns: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        extra_keys: Iterable[str] = (),
        *,
        max_depth: int = 12,
        cache_size: int = 4096,
    ) -> None:
        patterns = dict(extra_patterns.items() if isinstance(extra_patterns, Mapping) else extra_patterns)
        self.extra_patterns: dict[str, re.Pattern[str]] = {}
        for name, source in patterns.items():
            if not re.fullmatch(r"[a-z0-9_]+", name):
                raise ValueError(f"redaction pattern name {name!r}: use lowercase letters, digits and '_'")
            try:
                self.extra_patterns[name] = re.compile(source)
            except re.error as exc:
                raise ValueError(f"redaction pattern {name!r}: not a valid regular expression: {exc}") from None
        self.extra_words = secret_words(extra_keys)
        """The normalised ``extra_keys``, secret words on top of :data:`ops_observe.secrets.SECRET_WORDS`."""
        self.secret_words = SECRET_WORDS | self.extra_words
        self.max_depth = max_depth
        self._cache_size = cache_size
        self.clean_strings: set[str] = set()
        """Strings seen with nothing to redact (bounded); a hit returns the string at once."""
        self.key_memo: dict[str, bool] = {}
        """Whether each key seen names a secret (bounded)."""
        self._secret = marker("secret")
        self._extra_rules: tuple[_Rule, ...] = tuple(
            _regex_rule(p, marker(name)) for name, p in self.extra_patterns.items()
        )

    # -- keys --------------------------------------------------------------------------------------

    def is_secret_key(self, key: str) -> bool:
        """True when ``key`` names a secret: :func:`ops_observe.secrets.is_secret_key` with ``extra_keys``."""
        memo = self.key_memo.get(key)
        if memo is not None:
            return memo
        found = is_secret_key(key, self.extra_words)
        if len(self.key_memo) < 8192:
            self.key_memo[key] = found
        return found

    # -- text --------------------------------------------------------------------------------------

    def text(self, s: str) -> str:
        """``s`` with every PII or secret replaced; the same object when there was nothing to replace."""
        if len(s) < 5 or s in self.clean_strings:
            return s
        out = self._once(s)
        if out is s:
            if self._cache_size and len(s) <= 256:
                if len(self.clean_strings) >= self._cache_size:
                    self.clean_strings.clear()
                self.clean_strings.add(s)
            return s
        # A replacement can open a match that was not there (a marker between digits, a key=value
        # whose value was a token): run again until nothing changes, so redaction is idempotent.
        for _ in range(4):
            again = self._once(out)
            if again == out:
                break
            out = again
        return out

    def _once(self, s: str) -> str:
        out = s
        if "eyJ" in out:
            out = _JWT.sub("[REDACTED:jwt]", out)
        if "earer" in out or "asic" in out or "EARER" in out or "ASIC" in out:
            out = _BEARER.sub(_bearer_replacement, out)
        if "://" in out:
            out = _URL_PASSWORD.sub(_url_replacement, out)
        if "=" in out or ":" in out:
            out = _KEY_VALUE.sub(self._key_value_replacement, out)
            if "aws" in out or "AWS" in out:
                out = _AWS_SECRET.sub(_head_secret, out)
        if "A" in out and (
            "AKIA" in out
            or "ASIA" in out
            or "AGPA" in out
            or "AIDA" in out
            or "AROA" in out
            or "ANPA" in out
            or "ANVA" in out
            or "AIPA" in out
        ):
            out = _AWS.sub("[REDACTED:aws_key]", out)
        if "gh" in out and "_" in out or "github_pat_" in out:
            out = _GITHUB.sub("[REDACTED:github_token]", out)
        if "_live_" in out or "_test_" in out or "whsec_" in out:
            out = _STRIPE.sub("[REDACTED:stripe_key]", out)
        if "sk-" in out:
            out = _OPENAI.sub("[REDACTED:api_key]", out)
        if "xox" in out or "hooks.slack.com" in out:
            out = _SLACK.sub("[REDACTED:slack_token]", out)
        if "@" in out or "%40" in out:
            out = _EMAIL.sub("[REDACTED:email]", out)
        if "-" in out:
            out = _SSN.sub("[REDACTED:ssn]", out)
        if len(out) >= 13:
            out = _CARD.sub(_card_replacement, out)
        for rule in self._extra_rules:
            out = rule(out)
        # Every ``sub`` returns its argument itself when nothing matched: identity means clean.
        return s if out == s else out

    def _key_value_replacement(self, m: re.Match[str]) -> str:
        value = m["v"]
        if value.startswith("[REDACTED") or value in ('""', "''") or not self.is_secret_key(m["key"]):
            return m[0]
        if value[:1] in "\"'" and len(value) >= 2:
            return m["k"] + m["sep"] + value[0] + self._secret + value[0]
        return m["k"] + m["sep"] + self._secret

    # -- values ------------------------------------------------------------------------------------

    def value(self, obj: Any, _depth: int = 0) -> Any:
        """``obj`` with strings redacted and secret-named keys' values replaced, through dicts, lists,
        tuples and sets; other objects (numbers, None, bools) unchanged, except card-sized ints."""
        if isinstance(obj, str):
            return self.text(obj)
        if obj is None or isinstance(obj, (bool, float)):
            return obj
        if isinstance(obj, int):
            return marker("card") if 10**12 <= abs(obj) < 10**19 and luhn_ok(str(abs(obj))) else obj
        if _depth >= self.max_depth:
            return marker("depth")
        if isinstance(obj, Mapping):
            return {k: self.field(str(k), v, _depth + 1) for k, v in obj.items()}
        if isinstance(obj, (list, tuple, set, frozenset)):
            items = [self.value(v, _depth + 1) for v in obj]
            return items if isinstance(obj, list) else type(obj)(items) if not isinstance(obj, tuple) else tuple(items)
        if isinstance(obj, (bytes, bytearray)):
            return self.text(bytes(obj).decode("utf-8", "backslashreplace"))
        return obj

    def field(self, key: str, value: Any, _depth: int = 0) -> Any:
        """The redacted value of one ``key=value`` pair: a secret marker when the key names a secret."""
        blank = value is None or isinstance(value, bool) or (type(value) is str and not value)
        if not blank and self.is_secret_key(key):
            if isinstance(value, str) and value.startswith("[REDACTED:"):
                return value
            return self._secret
        return self.value(value, _depth)


class _NullRedactor(Redactor):
    """The redactor of ``enabled = false``: everything passes unchanged."""

    def text(self, s: str) -> str:
        return s

    def value(self, obj: Any, _depth: int = 0) -> Any:
        return obj

    def field(self, key: str, value: Any, _depth: int = 0) -> Any:
        return value


def _bearer_replacement(m: re.Match[str]) -> str:
    return m["scheme"] + m["sp"] + "[REDACTED:token]"


def _url_replacement(m: re.Match[str]) -> str:
    return m["head"] + "[REDACTED:secret]"


def _head_secret(m: re.Match[str]) -> str:
    return m["head"] + "[REDACTED:secret]"


def _card_replacement(m: re.Match[str]) -> str:
    raw = m[0]
    digits = raw.replace(" ", "").replace("-", "")
    return "[REDACTED:card]" if luhn_ok(digits) else raw


default_redactor: Final = Redactor()
"""The redactor with the built-in patterns and key names only."""

NULL_REDACTOR: Final = _NullRedactor()
_by_settings: dict[tuple[Any, ...], Redactor] = {}


def get_redactor(settings: Any) -> Redactor:
    """The redactor configured by ``settings.logging.redaction`` (a root ``Settings``), or by a
    ``LoggingSettings`` / ``RedactionSettings`` directly. Equal settings share one instance."""
    section = getattr(settings, "logging", settings)
    section = getattr(section, "redaction", section)
    if not getattr(section, "enabled", True):
        return NULL_REDACTOR
    patterns = tuple(sorted(dict(getattr(section, "patterns", {})).items()))
    keys = tuple(getattr(section, "keys", ()))
    if not patterns and not keys:
        return default_redactor
    cache_key = (patterns, keys)
    found = _by_settings.get(cache_key)
    if found is None:
        found = _by_settings[cache_key] = Redactor(dict(patterns), keys)
    return found
