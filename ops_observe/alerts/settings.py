"""Settings of the Prometheus alert-rule packs."""

from __future__ import annotations

from dataclasses import dataclass

from ops_observe.schema import setting, unique


@dataclass(frozen=True)
class AlertsSettings:
    """``[ops_observe.alerts]``: which alert packs `ops-observe alerts export` writes."""

    packs: tuple[str, ...] = setting(
        ("api", "billing", "security", "infrastructure", "business"),
        doc="Entry-point names in group `ops_observe.alert_packs`.",
        check=unique,
    )
