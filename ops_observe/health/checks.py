"""The core's own checks: ``http``, ``tcp``, ``disk`` and ``memory``.

They are registered in the core's setup.cfg under ``ops_observe.health_checks``, exactly as a third
party's check would be. Each constructor's keyword arguments are the check's options; a
``timeout`` argument receives the check's effective timeout from the settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from ops_observe.health.base import (
    HealthCheck,
    ServiceUnavailable,
    ServiceWarning,
    UnexpectedResult,
)

__all__ = ["DiskCheck", "HttpCheck", "MemoryCheck", "TcpCheck"]

_MB = 1024 * 1024


class HttpCheck(HealthCheck):
    """GET (or another method on) a URL and expect a status, optionally a text in the body.

    Args:
        url: The URL to request, e.g. ``http://keycloak:8080/health/ready``.
        expected_status: The status (or list of statuses) a healthy service answers.
        method: The HTTP method.
        headers: Extra request headers (values of secret-named ones are masked when shown).
        contains: A text the body must contain, e.g. ``"UP"``.
        verify: Verify TLS certificates.
        timeout: Seconds for the whole request (given by the runner).
    """

    def __init__(
        self,
        *,
        url: str,
        expected_status: int | Sequence[int] = 200,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        contains: str | None = None,
        verify: bool = True,
        timeout: float = 5.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        self.url = url
        self.expected_status = (expected_status,) if isinstance(expected_status, int) else tuple(expected_status)
        self.method = method.upper()
        self.headers = dict(headers or {})
        self.contains = contains
        self.verify = verify
        self.timeout = timeout

    async def check(self) -> dict[str, Any]:
        """Request the URL once; fail on a connection error, an unexpected status or a missing text."""
        import httpx  # imported here: only apps with an http check pay for it

        try:
            async with httpx.AsyncClient(timeout=self.timeout, verify=self.verify) as client:
                response = await client.request(self.method, self.url, headers=self.headers)
        except httpx.TimeoutException as exc:
            raise ServiceUnavailable(f"no answer within {self.timeout:g} s ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"request failed: {type(exc).__name__}: {exc}") from None
        details = {"status_code": response.status_code}
        if response.status_code not in self.expected_status:
            expected = " or ".join(str(s) for s in self.expected_status)
            raise UnexpectedResult(f"answered {response.status_code}, expected {expected}", details=details)
        if self.contains is not None and self.contains not in response.text:
            raise UnexpectedResult(f"the body does not contain {self.contains!r}", details=details)
        return details


class TcpCheck(HealthCheck):
    """Open a TCP connection; optionally send a line and expect an answer starting with a text.

    Args:
        host: Host name or address.
        port: TCP port.
        send: Text sent once connected (e.g. ``"PING\\r\\n"``); none by default.
        expect: Text the first answer must start with (e.g. ``"+PONG"``); needs nothing sent for a
            banner (SMTP, SSH).
        timeout: Seconds for connecting and the answer (given by the runner).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        send: str | None = None,
        expect: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        if not 0 < port < 65536:
            raise ValueError(f"port must be between 1 and 65535, got {port}")
        self.host = host
        self.port = port
        self.send = send.encode() if send else None
        self.expect = expect.encode() if expect else None
        self.timeout = timeout

    async def check(self) -> dict[str, Any]:
        """Connect (and talk) once; fail when refused, unanswered or answered wrongly."""
        try:
            with anyio.fail_after(self.timeout):
                stream = await anyio.connect_tcp(self.host, self.port)
        except TimeoutError:
            raise ServiceUnavailable(f"connecting to {self.host}:{self.port} timed out") from None
        except OSError as exc:
            # anyio tries every address and raises "All connection attempts failed" from the last
            # attempt's error, which is the one that tells (e.g. "Connection refused").
            cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
            reason = cause.strerror or cause
            raise ServiceUnavailable(f"cannot connect to {self.host}:{self.port}: {reason}") from None
        async with stream:
            try:
                if self.send:
                    await stream.send(self.send)
                if self.expect:
                    try:
                        with anyio.fail_after(self.timeout):
                            answer = await stream.receive(len(self.expect))
                    except TimeoutError:
                        raise ServiceUnavailable(f"{self.host}:{self.port} accepted but did not answer") from None
                    except anyio.EndOfStream:
                        answer = b""
                    if not answer.startswith(self.expect):
                        raise UnexpectedResult(f"{self.host}:{self.port} answered {answer[:40]!r}")
            except (anyio.BrokenResourceError, OSError) as exc:
                raise ServiceUnavailable(f"{self.host}:{self.port} dropped the connection: {exc}") from None
        return {"address": f"{self.host}:{self.port}"}


