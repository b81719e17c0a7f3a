"""The redactor: typed markers, what is caught, what is left alone, idempotence, extension points."""

from __future__ import annotations

import json
import string
import time
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops_observe.redaction import NULL_REDACTOR, Redactor, default_redactor, get_redactor, luhn_ok
from ops_observe.settings import load_settings

r = default_redactor


def luhn_complete(body: str) -> str:
    """``body`` plus the check digit that makes it pass the Luhn check."""
    for digit in "0123456789":
        if luhn_ok(body + digit):
            return body + digit
    raise AssertionError("unreachable")


# -- examples, one per kind ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail bob.smith+x@example.co.uk now", "mail [REDACTED:email] now"),
        ("to=bob%40example.com&x=1", "to=[REDACTED:email]&x=1"),
        ("ssn 123-45-6789.", "ssn [REDACTED:ssn]."),
        ("card 4111 1111 1111 1111 ok", "card [REDACTED:card] ok"),
        ("card 4111-1111-1111-1111", "card [REDACTED:card]"),
        ("card 378282246310005", "card [REDACTED:card]"),
        ("password=hunter2&next=/home", "password=[REDACTED:secret]&next=/home"),
        ("db_password: 's3cr3t value'", "db_password: '[REDACTED:secret]'"),
        ('{"apiKey": "abc\\"def", "n": 1}', '{"apiKey": "[REDACTED:secret]", "n": 1}'),
        ("Authorization: Bearer abc.def-123", "Authorization: [REDACTED:secret]"),
        ("curl -H 'Bearer abcdef123456'", "curl -H 'Bearer [REDACTED:token]'"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_nature-1", "jwt [REDACTED:jwt]"),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [REDACTED:aws_key]"),
        ("gh ghp_" + "a1" * 18, "gh [REDACTED:github_token]"),
        ("github_pat_" + "A" * 30, "[REDACTED:github_token]"),
        ("stripe sk_live_" + "x9" * 12, "stripe [REDACTED:stripe_key]"),
        ("openai sk-proj-" + "Ab1" * 10, "openai [REDACTED:api_key]"),
        ("slack xoxb-123456789012-abcdefABCDEF", "slack [REDACTED:slack_token]"),
        ("hook https://hooks.slack.com/services/T000/B000/XXXX", "hook [REDACTED:slack_token]"),
        ("dsn postgres://app:pa55@db:5432/x", "dsn postgres://app:[REDACTED:secret]@db:5432/x"),
        ("GET http://t/a?token=abc&page=2", "GET http://t/a?token=[REDACTED:secret]&page=2"),
    ],
)
def test_each_kind_is_replaced_by_its_typed_marker(text: str, expected: str) -> None:
    assert r.text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 1234567890123",  # 13 digits, fails Luhn: an order number, not a card
        "550e8400-e29b-41d4-a716-446655440000",
        "12345678-1234-1234-1234-123456789012",
        "2026-11-27T15:04:05.123456Z",
        "2026-11-27 15:04:05+00:00",
        "total $1,234,567.89 (12.50 EUR)",
        "client 192.168.10.254 and 2001:db8::8a2e:370:7334",
        "/api/v1/users/42/orders?page=3",
        "input_tokens=512 output_tokens=128 tokens_total=640",
        "the bearer bonds matured",
        "author: Jane, passage: 3",
        "phone 555-1234",
        "ssn-like but not issued: 000-12-3456 666-12-3456 900-12-3456",
        "",
        "ab",
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert r.text(text) == text


def test_an_unchanged_string_is_the_same_object() -> None:
    text = "nothing to see here at all"
    assert r.text(text) is text
    assert r.text(text) is text  # second time from the clean-string memo


# -- values: nested structures and key names --------------------------------------------------------


