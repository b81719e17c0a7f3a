"""Installs the metrics feature into a wrapped app's suite.

``install(suite)`` creates the app's :class:`~ops_observe.metrics.catalog.Catalog` against
``suite.registry`` (kept as ``suite.state["metrics"]`` and made the target of
``ops_observe.metrics.<name>``), sets ``<ns>_build_info``, adds the process collector, sets up
multiprocess mode when a directory is configured, and serves the exposition at
``settings.metrics.path`` (or on ``settings.metrics.port``), without the ``_created`` series
unless ``settings.metrics.created_series``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from ops_observe.metrics import SCRAPE_HOOKS, STATE_KEY, multiprocess
from ops_observe.metrics.catalog import Catalog, random_key
from ops_observe.metrics.exposition import Exposition, MetricsEndpoint, MetricsServer, WithoutCreated
from ops_observe.metrics.pools import refresh_pools
from ops_observe.metrics.settings import MetricsSettings
from ops_observe.suite import Suite

SETTINGS = MetricsSettings
"""The ``[ops_observe.metrics]`` section."""


def install(suite: Suite) -> None:
    """Register the metrics endpoints and lifespan hooks of one wrapped app."""
    settings = suite.settings
    section = settings.metrics
    if not section.enabled and "metrics" not in settings.middleware:
        return  # neither served nor recorded: nothing to build
    directory = section.multiprocess_dir or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    mp = multiprocess.setup(directory) if directory else None
    catalog = Catalog(suite.registry, settings.metric_namespace, section, mp.hash_key if mp else random_key())
    catalog.multiprocess = mp is not None
    catalog.build_info.labels(
        service=settings.service_name,
        version=settings.version,
        commit=settings.commit,
        build_date=settings.build_date,
        environment=settings.environment,
    ).set(1)
    if section.process_metrics and mp is None:
        ProcessCollector(registry=suite.registry)
    suite.state[STATE_KEY] = catalog

    if section.enabled is False:
        return
    collector: Collector = suite.registry
    scrape_hooks: list[Callable[[], None]] = suite.state.setdefault(SCRAPE_HOOKS, [])

    def features_hooks() -> None:
        for hook in scrape_hooks:  # read at each scrape: a feature installed after this one counts too
            hook()

    hooks = [features_hooks, lambda: refresh_pools(catalog)]
    if mp is not None:
        collector = mp.collector(suite.registry, section.process_metrics)
        suite.registry.register(mp.directory_collector(settings.metric_namespace))
        hooks.append(mp.sweep)
    if not section.created_series:
        collector = WithoutCreated(collector)
    exposition = Exposition(
        collector,
        allow=section.allow,
        bearer_token=section.bearer_token,
        compress=section.gzip,
        before_scrape=hooks,
    )
    suite.state["metrics.exposition"] = exposition
    if section.port is None:
        suite.add_endpoint(section.path, MetricsEndpoint(exposition), setting="metrics.path")
    else:
        server = MetricsServer(exposition, section.host, section.port)
        suite.state["metrics.server"] = server

        def start() -> None:
            server.start()

        suite.on_startup(start)
        suite.on_shutdown(server.stop)


def catalog_of(suite: Suite) -> Catalog:
    """The catalog of ``suite``; installs the feature when it has not been (a suite built by hand)."""
    catalog = suite.state.get(STATE_KEY)
    if catalog is None:
        install(suite)
        catalog = suite.state[STATE_KEY]
    assert isinstance(catalog, Catalog)
    return catalog
