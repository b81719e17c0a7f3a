"""Settings: sources, interpolation, typed errors that name the key, masking."""

from __future__ import annotations

import dataclasses
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops_observe import SettingsError
from ops_observe.settings import ENV_VAR, MISSING_VAR, NO_TABLE, Settings, load_settings, to_dict


def test_defaults_when_no_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    settings = load_settings()
    assert settings == Settings()
    assert settings.source == "<defaults>"
    assert settings.middleware == ("correlation", "tracing", "logging", "metrics")


def test_file_from_environment_then_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ops_observe.toml").write_text('[ops_observe]\nservice_name = "from-cwd"\n')
    other = tmp_path / "other.toml"
    other.write_text('[ops_observe]\nservice_name = "from-env"\n')
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert load_settings().service_name == "from-cwd"
    monkeypatch.setenv(ENV_VAR, str(other))
    assert load_settings().service_name == "from-env"
    assert load_settings().source == str(other)


def test_dict_and_file_give_the_same_settings(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        """
[ops_observe]
service_name = "billing"
middleware = ["correlation", "metrics"]
[ops_observe.tracing]
sample_ratio = 0.25
[ops_observe.health.checks.db]
plugin = "postgres"
critical = false
dsn = "postgresql://app@db/app"
"""
    )
    data = {
        "service_name": "billing",
        "middleware": ["correlation", "metrics"],
        "tracing": {"sample_ratio": 0.25},
        "health": {"checks": {"db": {"plugin": "postgres", "critical": False, "dsn": "postgresql://app@db/app"}}},
    }
    assert load_settings(path) == load_settings(data) == load_settings({"ops_observe": data})
    check = load_settings(data).health.checks["db"]
    assert (check.plugin, check.critical, dict(check.options)) == (
        "postgres",
        False,
        {"dsn": "postgresql://app@db/app"},
    )


def test_settings_are_immutable() -> None:
    settings = load_settings({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.service_name = "x"  # type: ignore[misc]


def test_namespace_derived_from_service_name() -> None:
    assert load_settings({"service_name": "ops-center"}).metric_namespace == "ops_center"
    assert load_settings({"service_name": "Ops Center 2"}).metric_namespace == "ops_center_2"
    assert load_settings({"service_name": "9lives"}).metric_namespace == "app_9lives"
    assert load_settings({"service_name": "x", "namespace": "billing"}).metric_namespace == "billing"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tracing": {"sample_ratio": 1.5}}, "<dict>: tracing.sample_ratio: must be between 0 and 1, got 1.5"),
        (
            {"tracing": {"sampel_ratio": 1}},
            "<dict>: tracing.sampel_ratio: unknown key 'sampel_ratio'; did you mean 'sample_ratio'?",
        ),
        ({"middlware": []}, "<dict>: middlware: unknown key 'middlware'; did you mean 'middleware'?"),
        (
            {"tracing": {"exporter": "jaeger"}},
            "<dict>: tracing.exporter: expected one of 'none', 'console', 'zipkin', 'otlp', got 'jaeger'",
        ),
        ({"health": {"timeout": "soon"}}, "<dict>: health.timeout: expected a number, got 'soon'"),
        ({"health": {"timeout": True}}, "<dict>: health.timeout: expected a number, got True"),
        ({"health": {"checks": {"db": {"critical": True}}}}, "<dict>: health.checks.db.plugin: this key is required"),
        (
            {"middleware": ["metrics", "metrics"]},
            "<dict>: middleware: 'metrics' is listed twice, got ['metrics', 'metrics']",
        ),
        ({"middleware": "metrics"}, "<dict>: middleware: expected a list of strings, got 'metrics'"),
        (
            {"metrics": {"path": "metrics"}},
            "<dict>: metrics.path: must be a path starting with '/', without spaces, '?' or '#', got 'metrics'",
        ),
        (
            {"namespace": "9x"},
            "<dict>: namespace: must be a Prometheus name: letters, digits and '_', not starting with a digit, got '9x'",
        ),
        ({"correlation": "X-Id"}, "<dict>: correlation: expected a table, got 'X-Id'"),
        (
            {"zzz": 1},
            "<dict>: zzz: unknown key 'zzz'; known keys: service_name, namespace, version, environment, commit, build_date, middleware, alerts, correlation, health, logging, metrics, tracing",
        ),
    ],
)
def test_bad_settings_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(data)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[ops_observe]\nservice_name = "a"\nversion = \n')
    with pytest.raises(SettingsError, match=r"broken\.toml: invalid TOML: .*line 3"):
        load_settings(path)


