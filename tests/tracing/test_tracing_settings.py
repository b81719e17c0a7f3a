"""Tracing settings: the OTEL_* environment where settings are silent, and clear errors."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import pytest
from tracing_support import restore_logging, wrap  # noqa: F401 - restore_logging is a fixture

from ops_observe import SettingsError
from ops_observe.settings import load_settings
from ops_observe.tracing.config import NO_JAEGER, resolve
from ops_observe.tracing.provider import INSTRUMENTATIONS, build_resource, build_runtime


def config(env: dict[str, str], **tracing: Any) -> Any:
    return resolve(load_settings({"tracing": tracing}), environ=env)


@pytest.mark.parametrize(
    ("env", "tracing", "field", "expected"),
    [
        ({}, {}, "exporter", "none"),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, {}, "exporter", "zipkin"),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, {"exporter": "console"}, "exporter", "console"),
        ({"OTEL_TRACES_EXPORTER": "zipkin", "OTEL_SDK_DISABLED": "true"}, {}, "exporter", "none"),
        ({}, {}, "sample_ratio", 1.0),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
            {},
            "sample_ratio",
            0.25,
        ),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, {}, "sample_ratio", 0.0),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, {}, "sample_ratio", 0.0),
        ({"OTEL_TRACES_SAMPLER_ARG": "0.25"}, {"sample_ratio": 0.5}, "sample_ratio", 0.5),
        ({}, {}, "propagators", ("tracecontext", "baggage")),
        ({"OTEL_PROPAGATORS": "b3, tracecontext"}, {}, "propagators", ("b3", "tracecontext")),
        ({"OTEL_PROPAGATORS": "none"}, {}, "propagators", ()),
        ({"OTEL_PROPAGATORS": "b3"}, {"propagators": ["tracecontext"]}, "propagators", ("tracecontext",)),
        ({}, {}, "zipkin_endpoint", "http://localhost:9411/api/v2/spans"),
        (
            {"OTEL_EXPORTER_ZIPKIN_ENDPOINT": "http://z:9411/api/v2/spans"},
            {},
            "zipkin_endpoint",
            "http://z:9411/api/v2/spans",
        ),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "100"}, {}, "max_queue_size", 100),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "100"}, {"max_queue_size": 7}, "max_queue_size", 7),
        ({"OTEL_BSP_SCHEDULE_DELAY": "250"}, {}, "schedule_delay", 0.25),
        ({"OTEL_BSP_EXPORT_TIMEOUT": "3000"}, {}, "export_timeout", 3.0),
    ],
)
def test_settings_win_then_otel_variables_then_defaults(
    env: dict[str, str], tracing: dict[str, Any], field: str, expected: object
) -> None:
    assert getattr(config(env, **tracing), field) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, NO_JAEGER),
        (
            {"OTEL_TRACES_EXPORTER": "kafka"},
            "OTEL_TRACES_EXPORTER='kafka': expected one of none, console, zipkin, otlp",
        ),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
            "OTEL_TRACES_SAMPLER_ARG='1.5': must be between 0 and 1",
        ),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "lots"}, "expected a number"),
        ({"OTEL_PROPAGATORS": "xray"}, "'xray' is not one of tracecontext, baggage, b3, b3multi"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "0"}, "OTEL_BSP_MAX_QUEUE_SIZE='0': must be greater than 0"),
    ],
)
def test_a_bad_otel_variable_is_a_settings_error_naming_it(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match="tracing") as caught:
        config(env)
    assert message in str(caught.value)


def test_a_bad_sample_ratio_names_the_key() -> None:
    with pytest.raises(SettingsError, match=r"tracing\.sample_ratio: must be between 0 and 1, got 1\.5"):
        load_settings({"tracing": {"sample_ratio": 1.5}})


def test_the_resource_carries_the_service_identity_over_otel_resource_attributes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=payments,deployment.environment=ignored")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    attributes = build_resource(
        load_settings({"service_name": "billing", "version": "2.3.0", "environment": "prod"})
    ).attributes
    assert attributes["service.name"] == "billing"
    assert attributes["service.version"] == "2.3.0"
    assert attributes["deployment.environment"] == "prod"
    assert attributes["team"] == "payments"
    # service_name left at its default: OTEL_SERVICE_NAME is honoured.
    assert build_resource(load_settings({})).attributes["service.name"] == "from-env"


def test_the_otlp_exporter_missing_is_a_settings_error_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail exactly as if the package were not installed.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(SettingsError, match="tracing.exporter: .*opentelemetry-exporter-otlp-proto-http"):
        build_runtime(load_settings({"tracing": {"exporter": "otlp"}}))


def test_the_b3_propagator_missing_is_a_settings_error_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.propagators.b3", None)
    with pytest.raises(SettingsError, match="tracing.propagators: .*opentelemetry-propagator-b3"):
        build_runtime(load_settings({"tracing": {"propagators": ["b3"]}}))


@pytest.mark.parametrize("name", sorted(INSTRUMENTATIONS))
def test_an_enabled_instrumentation_that_is_not_installed_is_a_settings_error(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, _, package = INSTRUMENTATIONS[name]
    if importlib.util.find_spec(module.rsplit(".", 1)[0]) is not None:
        monkeypatch.setitem(sys.modules, module, None)  # installed here: hide it
    with pytest.raises(SettingsError, match=f"tracing.instrument: .*{package}") as caught:
        wrap({"tracing": {"instrument": [name]}})
    assert f"pip install {package}" in str(caught.value)


def test_exporter_none_gives_ids_and_propagation_but_records_nothing() -> None:
    runtime = build_runtime(load_settings({"tracing": {"exporter": "none"}}))
    assert runtime.queue is None and not runtime.record
    runtime.shutdown()
