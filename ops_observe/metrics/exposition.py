"""The ``/metrics`` endpoint: access rules, content negotiation, gzip; as ASGI or on its own port.

:class:`Exposition` decides and renders; :class:`MetricsEndpoint` serves it inside the wrapped app,
:class:`MetricsServer` on a separate port (a small threaded WSGI server, as prometheus-client's
``start_http_server``), both with the same rules.
"""

from __future__ import annotations

import gzip
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import anyio.to_thread
from prometheus_client.exposition import ThreadingWSGIServer, choose_encoder, gzip_accepted
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ops_observe.access import AccessGuard
from ops_observe.types import Receive, Scope, Send

logger = logging.getLogger("ops_observe.metrics")

Rendered = tuple[int, list[tuple[str, str]], bytes]
_REASONS = {200: "OK", 403: "Forbidden", 405: "Method Not Allowed"}
FORBIDDEN = b"403 Forbidden: this client may not read the metrics\n"


_CREATED_TYPES = frozenset({"counter", "histogram", "summary"})


class WithoutCreated(Collector):
    """``collector``'s metrics without the ``_created`` samples of counters, histograms and summaries.

    prometheus-client's own switch, ``disable_created_metrics()``, changes every registry of the
    process; filtering at exposition changes only this app's. In the OpenMetrics format
    ``_created`` is optional, so the output stays valid; a gauge whose own name ends in
    ``_created`` is left alone (only a family's ``<name>_created`` sample is dropped).
    """

    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def collect(self) -> Iterable[Metric]:
        for metric in self.collector.collect():
            if metric.type in _CREATED_TYPES:
                created = metric.name + "_created"
                kept = [sample for sample in metric.samples if sample.name != created]
                if len(kept) != len(metric.samples):
                    # A copy: a custom collector may hand out the same Metric object at every scrape.
                    copy = Metric(metric.name, metric.documentation, metric.type, metric.unit)
                    copy.samples = kept
                    metric = copy
            yield metric


class Exposition:
    """Renders ``collector`` for one scrape, after the access rules.

    Args:
        collector: What to expose (the app's registry, or the multiprocess view of it).
        allow: CIDR networks allowed to scrape; empty: every client.
        bearer_token: Required ``Authorization: Bearer`` token; empty: none.
        compress: gzip the body when the scraper accepts it.
        before_scrape: Called before rendering (pool gauges, sweeping dead workers' files).
    """

    def __init__(
        self,
        collector: Collector,
        *,
        allow: Sequence[str] = (),
        bearer_token: str = "",
        compress: bool = True,
        before_scrape: Iterable[Callable[[], None]] = (),
    ) -> None:
        self.collector = collector
        self.guard = AccessGuard(allow, bearer_token)
        self.compress = compress
        self.before_scrape = tuple(before_scrape)

    def render(self, method: str, client: str | None, authorization: bytes, accept: str, encoding: str) -> Rendered:
        """Status, headers and body of the answer to one scrape."""
        if method not in ("GET", "HEAD"):
            return (
                405,
                [("Allow", "GET, HEAD"), ("Content-Type", "text/plain; charset=utf-8")],
                b"405 Method Not Allowed\n",
            )
        if not self.guard.allows(client, authorization):
            return 403, [("Content-Type", "text/plain; charset=utf-8")], FORBIDDEN
        for hook in self.before_scrape:
            hook()
        encoder, content_type = choose_encoder(accept)
        body = encoder(self.collector)
        headers = [("Content-Type", content_type), ("Vary", "Accept, Accept-Encoding")]
        if self.compress and gzip_accepted(encoding):
            body = gzip.compress(body, compresslevel=6)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        if method == "HEAD":
            body = b""
        return 200, headers, body


class MetricsEndpoint:
    """The exposition as an ASGI app, for :meth:`Suite.add_endpoint`.

    The answer is rendered in a worker thread (anyio's, so under asyncio and trio alike): reading
    ``/proc`` for the process collector, the scrape hooks, generating the text and gzip are all
    blocking work that would otherwise stall every other request of the event loop.
    """

    def __init__(self, exposition: Exposition) -> None:
        self.exposition = exposition

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        authorization = b""
        accept = encoding = ""
        for name, value in scope.get("headers", ()):
            lowered = name.lower()
            if lowered == b"authorization":
                authorization = value
            elif lowered == b"accept":
                accept = value.decode("latin-1")
            elif lowered == b"accept-encoding":
                encoding = value.decode("latin-1")
        client = scope.get("client")
        status, headers, body = await anyio.to_thread.run_sync(
            self.exposition.render,
            scope["method"],
            client[0] if client else None,
            authorization,
            accept,
            encoding,
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood stderr."""


class MetricsServer:
    """The exposition on a separate port, in a daemon thread; :meth:`start` and :meth:`stop`."""

    def __init__(self, exposition: Exposition, host: str, port: int) -> None:
        self.exposition = exposition
        self.host = host
        self.port = port
        self.server: Any = None
        self.thread: threading.Thread | None = None

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """The WSGI app of the port."""
        status, headers, body = self.exposition.render(
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("REMOTE_ADDR"),
            environ.get("HTTP_AUTHORIZATION", "").encode("latin-1"),
            environ.get("HTTP_ACCEPT", ""),
            environ.get("HTTP_ACCEPT_ENCODING", ""),
        )
        start_response(f"{status} {_REASONS.get(status, '')}", headers)
        return [body]

    def start(self) -> bool:
        """Bind and serve; ``False`` when the port is taken (another worker serves it)."""
        try:
            self.server = make_server(self.host, self.port, self.wsgi, ThreadingWSGIServer, handler_class=_QuietHandler)
        except OSError as exc:
            logger.warning("metrics port %s:%s not served by this process: %s", self.host, self.port, exc)
            return False
        self.thread = threading.Thread(target=self.server.serve_forever, name="ops-observe-metrics", daemon=True)
        self.thread.start()
        return True

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.thread is not None:
            self.thread.join(timeout=5)
            self.thread = None
