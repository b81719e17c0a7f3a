"""Fixtures of the reliability suite (tests/reliability/): a loopback span collector per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from reliability_support import SpanCollector


@pytest.fixture
def collector() -> Iterator[SpanCollector]:
    """A loopback Zipkin endpoint that counts the spans it receives."""
    collector = SpanCollector()
    yield collector
    collector.close()
