"""The ``redis`` health check of ops_observe: PING, optionally memory and client info.

A distribution of its own so that the ops_observe core installs without the redis client; it is
registered in the entry-point group ``ops_observe.health_checks`` like any third party's check.
"""

from __future__ import annotations

from typing import Any

from ops_observe.health import HealthCheck, ServiceUnavailable, UnexpectedResult

__all__ = ["RedisCheck"]
__version__ = "0.1.0"

_MEMORY = ("used_memory", "used_memory_human", "maxmemory", "mem_fragmentation_ratio")
_CLIENTS = ("connected_clients", "blocked_clients", "maxclients")


class RedisCheck(HealthCheck):
    """PING the server and expect PONG; optionally show its memory and client figures.

    Args:
        url: Redis URL, e.g. ``redis://:${REDIS_PASSWORD}@cache:6379/0``; its password never shows.
        info: Also read ``INFO memory`` and ``INFO clients`` and show the main figures.
        timeout: Seconds for connecting and for each command (given by the runner).
    """

    def __init__(self, *, url: str = "redis://localhost:6379/0", info: bool = False, timeout: float = 5.0) -> None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"url must start with redis://, rediss:// or unix://, got {url!r}")
        self.url = url
        self.info = info
        self.timeout = timeout

    async def check(self) -> dict[str, Any]:
        """PING once on a fresh connection, without retries: a probe must tell the truth now."""
        from redis.asyncio import Redis  # the driver: imported only when a redis check runs
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError

        client = Redis.from_url(
            self.url,
            socket_connect_timeout=self.timeout,
            socket_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),
        )
        details: dict[str, Any] = {}
        try:
            if not await client.ping():
                raise UnexpectedResult("PING did not answer PONG")
            if self.info:
                memory = await client.info("memory")
                clients = await client.info("clients")
                details["memory"] = {k: memory[k] for k in _MEMORY if k in memory}
                details["clients"] = {k: clients[k] for k in _CLIENTS if k in clients}
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable(f"{type(exc).__name__}: {exc}") from None
        finally:
            await client.aclose()
        return details