class DiskCheck(HealthCheck):
    """Free space on the file system holding a path: warn below one threshold, fail below another.

    Args:
        path: A path on the file system to watch.
        min_free_percent: Fail when less than this share of the disk is free.
        warn_free_percent: Warn when less than this share is free (``None``: never warn).
        min_free_mb: Fail when fewer than this many MiB are free (``None``: no absolute floor).
    """

    def __init__(
        self,
        *,
        path: str = "/",
        min_free_percent: float = 5.0,
        warn_free_percent: float | None = 10.0,
        min_free_mb: float | None = None,
    ) -> None:
        for name, value in (
            ("min_free_percent", min_free_percent),
            ("warn_free_percent", warn_free_percent),
        ):
            if value is not None and not 0 <= value <= 100:
                raise ValueError(f"{name} must be between 0 and 100, got {value}")
        self.path = path
        self.min_free_percent = min_free_percent
        self.warn_free_percent = warn_free_percent
        self.min_free_mb = min_free_mb

    def check(self) -> dict[str, Any]:
        """Read the disk usage (a plain ``def``: a stuck network mount blocks a thread, not the loop)."""
        import psutil

        try:
            usage = psutil.disk_usage(self.path)
        except OSError as exc:
            raise ServiceUnavailable(f"cannot read {self.path}: {exc.strerror or exc}") from None
        free_percent = round(100.0 * usage.free / usage.total, 2) if usage.total else 0.0
        details = {
            "path": self.path,
            "free_mb": round(usage.free / _MB, 1),
            "total_mb": round(usage.total / _MB, 1),
            "free_percent": free_percent,
        }
        if free_percent < self.min_free_percent:
            raise ServiceUnavailable(
                f"{free_percent}% free, below {self.min_free_percent:g}%",
                details=details,
            )
        if self.min_free_mb is not None and usage.free / _MB < self.min_free_mb:
            raise ServiceUnavailable(
                f"{details['free_mb']} MiB free, below {self.min_free_mb:g} MiB",
                details=details,
            )
        if self.warn_free_percent is not None and free_percent < self.warn_free_percent:
            raise ServiceWarning(
                f"{free_percent}% free, below {self.warn_free_percent:g}%",
                details=details,
            )
        return details


class MemoryCheck(HealthCheck):
    """Resident memory (RSS) of this process: warn above one threshold, fail above another.

    Args:
        max_rss_mb: Fail when the process uses more than this many MiB.
        warn_rss_mb: Warn above this many MiB (``None``: never warn).
    """

    def __init__(self, *, max_rss_mb: float = 2048.0, warn_rss_mb: float | None = None) -> None:
        if max_rss_mb <= 0:
            raise ValueError(f"max_rss_mb must be greater than 0, got {max_rss_mb}")
        self.max_rss_mb = max_rss_mb
        self.warn_rss_mb = warn_rss_mb

    async def check(self) -> dict[str, Any]:
        """Read the process's RSS (cheap, so it stays on the loop)."""
        import psutil

        rss_mb = round(psutil.Process(os.getpid()).memory_info().rss / _MB, 1)
        details = {"rss_mb": rss_mb, "max_rss_mb": self.max_rss_mb}
        if rss_mb > self.max_rss_mb:
            raise ServiceUnavailable(f"RSS {rss_mb} MiB, above {self.max_rss_mb:g} MiB", details=details)
        if self.warn_rss_mb is not None and rss_mb > self.warn_rss_mb:
            raise ServiceWarning(f"RSS {rss_mb} MiB, above {self.warn_rss_mb:g} MiB", details=details)
        return details
