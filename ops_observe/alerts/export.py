"""From settings to Prometheus rules: find the packs, build their rules, apply the overrides, write YAML.

Packs are the entry points of group ``ops_observe.alert_packs`` named in ``alerts.packs``, ours
exactly as a third party's. Every public function validates the alert settings first: an
unknown pack, rule or disabled name is a :class:`~ops_observe.errors.SettingsError` naming the
key, with "did you mean".
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from ops_observe import plugins
from ops_observe.alerts.context import AlertContext
from ops_observe.alerts.rules import Alert, RuleGroup
from ops_observe.alerts.settings import RuleSettings
from ops_observe.errors import PluginError, SettingsError
from ops_observe.root import Settings

__all__ = ["AlertContext", "alert_context", "alerts", "render", "rule_groups", "validate"]

Format = Literal["prometheus", "operator"]
FORMATS: tuple[Format, ...] = ("prometheus", "operator")

# Message templates, imported by the tests.
UNKNOWN_PACK = "no alert pack named {name!r} is installed{hint}"
UNKNOWN_RULE = "no alert named {name!r} in the enabled packs{hint}"
UNKNOWN_CHECK = "no health check named {name!r} in health.checks{hint}"
NOT_A_BUCKET = "{value:g} is not a bound of the latency histogram (metrics.buckets: {buckets})"
NO_THRESHOLD = "alert {name!r} (pack {pack!r}) has no threshold to override"
DUPLICATE_ALERT = "alert {name!r} is defined twice, by pack {first!r} and by pack {second!r}"
NOT_GROUPS = "alert pack {name!r} returned {value!r}, not rule groups"

OPERATOR_API = "monitoring.coreos.com/v1"


def alert_context(settings: Settings) -> AlertContext:
    """The context packs are built with: namespace, selectors, settings, health checks, buckets."""
    context = _context(settings)
    _build(context)  # validates the rule and disabled names against the packs
    return context


def validate(settings: Settings) -> None:
    """Raise :class:`SettingsError` for alert settings the packs cannot honour."""
    _build(_context(settings))


def rule_groups(settings: Settings) -> list[RuleGroup]:
    """The rule groups of the enabled packs, overrides applied; disabled alerts kept, flagged."""
    return _build(_context(settings))


def alerts(settings: Settings) -> list[Alert]:
    """Every alert of the enabled packs, in pack order; disabled ones included (``enabled=False``)."""
    return [rule for group in rule_groups(settings) for rule in group.rules if isinstance(rule, Alert)]


def render(settings: Settings, format: Format = "prometheus") -> str:
    """The enabled rules as YAML: a Prometheus rule file, or a ``PrometheusRule`` resource."""
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    groups = [group.to_prometheus() for group in rule_groups(settings)]
    groups = [group for group in groups if group["rules"]]
    if format == "prometheus":
        return to_yaml({"groups": groups})
    name = _dns_name(settings.service_name)
    resource = {
        "apiVersion": OPERATOR_API,
        "kind": "PrometheusRule",
        "metadata": {
            "name": f"{name}-rules",
            "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "ops-observe"},
        },
        "spec": {"groups": groups},
    }
    return to_yaml(resource)


# -- building -----------------------------------------------------------------------------------


def _context(settings: Settings) -> AlertContext:
    section = settings.alerts
    source = settings.source
    health = settings.health
    checks = {name: check.plugin for name, check in health.checks.items()}
    for name, rule in section.rules.items():
        if rule.check is not None and rule.check not in checks:
            hint = _hint(rule.check, list(checks))
            raise SettingsError(source, f"alerts.rules.{name}.check", UNKNOWN_CHECK.format(name=rule.check, hint=hint))
    buckets = tuple(settings.metrics.buckets)
    if section.slo.latency_threshold not in buckets:
        shown = ", ".join(f"{b:g}" for b in buckets)
        problem = NOT_A_BUCKET.format(value=section.slo.latency_threshold, buckets=shown)
        raise SettingsError(source, "alerts.slo.latency_threshold", problem)
    return AlertContext(
        settings=settings,
        ns=settings.metric_namespace,
        alerts=section,
        slo=section.slo,
        health_checks=checks,
        latency_buckets=buckets,
        suite_paths=_suite_paths(settings),
        tracing=settings.tracing.enabled if settings.tracing.enabled is not None else "tracing" in settings.middleware,
        id_labels=settings.metrics.id_labels != "drop",
    )


def _suite_paths(settings: Settings) -> tuple[str, ...]:
    """The paths of the suite's own endpoints, as they appear in the ``endpoint`` label."""
    paths: list[str] = []
    health = settings.health
    if health.enabled:
        base = health.path.rstrip("/")
        paths += [health.path, f"{base}/ready", f"{base}/detailed"]
        paths += [p for p in (health.livez_path, health.readyz_path) if p]
    if settings.metrics.port is None:
        paths.append(settings.metrics.path)
    return tuple(dict.fromkeys(paths))


def _packs(settings: Settings) -> list[tuple[str, Any]]:
    installed = [spec.name for spec in plugins.find(plugins.ALERT_PACKS)]
    found = []
    for index, name in enumerate(settings.alerts.packs):
        if name not in installed:
            hint = _hint(name, installed)
            raise SettingsError(settings.source, f"alerts.packs[{index}]", UNKNOWN_PACK.format(name=name, hint=hint))
        found.append((name, plugins.get(plugins.ALERT_PACKS, name).load()))
    return found