def test_file_without_the_table(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('service_name = "a"\n')
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert str(info.value) == f"{path}: {NO_TABLE}"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read settings file"):
        load_settings(tmp_path / "nope.toml")


def test_interpolation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_VERSION", "2.3.0")
    monkeypatch.setenv("RATIO", "0.5")
    monkeypatch.setenv("EMPTY", "")
    monkeypatch.delenv("UNSET_VAR", raising=False)
    settings = load_settings(
        {
            "version": "v${APP_VERSION}",
            "environment": "${UNSET_VAR:-staging}",
            "commit": "${EMPTY:-none}",
            "build_date": "$${NOT_A_VAR}",
            "tracing": {"sample_ratio": "${RATIO}"},
            "health": {"enabled": "${UNSET_VAR:-false}"},
        }
    )
    assert settings.version == "v2.3.0"
    assert settings.environment == "staging"
    assert settings.commit == "none"
    assert settings.build_date == "${NOT_A_VAR}"
    assert settings.tracing.sample_ratio == 0.5
    assert settings.health.enabled is False


def test_missing_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(SettingsError) as info:
        load_settings({"health": {"checks": {"db": {"plugin": "postgres", "dsn": "${DATABASE_URL}"}}}})
    assert str(info.value) == "<dict>: health.checks.db.dsn: " + MISSING_VAR.format(var="DATABASE_URL")


def test_masked_view_hides_secrets() -> None:
    settings = load_settings(
        {
            "health": {
                "checks": {
                    "db": {"plugin": "postgres", "dsn": "postgresql://app:s3cret@db:5432/app"},
                    "kv": {
                        "plugin": "redis",
                        "url": "redis://:hunter2@cache:6379/0",
                        "password": "pw",
                        "api_token": "t0k",
                    },
                    "raw": {"plugin": "postgres", "dsn": "host=db user=app password=s3cret dbname=app"},
                }
            }
        }
    )
    shown = str(to_dict(settings))
    for secret in ("s3cret", "hunter2", "'pw'", "t0k"):
        assert secret not in shown
    checks = to_dict(settings)["health"]["checks"]
    assert checks["db"]["dsn"] == "postgresql://app:****@db:5432/app"
    assert checks["kv"]["url"] == "redis://:****@cache:6379/0"
    assert checks["raw"]["dsn"] == "host=db user=app password=**** dbname=app"
    assert to_dict(settings, masked=False)["health"]["checks"]["db"]["dsn"].endswith("s3cret@db:5432/app")


# -- properties over settings from outside ------------------------------------------------------

toml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)


@given(
    st.dictionaries(
        st.sampled_from(["service_name", "version", "middleware", "tracing", "health", "metrics", "bogus"]),
        toml_values,
        max_size=4,
    )
)
def test_any_input_gives_settings_or_a_settings_error(data: dict[str, object]) -> None:
    try:
        settings = load_settings(data)
    except SettingsError as exc:
        assert str(exc).startswith("<dict>: ")
    else:
        assert isinstance(settings, Settings)


@given(st.text(alphabet=string.ascii_letters + string.digits + "${}:-_ ", max_size=30))
def test_interpolation_never_crashes(value: str) -> None:
    try:
        settings = load_settings({"version": value})
    except SettingsError as exc:
        assert "environment variable" in str(exc)
    else:
        assert isinstance(settings.version, str)


def test_every_secret_field_is_masked() -> None:
    from ops_observe.root import section_classes
    from ops_observe.schema import iter_fields

    data = {
        "metrics": {"bearer_token": "scrape-t0ken", "hash_key": "hash-k3y"},
        "health": {"detailed_token": "health-t0ken"},
    }
    shown = str(to_dict(load_settings(data)))
    for secret in ("scrape-t0ken", "hash-k3y", "health-t0ken"):
        assert secret not in shown

    def secret_fields(cls: type, prefix: str) -> list[str]:
        found = []
        for field, tp in iter_fields(cls):
            if dataclasses.is_dataclass(tp):
                found += secret_fields(tp, f"{prefix}{field.name}.")  # type: ignore[arg-type]
            elif field.metadata["secret"]:
                found.append(prefix + field.name)
        return found

    every = [name for section, cls in section_classes().items() for name in secret_fields(cls, f"{section}.")]
    assert sorted(every) == ["health.detailed_token", "metrics.bearer_token", "metrics.hash_key"]
