"""The root settings object: the service's identity, the middleware list, and one section per feature.

The sections are not fields of this class: each feature in the entry-point group
``ops_observe.features`` declares its own (``SETTINGS``, a settings dataclass), read as
``[ops_observe.<feature name>]``, ours exactly as a third party's. ``settings.tracing`` is the
section of the feature named ``tracing``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ops_observe import plugins
from ops_observe.schema import metric_name, non_empty, setting, unique

_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]+")


@dataclass(frozen=True)
class Settings:
    """``[ops_observe]``: everything the suite reads, validated and immutable."""

    service_name: str = setting("app", doc="Name of the service, in logs, spans and health answers.", check=non_empty)
    namespace: str | None = setting(
        None, doc="Metric name prefix; default: `service_name` with every other character made `_`.", check=metric_name
    )
    version: str = setting("dev", doc="Version of the service, e.g. `${APP_VERSION:-dev}`.")
    environment: str = setting("development", doc="Deployment environment, e.g. `production`.")
    commit: str = setting("unknown", doc="Source commit the service was built from, e.g. `${GIT_COMMIT:-unknown}`.")
    build_date: str = setting("unknown", doc="When the service was built, e.g. `${BUILD_DATE:-unknown}`.")
    middleware: tuple[str, ...] = setting(
        ("correlation", "tracing", "logging", "metrics"),
        doc="Middleware aliases (group `ops_observe.middleware`) or dotted paths; first = outermost. "
        "Tracing outside logging and metrics puts trace ids in access-log lines and exemplars.",
        check=unique,
    )
    sections: Mapping[str, Any] = dataclasses.field(default_factory=lambda: default_sections())
    """Each feature's section by feature name (``[ops_observe.<name>]``)."""
    source: str = dataclasses.field(default="<defaults>", compare=False)
    """Where these settings came from (a file name, ``<dict>`` or ``<defaults>``), for error messages."""

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("sections")
        if sections is not None and name in sections:
            return sections[name]
        raise AttributeError(f"settings have no key or section {name!r}")

    @property
    def metric_namespace(self) -> str:
        """The metric name prefix: ``namespace``, or one derived from ``service_name``."""
        if self.namespace:
            return self.namespace
        derived = _NOT_NAME.sub("_", self.service_name).strip("_").lower()
        return derived if derived and not derived[0].isdigit() else f"app_{derived}"


def section_classes() -> dict[str, type]:
    """The settings dataclass of every installed feature that declares one, by feature name, sorted."""
    found: dict[str, type] = {}
    for spec in plugins.find(plugins.FEATURES):
        cls = getattr(spec.load(), "SETTINGS", None)
        if cls is not None:
            found[spec.name] = cls
    return found


def default_sections() -> Mapping[str, Any]:
    """Every feature's section at its defaults."""
    return MappingProxyType({name: cls() for name, cls in section_classes().items()})
