"""The demo answers the README's own ``curl`` lines with the statuses the README gives, validates its
input (400 for a body that is not a JSON object, 422 for a bad field, never a 500), and runs under trio."""

from __future__ import annotations

import asyncio
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import ops_observe
from ops_observe import demo
from ops_observe.demo import create_app

README = Path(__file__).resolve().parents[1] / "README.md"
DEMO_SETTINGS = Path(demo.__file__).with_name("demo.toml")


@dataclass(frozen=True)
class Curl:
    """One README ``curl`` line: the request it sends and the statuses its comment documents."""

    line: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    statuses: frozenset[int]


def readme_curls() -> list[Curl]:
    """Every ``curl`` line of the README's demo block, parsed as curl reads its options."""
    text = README.read_text()
    block = re.search(r"status it answers.*?```bash\n(.*?)```", text, re.S)
    assert block is not None, "the README's demo section has no curl block"
    curls = []
    for line in block.group(1).splitlines():
        if not line.startswith("curl "):
            continue
        command, _, comment = line.partition("  # ")
        statuses = frozenset(int(code) for code in re.findall(r"\b[1-5]\d\d\b", comment))
        assert statuses, f"no documented status: {line}"
        tokens = shlex.split(command)
        if "|" in tokens:
            tokens = tokens[: tokens.index("|")]
        method, url, headers, body = "", "", [], None
        words = iter(tokens[1:])
        for word in words:
            if word == "-X":
                method = next(words)
            elif word == "-H":
                name, _, value = next(words).partition(":")
                headers.append((name.strip(), value.strip()))
            elif word == "-d":
                body = next(words).encode()
            elif word in ("-i", "-s"):
                continue
            else:
                assert not word.startswith("-"), f"an option the test does not know: {word} in {line}"
                url = word
        if body is not None and not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))  # what curl -d sends
        assert url.startswith("localhost:8000/"), line
        curls.append(
            Curl(line, method or ("POST" if body is not None else "GET"), url[len("localhost:8000") :],
                 tuple(headers), body, statuses)
        )  # fmt: skip
    return curls


async def send(app: Any, curls: list[Curl]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        return [await client.request(c.method, c.path, headers=list(c.headers), content=c.body) for c in curls]


def test_every_readme_curl_gets_its_documented_status() -> None:
    curls = readme_curls()
    app = ops_observe.wrap(create_app(), settings=str(DEMO_SETTINGS))
    for route in create_app().routes:  # every demo route has a line
        assert any(route.path_regex.match(c.path.split("?")[0]) for c in curls), route.path  # type: ignore[attr-defined]
    responses = asyncio.run(send(app, curls))
    for curl, response in zip(curls, responses, strict=True):
        assert response.status_code in curl.statuses, f"{curl.line}\n-> {response.status_code} {response.text[:300]}"
        if 400 <= response.status_code < 500:
            assert "error" in response.json(), curl.line  # a message, not a bare status
    metrics = next(r for c, r in zip(curls, responses, strict=True) if c.path == "/metrics")
    assert "ops_center_http_requests_total{" in metrics.text


BAD_INPUT = [
    # (path, body, content type, status, a text the message must contain)
    ("/credits/purchase", b"", None, 400, "the body is empty"),
    ("/credits/purchase", b"   ", "application/json", 400, "the body is empty"),
    ("/credits/purchase", b"{not json", "application/json", 400, "not valid JSON"),
    ("/credits/purchase", b"\xff\xfe", "application/json", 400, "not valid JSON"),
    ("/credits/purchase", b"[1, 2]", "application/json", 400, "must be a JSON object, got list"),
    ("/credits/purchase", b"{}", "application/json", 422, "amount must be a positive integer"),
    ("/credits/purchase", b'{"amount": "100"}', "application/json", 422, "amount must be a positive integer"),
    ("/credits/purchase", b'{"amount": true}', "application/json", 422, "amount must be a positive integer"),
    ("/credits/purchase", b'{"amount": 0}', "application/json", 422, "amount must be a positive integer"),
    ("/credits/purchase", b'{"amount": 5, "user_id": 7}', "application/json", 422, "user_id must be"),
    ("/llm/chat", b"", None, 400, "the body is empty"),
    ("/llm/chat", b'{"model": ', "application/json", 400, "not valid JSON"),
    ("/llm/chat", b'"hello"', "application/json", 400, "must be a JSON object, got str"),
    ("/llm/chat", b'{"model": "gpt-5"}', "application/json", 422, "known models: gpt-4o-mini, llama-3-70b"),
    ("/llm/chat", b'{"model": ["x"]}', "application/json", 422, "unknown model"),
    ("/llm/chat", b'{"messages": "hi"}', "application/json", 422, "messages must be a list"),
    ("/llm/chat", b'{"messages": [{"content": 5}]}', "application/json", 422, "content of each message"),
]


@pytest.mark.parametrize(("path", "body", "content_type", "status", "message"), BAD_INPUT)
def test_bad_input_is_answered_with_a_useful_message(
    path: str, body: bytes, content_type: str | None, status: int, message: str
) -> None:
    app = ops_observe.wrap(create_app(), settings={"middleware": []})
    headers = {"Content-Type": content_type} if content_type else {}

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # raise_app_exceptions: a 500 would raise here
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            return await client.post(path, content=body, headers=headers)

    response = asyncio.run(go())
    assert response.status_code == status, response.text
    answer = response.json()
    assert message in answer["error"]
    if status == 400:
        assert answer["example"] in (demo.PURCHASE_EXAMPLE, demo.CHAT_EXAMPLE)
    if "known models" in message:
        assert answer["models"] == sorted(demo.MODELS)


@pytest.mark.parametrize(
    ("query", "status", "slept"),
    [("", 200, 0.5), ("?seconds=0", 200, 0.0), ("?seconds=0.01", 200, 0.01), ("?seconds=abc", 422, None),
     ("?seconds=-1", 422, None), ("?seconds=11", 422, None), ("?seconds=nan", 422, None)],
)  # fmt: skip
def test_slow_validates_its_seconds(query: str, status: int, slept: float | None) -> None:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            return await client.get("/slow" + query)

    response = asyncio.run(go())
    assert response.status_code == status, response.text
    if slept is None:
        assert "seconds must be a number from 0 to 10" in response.json()["error"]
    else:
        assert response.json() == {"slept": slept}


def test_the_demo_runs_under_trio() -> None:
    trio = pytest.importorskip("trio")
    settings = {"service_name": "ops-center", "middleware": ["correlation", "logging", "metrics"]}
    app = ops_observe.wrap(create_app(), settings=settings)

    async def go() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            responses = [
                await client.post("/credits/purchase", json=demo.PURCHASE_EXAMPLE),
                await client.post("/llm/chat", json=demo.CHAT_EXAMPLE),
                await client.get("/slow?seconds=0.01"),
            ]
        return [r.status_code for r in responses]

    assert trio.run(go) == [200, 200, 200]
