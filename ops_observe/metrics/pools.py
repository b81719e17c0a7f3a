"""Database pool gauges: ``db_connections_active/idle/max/waiting`` from a psycopg_pool or asyncpg pool.

The pool is read when ``/metrics`` is scraped (:meth:`PoolObserver.refresh`), not on a timer, so
an idle app costs nothing. Neither driver is imported: the pool is recognised by its methods.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ops_observe.metrics.catalog import Catalog

logger = logging.getLogger("ops_observe.metrics")

Stats = tuple[int, int, int, int]  # active, idle, max, waiting


def pool_reader(pool: Any) -> Callable[[Any], Stats]:
    """How to read ``pool``: psycopg_pool (``get_stats()``) or asyncpg (``get_size()``...)."""
    if callable(getattr(pool, "get_stats", None)) and hasattr(pool, "max_size"):
        return _psycopg
    if callable(getattr(pool, "get_idle_size", None)) and callable(getattr(pool, "get_size", None)):
        return _asyncpg
    raise TypeError(f"observe_pool() needs a psycopg_pool or asyncpg pool, got {type(pool).__name__}")


def _psycopg(pool: Any) -> Stats:
    stats = pool.get_stats()
    size = int(stats.get("pool_size", 0))
    idle = int(stats.get("pool_available", 0))
    return (
        size - idle,
        idle,
        int(getattr(pool, "max_size", stats.get("pool_max", 0))),
        int(stats.get("requests_waiting", 0)),
    )


def _asyncpg(pool: Any) -> Stats:
    size = int(pool.get_size())
    idle = int(pool.get_idle_size())
    return size - idle, idle, int(pool.get_max_size()), 0


class _Strong:
    """A strong reference for pools that cannot be referenced weakly; forgotten once the pool is closed."""

    __slots__ = ("pool",)

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def __call__(self) -> Any:
        return self.pool


def _closed(pool: Any) -> bool:
    is_closing = getattr(pool, "is_closing", None)  # asyncpg
    if callable(is_closing):
        return bool(is_closing())
    return getattr(pool, "closed", False) is True  # psycopg_pool


class PoolObserver:
    """The pools of one catalog, held weakly where possible, read into the gauges on :meth:`refresh`.

    A pool that is closed or gone reports zeros once and is forgotten.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.pools: dict[str, tuple[Callable[[], Any], Callable[[Any], Stats]]] = {}

    def add(self, pool: Any, name: str) -> None:
        reader = pool_reader(pool)
        try:
            ref: Callable[[], Any] = weakref.ref(pool)
        except TypeError:  # asyncpg's Pool has __slots__ without a weak reference slot
            ref = _Strong(pool)
        self.pools[name] = (ref, reader)
        self.refresh()

    def refresh(self) -> None:
        """Read every observed pool; a pool that is closed or gone reports zeros and is forgotten."""
        m = self.catalog.metrics
        for name, (ref, read) in list(self.pools.items()):
            pool = ref()
            if pool is None or _closed(pool):
                del self.pools[name]
                stats: Stats = (0, 0, 0, 0)
            else:
                try:
                    stats = read(pool)
                except Exception:  # a closed pool must not break the scrape
                    logger.warning("could not read the statistics of pool %s", name, exc_info=True)
                    continue
            active, idle, size, waiting = stats
            m["db_connections_active"].labels(pool=name).set(active)
            m["db_connections_idle"].labels(pool=name).set(idle)
            m["db_connections_max"].labels(pool=name).set(size)
            m["db_connections_waiting"].labels(pool=name).set(waiting)


def observe_pool(catalog: Catalog, pool: Any, name: str = "default") -> None:
    """Report ``pool`` under ``pool=name`` in ``catalog``'s gauges, read at each scrape."""
    observer: PoolObserver | None = catalog.__dict__.get("pool_observer")
    if observer is None:
        observer = catalog.__dict__["pool_observer"] = PoolObserver(catalog)
    observer.add(pool, name)


def refresh_pools(catalog: Catalog) -> None:
    """Read the pools of ``catalog``, if any were observed."""
    observer: PoolObserver | None = catalog.__dict__.get("pool_observer")
    if observer is not None:
        observer.refresh()
