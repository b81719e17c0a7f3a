"""The alerts feature: its settings section. Rule packs are exported by the CLI, not served."""

from __future__ import annotations

from ops_observe import plugins
from ops_observe.alerts.settings import AlertsSettings
from ops_observe.errors import SettingsError
from ops_observe.root import Settings
from ops_observe.suite import Suite

SETTINGS = AlertsSettings
"""The ``[ops_observe.alerts]`` section."""


def validate(settings: Settings) -> None:
    """Every name in ``alerts.packs`` is an installed pack, and every alert name the section uses
    (``rules.NAME``, ``disabled``, a rule's ``check``) exists, with "did you mean" otherwise.

    Part of :func:`ops_observe.settings.validate`, run by ``wrap()`` and every ``ops-observe``
    command. Pack names are read from the entry points' metadata; the packs themselves are
    imported and built (:func:`ops_observe.alerts.export.validate`) only when the section names
    alerts, so that wrapping an app with the default alert settings imports no pack.
    """
    from ops_observe.alerts.export import UNKNOWN_PACK, _hint
    from ops_observe.alerts.export import validate as validate_rules

    installed = [spec.name for spec in plugins.find(plugins.ALERT_PACKS)]
    for index, name in enumerate(settings.alerts.packs):
        if name not in installed:
            problem = UNKNOWN_PACK.format(name=name, hint=_hint(name, installed))
            raise SettingsError(settings.source, f"alerts.packs[{index}]", problem)
    if settings.alerts.rules or settings.alerts.disabled:
        validate_rules(settings)


def install(suite: Suite) -> None:
    """Nothing to install into a wrapped app: alert rules run in Prometheus, not in the process.

    The rules are checked against the packs by ``ops-observe alerts export`` rather than here, so
    that wrapping an app never imports the packs.
    """
