"""The alerts feature: Prometheus rule packs generated from the metric catalog (``[ops_observe.alerts]``).

Packs are found in the entry-point group ``ops_observe.alert_packs`` (ours in :mod:`.packs`);
each is given an :class:`~.context.AlertContext` and returns :mod:`.rules` objects.
:mod:`.export` builds the enabled packs' rules from the settings and writes them as a
Prometheus rule file or a ``PrometheusRule`` resource; :mod:`.command` is ``ops-observe alerts
export`` and ``ops-observe alerts list``.
"""
