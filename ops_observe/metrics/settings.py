"""Settings of the Prometheus metrics."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ops_observe.request import STREAM_MEDIA_TYPES
from ops_observe.schema import metric_name, networks, setting, url_path

DEFAULT_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
DEFAULT_SIZE_BUCKETS = (100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0, 10_000_000.0)
DEFAULT_STREAM_TYPES = STREAM_MEDIA_TYPES


def _buckets(values: tuple[float, ...]) -> None:
    if not values:
        raise ValueError("must list at least one bucket bound")
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError("must be strictly increasing")


def _port(value: int | None) -> None:
    if value is not None and not 0 < value < 65536:
        raise ValueError("must be a TCP port between 1 and 65535")


def _at_least_one(value: int) -> None:
    if value < 1:
        raise ValueError("must be at least 1")


def _caps(values: Mapping[str, int]) -> None:
    for name, cap in values.items():
        metric_name(name)
        if cap < 1:
            raise ValueError(f"{name}: must be at least 1")


@dataclass(frozen=True)
class MetricsSettings:
    """``[ops_observe.metrics]``: the HTTP metrics middleware and the ``/metrics`` endpoint."""

    enabled: bool | None = setting(
        None,
        doc="Serve the metrics endpoint (and keep the catalog); unset: when `metrics` is in `middleware`. "
        "`false` with `metrics` listed records without serving.",
    )
    path: str = setting("/metrics", doc="Path of the Prometheus exposition endpoint.", check=url_path)
    buckets: tuple[float, ...] = setting(
        DEFAULT_BUCKETS,
        doc="Bucket bounds (seconds) of the HTTP latency and time-to-first-byte histograms.",
        check=_buckets,
    )
    size_buckets: tuple[float, ...] = setting(
        DEFAULT_SIZE_BUCKETS,
        doc="Bucket bounds (bytes) of the request and response size histograms.",
        check=_buckets,
    )
    stream_content_types: tuple[str, ...] = setting(
        DEFAULT_STREAM_TYPES,
        doc="Responses of these media types are long-lived streams: their full duration goes to "
        "`http_stream_duration_seconds`, not to the latency histogram.",
    )
    id_labels: Literal["hash", "drop"] = setting(
        "hash",
        doc="User, organisation and API-key id labels: `hash` (keyed HMAC, 16 hex digits) or `drop` the label.",
    )
    hash_key: str = setting(
        "",
        doc="Key of the id hash; empty: a random key per process (per run in multiprocess mode).",
        secret=True,
    )
    max_label_values: int = setting(
        500,
        doc="Distinct values one label of one metric may take; later new values become `overflow_value`.",
        check=_at_least_one,
    )
    label_caps: Mapping[str, int] = setting(
        doc="Per-metric overrides of `max_label_values`, by metric name without the namespace.",
        factory=dict,
        check=_caps,
    )
    overflow_value: str = setting("__overflow__", doc="Label value that stands for every value past the cap.")
    api_key_header: str = setting(
        "X-API-Key",
        doc="Request header whose API key is counted (hashed) in `api_key_usage_total`; empty: off.",
    )
    allow: tuple[str, ...] = setting(
        (),
        doc="CIDR networks allowed to scrape (client address of the ASGI scope); empty: everyone.",
        check=networks,
    )
    bearer_token: str = setting(
        "",
        doc="When set, scrapes must send `Authorization: Bearer <token>`.",
        secret=True,
    )
    port: int | None = setting(
        None,
        doc="Serve the exposition on this separate port instead of `path`.",
        check=_port,
    )
    host: str = setting("0.0.0.0", doc="Address the separate port binds to.")
    multiprocess_dir: str | None = setting(
        None,
        doc="Directory of prometheus-client's multiprocess mode (several workers); default: "
        "`$PROMETHEUS_MULTIPROC_DIR`; unset: single process.",
    )
    gzip: bool = setting(True, doc="Compress the exposition when the scraper accepts gzip.")
    exemplars: bool = setting(True, doc="Trace-id exemplars on the latency histogram when a span is active.")
    process_metrics: bool = setting(True, doc="Export the process collector (CPU, memory, file descriptors).")
    created_series: bool = setting(
        False,
        doc="Also export the `_created` series (the creation time of each counter and histogram child); "
        "only this app's exposition changes, not the process's other registries.",
    )
    own_endpoint_histograms: bool = setting(
        False,
        doc="Latency and size histograms for the suite's own endpoints (`/metrics`, `/health`...) too; "
        "off, they are only counted (`http_requests_total`, `http_errors_total`).",
    )
