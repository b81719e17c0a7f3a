"""Helpers of the metrics tests: drive an ASGI app, scrape it, read samples."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import ops_observe
from ops_observe.app import ObservedApp


@pytest.fixture(autouse=True)
def restore_logging() -> Any:
    """``wrap()`` installs the JSON log stream process-wide; put loguru and logging back after each test."""
    yield
    from ops_observe.logging.feature import uninstall

    uninstall()


NS = "svc"
BASE: dict[str, Any] = {"service_name": "svc", "middleware": ["metrics"]}


def settings(**metrics: Any) -> dict[str, Any]:
    """Test settings: namespace ``svc``, only the metrics middleware, ``metrics`` section overrides."""
    return {**BASE, "metrics": metrics}


def wrap(app: Any, **metrics: Any) -> ObservedApp:
    return ops_observe.wrap(app, settings=settings(**metrics))


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def requests(app: Any, *calls: tuple[str, str] | str, headers: Mapping[str, str] | None = None) -> list[int]:
    """Send each ``(method, path)`` (or a path, for GET) to ``app``; the statuses."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    statuses = []
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for call in calls:
            method, path = ("GET", call) if isinstance(call, str) else call
            response = await client.request(method, path, headers=headers)
            statuses.append(response.status_code)
    return statuses


def call(app: Any, *calls: tuple[str, str] | str, headers: Mapping[str, str] | None = None) -> list[int]:
    return list(run(requests(app, *calls, headers=headers)))


async def ascrape(app: Any, path: str = "/metrics", headers: Mapping[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers=headers)


def scrape(app: Any, path: str = "/metrics", headers: Mapping[str, str] | None = None) -> str:
    response = run(ascrape(app, path, headers))
    assert response.status_code == 200, response.text
    return str(response.text)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by name and label set."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample, or ``None`` when absent."""
    return samples(text).get((name, frozenset(labels.items())))


def label_values(text: str, name: str, label: str) -> set[str]:
    return {
        dict(labels)[label] for (sample, labels), _ in samples(text).items() if sample == name and label in dict(labels)
    }
