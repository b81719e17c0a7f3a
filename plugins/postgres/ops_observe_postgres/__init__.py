"""The ``postgres`` health check of ops_observe: psycopg (async), ``SELECT 1``, bounded in time.

A distribution of its own so that the ops_observe core installs without a database driver; it is
registered in the entry-point group ``ops_observe.health_checks`` like any third party's check.
"""

from __future__ import annotations

import math
from typing import Any

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
        import psycopg  # the driver: imported only when a postgres check runs

        details: dict[str, Any] = {}
        pool: Any = import_from_string(self.pool) if self.pool else None
        try:
            if self.dsn:
                # libpq counts connect_timeout in whole seconds (at least 2); the runner's own
                # timeout still bounds the whole check precisely.
                conn = await psycopg.AsyncConnection.connect(
                    self.dsn,
                    connect_timeout=max(2, math.ceil(self.timeout)),
                    options=f"-c statement_timeout={int(self.timeout * 1000)}",
                    autocommit=True,
                )
                async with conn:
                    row = await (await conn.execute(self.query)).fetchone()
                    details["server_version"] = conn.info.server_version
            else:
                async with pool.connection(timeout=self.timeout) as conn:
                    row = await (await conn.execute(self.query)).fetchone()
        except psycopg.Error as exc:
            # The first line only: libpq appends hints that may repeat the connection string.
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ServiceUnavailable(f"{type(exc).__name__}: {message}") from None
        if row is None:
            raise UnexpectedResult(f"{self.query!r} returned no row")
        if pool is not None and hasattr(pool, "get_stats"):
            stats = pool.get_stats()
            details["pool"] = {k: stats[k] for k in _POOL_STATS if k in stats}
        return details
