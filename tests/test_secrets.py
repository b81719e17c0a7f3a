"""The one vocabulary of secret key names: whole words in any spelling, shared by masking and redaction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops_observe import masking, redaction, secrets
from ops_observe.masking import MASK, mask_secrets
from ops_observe.redaction import Redactor, default_redactor
from ops_observe.secrets import SECRET_PAIRS, SECRET_WORDS, is_secret_key, key_words, secret_words


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        # secret words, whole, in any style
        ("password", True),
        ("PASSWORD", True),
        ("db_password", True),
        ("DB_PASSWORD", True),
        ("dbPassword", True),
        ("db-password", True),
        ("password2", True),
        ("passwd", True),
        ("pwd", True),
        ("passphrase", True),
        ("secret", True),
        ("client_secret", True),
        ("clientSecret", True),
        ("token", True),
        ("api_token", True),
        ("access_token", True),
        ("X-Auth-Token", True),
        ("authorization", True),
        ("Authorization", True),
        ("HTTPAuthorization", True),
        ("Proxy-Authorization", True),
        ("cookie", True),
        ("Set-Cookie", True),
        ("credential", True),
        ("credentials", True),
        ("aws_credentials", True),
        ("signature", True),
        ("jwt", True),
        ("bearer", True),
        ("secrets", True),
        ("passwords", True),
        # two-word names
        ("api_key", True),
        ("apiKey", True),
        ("api-key", True),
        ("APIKey", True),
        ("X-Api-Key", True),
        ("private_key", True),
        ("privateKey", True),
        ("access_key", True),
        ("aws_secret_key", True),
        ("session_id", True),
        ("sessionId", True),
        ("card_number", True),
        # glued lowercase spellings (the old masking matched these as substrings)
        ("apikey", True),
        ("APIKEY", True),
        ("privatekey", True),
        ("dbpassword", True),
        ("authtoken", True),
        ("NGROK_AUTHTOKEN", True),
        # readable: a secret word inside another word is not a secret word
        ("input_tokens", False),
        ("max_tokens", False),
        ("tokens", False),
        ("tokenizer", False),
        ("author", False),
        ("keyboard", False),
        ("key", False),
        ("passage", False),
        ("passwordless", False),
        ("secretary", False),
        ("spin", False),
        ("user_id", False),
        ("session", False),
        ("dsn", False),  # a DSN's password is masked inside the value, not by its key
        ("url", False),
        ("", False),
    ],
)
def test_secret_key_verdicts(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret
    assert masking.is_secret_key(key) is secret
    assert default_redactor.is_secret_key(key) is secret


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("db_password", ("db", "password")),
        ("X-Auth-Token", ("x", "auth", "token")),
        ("apiKey", ("api", "key")),
        ("privateKey", ("private", "key")),
        ("APIKey", ("api", "key")),
        ("HTTPAuthorization", ("http", "authorization")),
        ("client_secret", ("client", "secret")),
        ("token2", ("token",)),
        ("v1.2", ("v", "2")),
        ("__", ()),
    ],
)
def test_key_words(key: str, words: tuple[str, ...]) -> None:
    assert key_words(key) == words


def test_extra_words() -> None:
    extra = secret_words(["otp", "Member number", " ", ""])
    assert extra == {"otp", "membernumber"}
    assert is_secret_key("user_otp", extra) and is_secret_key("memberNumber", extra)
    assert not is_secret_key("user_otp") and not is_secret_key("memberNumber")
    # extra words are whole words, never glued suffixes
    assert not is_secret_key("spotp", extra)
    custom = Redactor(extra_keys=("otp",))
    assert custom.is_secret_key("OTP") and not default_redactor.is_secret_key("OTP")


def test_there_is_one_vocabulary() -> None:
    assert redaction.SECRET_WORDS is SECRET_WORDS and redaction.SECRET_PAIRS is SECRET_PAIRS
    assert masking.is_secret_key is is_secret_key
    assert default_redactor.secret_words == SECRET_WORDS and not default_redactor.extra_words
    assert not hasattr(masking, "_SECRET_KEY")


def test_the_verdicts_are_cached_and_bounded() -> None:
    info = secrets._verdict.cache_parameters()
    assert info["maxsize"] is not None and info["maxsize"] > 0
    assert key_words.cache_parameters()["maxsize"] is not None


# -- properties ------------------------------------------------------------------------------------

# Two letters at least: "AB" in PascalCase is one acronym, not two words.
plain_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=8).filter(
    lambda w: not is_secret_key(w)
)
styles = st.sampled_from(["snake", "SNAKE", "kebab", "Train", "camel", "Pascal", "dots", "space"])


def spell(words: list[str], style: str) -> str:
    """``words`` joined in one key-naming style."""
    if style == "snake":
        return "_".join(words)
    if style == "SNAKE":
        return "_".join(words).upper()
    if style == "kebab":
        return "-".join(words)
    if style == "Train":
        return "-".join(w.capitalize() for w in words)
    if style == "camel":
        return words[0] + "".join(w.capitalize() for w in words[1:])
    if style == "Pascal":
        return "".join(w.capitalize() for w in words)
    if style == "dots":
        return ".".join(words)
    return " ".join(words)


def split_pair(word: str) -> list[str]:
    """A two-word name as its two words: "apikey" -> ["api", "key"]."""
    for head in ("api", "access", "private", "secret", "session", "client", "set", "card"):
        if word.startswith(head) and word != head:
            return [head, word[len(head) :]]
    return [word]


secret_parts = st.one_of(
    st.sampled_from(sorted(SECRET_WORDS)).map(split_pair),
    st.sampled_from(sorted(SECRET_PAIRS)).map(split_pair),
)


@given(st.lists(plain_word, max_size=3), secret_parts, st.lists(plain_word, max_size=3), styles)
def test_a_secret_word_makes_the_key_secret_in_any_style(
    before: list[str], secret: list[str], after: list[str], style: str
) -> None:
    key = spell([*before, *secret, *after], style)
    assert is_secret_key(key), key


@given(st.lists(plain_word, min_size=1, max_size=4), styles)
def test_keys_of_plain_words_stay_readable_unless_two_glue_into_a_secret(words: list[str], style: str) -> None:
    key = spell(words, style)
    glued = {a + b for a, b in zip(words, words[1:], strict=False)} | set(words)
    expected = any(g in SECRET_WORDS or g in SECRET_PAIRS for g in glued) or any(
        w.endswith(secrets.GLUED_SUFFIXES) for w in words
    )
    assert is_secret_key(key) is expected, key


keys = st.one_of(
    st.text(max_size=24),
    st.builds(spell, st.lists(st.one_of(plain_word, st.sampled_from(sorted(SECRET_WORDS))), min_size=1), styles),
)


@given(keys, st.text(min_size=1, max_size=10))
def test_masking_and_redaction_agree_on_every_key(key: str, value: str) -> None:
    secret = is_secret_key(key)
    assert masking.is_secret_key(key) is secret
    assert default_redactor.is_secret_key(key) is secret
    assert (mask_secrets({key: value})[key] == MASK) is secret
    assert (default_redactor.value({key: value})[key] == "[REDACTED:secret]") is secret
