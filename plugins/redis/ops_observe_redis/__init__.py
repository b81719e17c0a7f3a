"""The ``redis`` health check of ops_observe: PING, optionally memory and client info.

Under asyncio it uses ``redis.asyncio``; under trio (which ``redis.asyncio`` cannot run on) the
blocking client runs in a worker thread, bounded by the same socket timeouts.

A distribution of its own so that the ops_observe core installs without the redis client; it is
registered in the entry-point group ``ops_observe.health_checks`` like any third party's check.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import sniffio

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
        if sniffio.current_async_library() == "asyncio":  # the driver's async client
            return await self._check_async()
        # Abandoned on the runner's timeout; the thread ends by its socket timeouts.
        return await anyio.to_thread.run_sync(self._check_blocking, abandon_on_cancel=True)

    def _client_args(self) -> dict[str, Any]:
        return {"socket_connect_timeout": self.timeout, "socket_timeout": self.timeout}

    async def _check_async(self) -> dict[str, Any]:
        from redis.asyncio import Redis  # the driver: imported only when a redis check runs
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError

        client = Redis.from_url(self.url, retry=Retry(NoBackoff(), 0), **self._client_args())
        try:
            if not await client.ping():
                raise UnexpectedResult("PING did not answer PONG")
            if not self.info:
                return {}
            return self._details(await client.info("memory"), await client.info("clients"))
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable(f"{type(exc).__name__}: {exc}") from None
        finally:
            await client.aclose()

    def _check_blocking(self) -> dict[str, Any]:
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError
        from redis.retry import Retry

        client = Redis.from_url(self.url, retry=Retry(NoBackoff(), 0), **self._client_args())
        try:
            if not client.ping():
                raise UnexpectedResult("PING did not answer PONG")
            if not self.info:
                return {}
            return self._details(client.info("memory"), client.info("clients"))
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable(f"{type(exc).__name__}: {exc}") from None
        finally:
            client.close()

    @staticmethod
    def _details(memory: dict[str, Any], clients: dict[str, Any]) -> dict[str, Any]:
        return {
            "memory": {k: memory[k] for k in _MEMORY if k in memory},
            "clients": {k: clients[k] for k in _CLIENTS if k in clients},
        }