def test_value_walks_nested_dicts_lists_and_tuples() -> None:
    value = {
        "user": {"email": "a@b.io", "password": "x", "profile": [{"api_key": "k"}, "call 123-45-6789"]},
        "input_tokens": 5,
        "card": 4111111111111111,
        "order": 1234567890123,
        "ok": True,
        "none_secret": None,
        "pair": ("Bearer abcdef123456", 2),
    }
    assert r.value(value) == {
        "user": {
            "email": "[REDACTED:email]",
            "password": "[REDACTED:secret]",
            "profile": [{"api_key": "[REDACTED:secret]"}, "call [REDACTED:ssn]"],
        },
        "input_tokens": 5,
        "card": "[REDACTED:card]",
        "order": 1234567890123,
        "ok": True,
        "none_secret": None,
        "pair": ("Bearer [REDACTED:token]", 2),
    }


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("db_password", True),
        ("DB_PASSWORD", True),
        ("apiKey", True),
        ("api-key", True),
        ("X-Auth-Token", True),
        ("access_token", True),
        ("client_secret", True),
        ("Set-Cookie", True),
        ("sessionId", True),
        ("private_key", True),
        ("credentials", True),
        ("input_tokens", False),
        ("tokens", False),
        ("author", False),
        ("keyboard", False),
        ("passage", False),
        ("user_id", False),
        ("spin", False),
    ],
)
def test_secret_key_names_are_whole_words(key: str, secret: bool) -> None:
    assert r.is_secret_key(key) is secret


def test_value_deeper_than_the_limit_is_cut() -> None:
    deep: object = "a@b.io"
    for _ in range(20):
        deep = [deep]
    flat = json.dumps(Redactor(max_depth=5).value(deep))
    assert "a@b.io" not in flat and "[REDACTED:depth]" in flat


# -- extension from settings --------------------------------------------------------------------------


def test_extra_patterns_and_keys() -> None:
    custom = Redactor(extra_patterns={"order": r"ORD-\d{6}"}, extra_keys=("otp", "member number"))
    assert custom.text("ref ORD-123456 otp=991") == "ref [REDACTED:order] otp=[REDACTED:secret]"
    assert custom.value({"memberNumber": 7}) == {"memberNumber": "[REDACTED:secret]"}
    assert default_redactor.text("ref ORD-123456 otp=991") == "ref ORD-123456 otp=991"


def test_get_redactor_reads_the_logging_redaction_table() -> None:
    settings = load_settings({"logging": {"redaction": {"patterns": {"ticket": "T#\\d+"}, "keys": ["otp"]}}})
    redactor = get_redactor(settings)
    assert redactor.text("T#42 otp: 7") == "[REDACTED:ticket] otp: [REDACTED:secret]"
    assert get_redactor(settings) is redactor  # one instance per distinct settings
    assert get_redactor(load_settings({})) is default_redactor
    off = get_redactor(load_settings({"logging": {"redaction": {"enabled": False}}}))
    assert off is NULL_REDACTOR and off.text("a@b.io") == "a@b.io"


@pytest.mark.parametrize(
    ("patterns", "message"),
    [({"Bad-Name": "x"}, "lowercase letters"), ({"ok": "("}, "not a valid regular expression")],
)
def test_bad_extra_patterns_are_refused(patterns: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Redactor(extra_patterns=patterns)


# -- properties ------------------------------------------------------------------------------------

# Prose that cannot form any pattern: lowercase words, spaces and sentence punctuation.
prose = st.text(alphabet=string.ascii_lowercase + " .,!?", max_size=40)
local_part = st.text(alphabet=string.ascii_letters + string.digits + "._%+-", min_size=1, max_size=64)
label = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=12)
emails = st.builds(
    lambda user, labels, tld: f"{user}@{'.'.join(labels)}.{tld}",
    local_part,
    st.lists(label, min_size=1, max_size=3),
    st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=6),
)
ssns = st.builds(
    lambda a, g, s: f"{a:03d}-{g:02d}-{s:04d}",
    st.integers(1, 899).filter(lambda a: a != 666),
    st.integers(1, 99),
    st.integers(1, 9999),
)


@st.composite
def cards(draw: st.DrawFn) -> str:
    length = draw(st.integers(13, 19))
    number = luhn_complete(draw(st.text(alphabet=string.digits, min_size=length - 1, max_size=length - 1)))
    sep = draw(st.sampled_from(["", " ", "-"]))
    if not sep:
        return number
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))


