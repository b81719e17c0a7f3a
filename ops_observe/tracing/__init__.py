"""The tracing feature of ops_observe: OpenTelemetry spans per request, exported in the background.

- :mod:`~ops_observe.tracing.feature`: ``install(suite)``, one tracer provider per wrapped app;
- :mod:`~ops_observe.tracing.config`: the settings with the ``OTEL_*`` environment filled in;
- :mod:`~ops_observe.tracing.provider`: provider, exporters, propagators, auto-instrumentation;
- :mod:`~ops_observe.tracing.sampling`: the error-keeping sampling hand-off;
- :mod:`~ops_observe.tracing.export`: the bounded export queue and its drop counts;
- :mod:`~ops_observe.tracing.http`: header reading and query cleaning for the middleware;
- :mod:`~ops_observe.tracing.api`: the public decorators and helpers.

The middleware itself is :mod:`ops_observe.tracing.middleware`; the guide is ``docs/tracing.md``.
"""
