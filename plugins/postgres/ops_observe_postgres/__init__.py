"""The ``postgres`` health check of ops_observe: psycopg, ``SELECT 1``, bounded in time.

Under asyncio it uses psycopg's async connection; under trio (whose loop psycopg's async
connection cannot use) the blocking connection runs in a worker thread, bounded by the same
libpq timeouts, so the check works wherever anyio does.

A distribution of its own so that the ops_observe core installs without a database driver; it is
registered in the entry-point group ``ops_observe.health_checks`` like any third party's check.
"""

from __future__ import annotations

import math
from typing import Any

import anyio.to_thread
import sniffio

from ops_observe.health import HealthCheck, ServiceUnavailable, UnexpectedResult
from ops_observe.plugins import import_from_string

__all__ = ["PostgresCheck"]
__version__ = "0.1.0"

# The pool statistics shown (psycopg_pool's get_stats() names); the counters since start are left out.
_POOL_STATS = ("pool_min", "pool_max", "pool_size", "pool_available", "requests_waiting")


class PostgresCheck(HealthCheck):
    """Connect, run ``SELECT 1`` (or ``query``) and expect one row; optionally show a pool's statistics.

    Args:
        dsn: libpq connection string or URL, e.g. ``postgresql://app:${DB_PASSWORD}@db/app``; its
            password never shows in an answer or a log line.
        pool: Dotted path (``myapp.db:pool``) of a ``psycopg_pool`` pool whose statistics are shown;
            without a ``dsn``, the query runs on a connection borrowed from this pool.
        query: The statement run; it must return a row.
        timeout: Seconds for connecting and for the statement (given by the runner).
    """

    def __init__(
        self, *, dsn: str | None = None, pool: str | None = None, query: str = "SELECT 1", timeout: float = 5.0
    ) -> None:
        if not dsn and not pool:
            raise ValueError("give a dsn, a pool, or both")
        self.dsn = dsn
        self.pool = pool
        self.query = query
        self.timeout = timeout

    async def check(self) -> dict[str, Any]:
        """Run the query once on a fresh connection (or the pool's); raise when unreachable or wrong."""
        if sniffio.current_async_library() == "asyncio":  # the driver's async client
            return await self._check_async()
        # Abandoned on the runner's timeout; the thread ends by libpq's own timeouts.
        return await anyio.to_thread.run_sync(self._check_blocking, abandon_on_cancel=True)

    def _connect_args(self) -> dict[str, Any]:
        # libpq counts connect_timeout in whole seconds (at least 2); the runner's own timeout still
        # bounds the whole check precisely.
        return {
            "connect_timeout": max(2, math.ceil(self.timeout)),
            "options": f"-c statement_timeout={int(self.timeout * 1000)}",
            "autocommit": True,
        }

    async def _check_async(self) -> dict[str, Any]:
        import psycopg  # the driver: imported only when a postgres check runs

        details: dict[str, Any] = {}
        pool: Any = import_from_string(self.pool) if self.pool else None
        try:
            if self.dsn:
                conn = await psycopg.AsyncConnection.connect(self.dsn, **self._connect_args())
                async with conn:
                    row = await (await conn.execute(self.query)).fetchone()
                    details["server_version"] = conn.info.server_version
            else:
                async with pool.connection(timeout=self.timeout) as conn:
                    row = await (await conn.execute(self.query)).fetchone()
        except psycopg.Error as exc:
            raise _unavailable(exc) from None
        return self._finish(row, pool, details)

    def _check_blocking(self) -> dict[str, Any]:
        import psycopg

        details: dict[str, Any] = {}
        pool: Any = import_from_string(self.pool) if self.pool else None
        try:
            if self.dsn:
                with psycopg.connect(self.dsn, **self._connect_args()) as conn:
                    row = conn.execute(self.query).fetchone()
                    details["server_version"] = conn.info.server_version
            else:  # a psycopg_pool.ConnectionPool: an async pool belongs to an asyncio loop
                with pool.connection(timeout=self.timeout) as conn:
                    row = conn.execute(self.query).fetchone()
        except psycopg.Error as exc:
            raise _unavailable(exc) from None
        return self._finish(row, pool, details)

    def _finish(self, row: Any, pool: Any, details: dict[str, Any]) -> dict[str, Any]:
        if row is None:
            raise UnexpectedResult(f"{self.query!r} returned no row")
        if pool is not None and hasattr(pool, "get_stats"):
            stats = pool.get_stats()
            details["pool"] = {k: stats[k] for k in _POOL_STATS if k in stats}
        return details


def _unavailable(exc: Exception) -> ServiceUnavailable:
    # The first line only: libpq appends hints that may repeat the connection string.
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ServiceUnavailable(f"{type(exc).__name__}: {message}")