alnum = string.ascii_letters + string.digits
api_keys = st.one_of(
    st.text(alphabet=string.ascii_uppercase + string.digits, min_size=16, max_size=16).map(lambda s: "AKIA" + s),
    st.text(alphabet=alnum, min_size=36, max_size=40).map(lambda s: "ghp_" + s),
    st.text(alphabet=alnum, min_size=10, max_size=40).map(lambda s: "sk_live_" + s),
    st.text(alphabet=alnum + "_-", min_size=20, max_size=60).map(lambda s: "sk-" + s),
    st.text(alphabet=alnum + "-", min_size=10, max_size=40).map(lambda s: "xoxb-" + s),
    st.tuples(*[st.text(alphabet=alnum + "_-", min_size=8, max_size=40)] * 3).map(
        lambda p: f"eyJ{p[0]}.eyJ{p[1]}.{p[2]}"
    ),
)
secret_words = st.sampled_from(
    ["password", "passwd", "secret", "token", "api_key", "apiKey", "authorization", "client_secret", "X-Auth-Token"]
)
secret_values = st.text(alphabet=alnum + "!#$%()*+-./<>?@^_`{|~", min_size=1, max_size=30).filter(
    lambda v: not v.startswith("[")
)


@given(prose, st.one_of(emails, ssns, cards(), api_keys), prose)
def test_generated_pii_never_survives(before: str, pii: str, after: str) -> None:
    out = r.text(f"{before} {pii} {after}")
    assert pii not in out
    assert "[REDACTED:" in out


@given(secret_words, secret_values, st.sampled_from(["{k}={v}", "{k}: {v}", "?a=1&{k}={v}&b=2", "{k}='{v}'"]))
def test_secret_values_by_key_name_never_survive(key: str, value: str, shape: str) -> None:
    text = shape.format(k=key, v=value)
    out = r.text(text)
    assert out == shape.format(k=key, v="[REDACTED:secret]") or (
        # a value that itself holds a pattern (an e-mail...) may be cut by it first; never shown
        value not in out and "[REDACTED:" in out
    )


plain_keys = label.filter(lambda k: not default_redactor.is_secret_key(k))


@given(st.dictionaries(secret_words, secret_values, min_size=1), st.dictionaries(plain_keys, prose))
def test_secrets_in_json_text_and_in_values_never_survive(secrets: dict[str, str], plain: dict[str, str]) -> None:
    document = {**plain, **secrets}
    parsed = json.loads(r.text(json.dumps(document)))
    for key in secrets:
        assert parsed[key] == "[REDACTED:secret]"
    redacted_value = r.value(document)
    for key in secrets:
        assert redacted_value[key] == "[REDACTED:secret]"
    for key, value in plain.items():
        if key not in secrets:
            assert parsed[key] == value == redacted_value[key]


@given(
    st.one_of(
        st.uuids().map(str),
        st.uuids().map(lambda u: u.hex),
        st.datetimes().map(lambda d: d.isoformat()),
        st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
        st.decimals(min_value=-(10**9), max_value=10**9, places=2).map(str),
        st.integers(0, 10**9).map(lambda n: f"${n:,}.00"),
        st.ip_addresses().map(str),
        st.lists(label, min_size=1, max_size=6).map(lambda parts: "/" + "/".join(parts)),
        prose,
    )
)
def test_ordinary_values_pass_unchanged(text: str) -> None:
    assert r.text(text) == text


@given(st.text(max_size=200))
def test_redaction_is_idempotent_on_any_text(text: str) -> None:
    once = r.text(text)
    assert r.text(once) == once


@given(st.lists(st.one_of(prose, emails, ssns, cards(), api_keys, secret_values), max_size=8), st.sampled_from(" =:,&"))
def test_redaction_is_idempotent_on_mixed_pii(parts: list[str], joiner: str) -> None:
    once = r.text(joiner.join(parts))
    assert r.text(once) == once


def test_uuid4_hex_never_looks_like_a_card() -> None:
    for _ in range(2000):
        value = str(uuid.uuid4())
        assert r.text(value) == value


ADVERSARIAL_UNITS = ["a", "a.", "a@", "a-", "a%40", "a://b:", "1", "1-", "1 ", "a=", "a:", '"', "\\", "eyJ", "eyJa."]
ADVERSARIAL_UNITS += ["Bearer ", "sk-", "ghp_", "AKIA", 'x="', "k: '", "password=", "aws_secret=", "xoxb-", "%40a."]


@pytest.mark.parametrize("unit", ADVERSARIAL_UNITS)
def test_redaction_time_is_linear_in_the_text(unit: str) -> None:
    """No pattern backtracks quadratically: 64 KiB of a repeated near-miss finishes well inside a
    second (an unanchored e-mail pattern took minutes on this input)."""
    text = unit * (65536 // len(unit)) + "@x://:=-"
    start = time.perf_counter()
    Redactor(cache_size=0).text(text)
    assert time.perf_counter() - start < 1.0
