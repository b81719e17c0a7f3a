"""The first-party alert packs, one module each, registered in group ``ops_observe.alert_packs``.

Each module's ``pack(context)`` returns its rule groups; every alert is one
:meth:`~ops_observe.alerts.context.PackBuilder.alert` call on the metrics of the catalog
(:mod:`ops_observe.metrics.specs`), so a renamed metric breaks the consistency test, not a pager.
"""