def _build(context: AlertContext) -> list[RuleGroup]:
    settings = context.settings
    groups: list[RuleGroup] = []
    owner: dict[str, str] = {}
    for pack_name, pack in _packs(settings):
        built = pack(context)
        if not isinstance(built, Iterable) or isinstance(built, (str, bytes, Mapping)):
            raise PluginError(NOT_GROUPS.format(name=pack_name, value=built))
        for group in built:
            if not isinstance(group, RuleGroup):
                raise PluginError(NOT_GROUPS.format(name=pack_name, value=group))
            for rule in group.rules:
                if isinstance(rule, Alert):
                    if rule.name in owner:
                        problem = DUPLICATE_ALERT.format(name=rule.name, first=owner[rule.name], second=pack_name)
                        raise PluginError(problem)
                    owner[rule.name] = pack_name
            groups.append(group)
    _check_names(settings, sorted(owner))
    return [_apply(group, context) for group in groups]


def _check_names(settings: Settings, names: list[str]) -> None:
    section = settings.alerts
    for name in section.rules:
        if name not in names:
            hint = _hint(name, names)
            raise SettingsError(settings.source, f"alerts.rules.{name}", UNKNOWN_RULE.format(name=name, hint=hint))
    for index, name in enumerate(section.disabled):
        if name not in names:
            hint = _hint(name, names)
            raise SettingsError(settings.source, f"alerts.disabled[{index}]", UNKNOWN_RULE.format(name=name, hint=hint))


def _apply(group: RuleGroup, context: AlertContext) -> RuleGroup:
    rules = tuple(_override(rule, context) if isinstance(rule, Alert) else rule for rule in group.rules)
    return dataclasses.replace(group, rules=rules)


def _override(alert: Alert, context: AlertContext) -> Alert:
    """The settings' overrides of one alert: ``for``, severity, labels, enabled, ``alerts.disabled``."""
    section = context.alerts
    rule = section.rules.get(alert.name, RuleSettings())
    if rule.threshold is not None and alert.threshold != rule.threshold:
        problem = NO_THRESHOLD.format(name=alert.name, pack=alert.pack)
        raise SettingsError(context.settings.source, f"alerts.rules.{alert.name}.threshold", problem)
    enabled, reason = alert.enabled, alert.disabled_reason
    if alert.name in section.disabled:
        enabled, reason = False, "listed in alerts.disabled"
    elif rule.enabled is not None:  # the user's word wins over the pack's reason
        enabled, reason = rule.enabled, f"alerts.rules.{alert.name}.enabled is false"
    return dataclasses.replace(
        alert,
        for_=rule.for_ or alert.for_,
        severity=rule.severity or alert.severity,
        labels={**alert.labels, **rule.labels},
        enabled=enabled,
        disabled_reason=reason if not enabled else "",
    )


def _hint(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return "; known: " + ", ".join(names) if names else "; none is known"


def _dns_name(service_name: str) -> str:
    """``service_name`` as a Kubernetes object name (RFC 1123: lowercase letters, digits, ``-``)."""
    name = re.sub(r"[^a-z0-9-]+", "-", service_name.lower()).strip("-")
    return name[:50] or "service"


# -- YAML ---------------------------------------------------------------------------------------

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "y", "n", "null"})  # not plain keys
# YAML's printable characters, without the ones a single-quoted scalar would fold (line breaks).
_SINGLE_QUOTABLE = re.compile("[\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


def to_yaml(data: Any, indent: int = 0) -> str:
    """Block-style YAML of plain data; strings single-quoted, or double-quoted (JSON escapes) when not printable.

    Written here rather than with PyYAML so that exporting rules needs nothing beyond the core.
    """
    return "".join(_yaml_lines(data, indent))


def _yaml_lines(data: Any, indent: int) -> Iterable[str]:
    pad = " " * indent
    if isinstance(data, Mapping):
        if not data:
            yield pad + "{}\n"
        for key, value in data.items():
            plain = _PLAIN_KEY.fullmatch(key) and key.lower() not in _YAML_WORDS
            shown = key if plain else _scalar(str(key))
            if _is_block(value):
                yield f"{pad}{shown}:\n"
                yield from _yaml_lines(value, indent + 2)
            else:
                yield f"{pad}{shown}: {_scalar(value)}\n"
    elif isinstance(data, list | tuple):
        if not data:
            yield pad + "[]\n"
        for item in data:
            if _is_block(item):
                lines = list(_yaml_lines(item, indent + 2))
                yield pad + "- " + lines[0][indent + 2 :]
                yield from lines[1:]
            else:
                yield f"{pad}- {_scalar(item)}\n"
    else:
        yield pad + _scalar(data) + "\n"


def _is_block(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple) and bool(value)


def _scalar(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list | tuple):
        return "[]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        # YAML 1.1 floats need a dot: 1e+16 would read back as a string.
        return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text
    text = str(value)
    if _SINGLE_QUOTABLE.fullmatch(text):
        # Single quotes escape nothing but themselves: PromQL's backslashes and quotes stay as written.
        return "'" + text.replace("'", "''") + "'"
    return '"' + "".join(c if _SINGLE_QUOTABLE.fullmatch(c) and c not in '\\"' else _escape(c) for c in text) + '"'


def _escape(char: str) -> str:
    code = ord(char)
    if char in '\\"':
        return "\\" + char
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
