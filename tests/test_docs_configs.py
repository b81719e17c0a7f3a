"""Every settings file and configuration shown in docs/ and the README loads, and fits what it configures.

- ```toml: a block with an ``[ops_observe]`` table loads with ``load_settings`` from a file and
  passes ``validate`` (plugins resolved, options checked), each ``${VAR}`` without a default given a
  placeholder; any other TOML (a ``pyproject.toml``) parses.
- ```yaml: parses with PyYAML; Prometheus configurations pass ``promtool check config`` (their
  rule files exported by ``ops-observe alerts export``), rule lists ``promtool check rules``,
  Alertmanager configurations ``amtool check-config``; OpenTelemetry Collector configurations
  name only declared components of known types; the Kubernetes manifests of docs/kubernetes.md fit
  together and the wrapped app answers their probes.
- The log shippers' pipelines of docs/log-shipping.md read only fields our lines carry, and make
  no per-request value a label. ```json blocks parse (as JSON, or one object a line), ```promql
  ones with the PromQL parser.

A block that is part of a bigger file is marked ``<!-- fragment -->`` on the line above and only
counted, never loaded.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from docs_blocks import ROOT, Block, blocks, pages, placeholder_environment

import ops_observe
from ops_observe.settings import Settings, load_settings, validate

from services import need

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the py310 tox env
    import tomli as tomllib


def every(language: str) -> list[Block]:
    return [block for page in pages() for block in blocks(page, language)]


TOML = [b for b in every("toml") if not b.fragment]
YAML = [b for b in every("yaml") if not b.fragment]

OPTIONAL = {
    'exporter = "otlp"': "opentelemetry.exporter.otlp.proto.http",
    '"b3': "opentelemetry.propagators.b3",
    '"httpx"': "opentelemetry.instrumentation.httpx",
}
"""Settings that need an optional package: without it (tox's nooptionals env) they only load."""

NOT_INSTALLED = ('plugin = "smtp"',)
"""docs/health.md's example third-party check, installed only by its own test."""


@pytest.fixture
def placeholders(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for page in pages():
        for name, value in placeholder_environment(page).items():
            monkeypatch.setenv(name, value)
    yield


def installed(module: str) -> bool:
    """Whether ``module`` can be imported; a missing parent package counts as missing too."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # find_spec imports the parents of a dotted name
        return False


def load(code: str, tmp_path: Path, name: str = "ops_observe.toml") -> Settings:
    """``code`` saved as a settings file and loaded as ``wrap()`` loads it, validated when it can be."""
    path = tmp_path / name
    path.write_text(code)
    settings = load_settings(str(path))
    missing = [module for text, module in OPTIONAL.items() if text in code and not installed(module)]
    if not missing and not any(text in code for text in NOT_INSTALLED):
        validate(settings)
    return settings


# -- TOML ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", TOML, ids=[b.name for b in TOML])
def test_toml_block_loads(block: Block, tmp_path: Path, placeholders: None) -> None:
    document = tomllib.loads(block.code)
    if "ops_observe" in document:
        load(block.code, tmp_path)
    else:  # not a settings file: a pyproject.toml
        assert {"build-system", "project", "tool"} & set(document), f"{block.name}: neither settings nor pyproject"


def test_the_quickstart_typo_message_is_the_real_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = (ROOT / "docs/quickstart.md").read_text()
    quoted = re.search(r"\(`(ops_observe\.toml: middleware.*?)`\)", page, re.S)
    assert quoted is not None
    settings = next(b for b in blocks("docs/quickstart.md", "toml") if b.filename == "ops_observe.toml")
    monkeypatch.chdir(tmp_path)
    Path("ops_observe.toml").write_text(settings.code.replace('"metrics"]', '"metrcs"]'))
    with pytest.raises(ops_observe.SettingsError) as error:
        validate(load_settings("ops_observe.toml"))
    assert str(error.value) == quoted.group(1)


def test_fragments_are_few() -> None:
    for language in ("toml", "yaml"):
        found = every(language)
        assert sum(b.fragment for b in found) <= len(found) // 4, language


# -- YAML ---------------------------------------------------------------------------------------


def documents(block: Block) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(block.code) if doc is not None]


@pytest.mark.parametrize("block", YAML, ids=[b.name for b in YAML])
def test_yaml_block_parses(block: Block) -> None:
    assert documents(block), f"{block.name} is empty"


def kind_of(document: Any) -> str:
    if isinstance(document, dict):
        if "scrape_configs" in document:
            return "promtail" if "clients" in document else "prometheus"
        if "route" in document and "receivers" in document:
            return "alertmanager"
        if "receivers" in document and "pipelines" in document.get("service", {}):
            return "collector"
    if isinstance(document, list) and document and all(isinstance(r, dict) and "alert" in r for r in document):
        return "rules"
    return "other"


def of_kind(kind: str) -> list[Block]:
    return [b for b in YAML if any(kind_of(d) == kind for d in documents(b))]


def test_every_kind_of_configuration_is_shown() -> None:
    for kind in ("prometheus", "alertmanager", "collector", "rules"):
        assert of_kind(kind), f"no {kind} configuration in the docs any more: drop its check"


@pytest.mark.parametrize("block", of_kind("prometheus"), ids=lambda b: b.name)
def test_prometheus_configuration_passes_promtool(
    block: Block, promtool: str, tmp_path: Path, placeholders: None
) -> None:
    from ops_observe.alerts.command import export_command

    config = documents(block)[0]
    settings = page_settings(block.page, tmp_path)
    for rule_file in config.get("rule_files", []):
        export_command(settings, "prometheus", str(tmp_path / rule_file), io.StringIO())
    result = promtool_check_config(promtool, config, tmp_path)
    if "field kubernetes_sd_configs not found" in result.stdout + result.stderr:
        # Debian's promtool is built without Kubernetes discovery: check everything else (the
        # relabelling, the rule files) with the discovery swapped for a static target.
        for job in config["scrape_configs"]:
            assert all(sd["role"] in {"pod", "endpoints", "service", "node"} for sd in job.pop("kubernetes_sd_configs"))
            job["static_configs"] = [{"targets": ["127.0.0.1:8000"]}]
        result = promtool_check_config(promtool, config, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def promtool_check_config(promtool: str, config: dict[str, Any], folder: Path) -> subprocess.CompletedProcess[str]:
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("block", of_kind("rules"), ids=lambda b: b.name)
def test_rule_list_passes_promtool(block: Block, promtool: str, tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "docs", "rules": documents(block)[0]}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("block", of_kind("alertmanager"), ids=lambda b: b.name)
def test_alertmanager_configuration_passes_amtool(block: Block, tmp_path: Path) -> None:
    amtool = shutil.which("amtool")
    need(amtool, "amtool is not installed (apt-get install prometheus-alertmanager)")
    assert amtool is not None
    path = tmp_path / "alertmanager.yml"
    path.write_text(block.code)
    result = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


COLLECTOR_TYPES = {
    "receivers": {"otlp", "zipkin", "jaeger"},
    "processors": {"batch", "memory_limiter", "tail_sampling", "attributes", "resource"},
    "exporters": {"otlp", "otlphttp", "zipkin", "debug"},
}
"""Component types of the OpenTelemetry Collector (contrib) the docs may use; the name is ``type[/name]``."""


@pytest.mark.parametrize("block", of_kind("collector"), ids=lambda b: b.name)
def test_collector_pipelines_name_declared_components(block: Block) -> None:
    config = documents(block)[0]
    for section, types in COLLECTOR_TYPES.items():
        for name in config.get(section) or {}:
            assert name.split("/")[0] in types, f"{block.name}: unknown {section} type {name}"
    for pipeline, parts in config["service"]["pipelines"].items():
        assert pipeline.split("/")[0] in {"traces", "metrics", "logs"}
        for section in COLLECTOR_TYPES:
            for name in parts.get(section, []):
                assert name in (config.get(section) or {}), f"{block.name}: {pipeline} names undeclared {name}"
        assert parts.get("receivers") and parts.get("exporters"), pipeline
    # The suite's OTLP exporter speaks HTTP/protobuf: the collector must receive it.
    assert "http" in config["receivers"]["otlp"]["protocols"], block.name


# -- Settings of a page -------------------------------------------------------------------------


def page_settings(page: str, tmp_path: Path) -> Settings:
    """The page's own settings file: its ``ops_observe.toml`` block, or its first settings block."""
    candidates = [b for b in blocks(page, "toml") if "[ops_observe" in b.code and not b.fragment]
    named = [b for b in candidates if b.filename == "ops_observe.toml"]
    block = (named or candidates)[0] if candidates else None
    if block is None:  # the Kubernetes page keeps its settings in the ConfigMap
        (config_map,) = [d for d in manifests() if d["kind"] == "ConfigMap"]
        return load(config_map["data"]["ops_observe.toml"], tmp_path)
    return load(block.code, tmp_path)


# -- Kubernetes ---------------------------------------------------------------------------------


def manifests() -> list[dict[str, Any]]:
    """The Kubernetes objects of docs/kubernetes.md (every block with ``apiVersion`` and ``kind``)."""
    found = []
    for block in blocks("docs/kubernetes.md", "yaml"):
        if not block.fragment:
            found += [d for d in documents(block) if isinstance(d, dict) and {"apiVersion", "kind"} <= set(d)]
    return found


def one(kind: str) -> dict[str, Any]:
    (found,) = [d for d in manifests() if d["kind"] == kind]
    return found


def get(app: Any, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pod") as client:
            return await client.get(path)

    return asyncio.run(go())


def test_kubernetes_manifests_fit_together(tmp_path: Path, placeholders: None) -> None:
    config_map, deployment, service = one("ConfigMap"), one("Deployment"), one("Service")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    settings = load(config_map["data"]["ops_observe.toml"], tmp_path)
    # The settings file is the ConfigMap's, mounted where $OPS_OBSERVE_SETTINGS points.
    env = {e["name"]: e for e in container["env"]}
    (mount,) = container["volumeMounts"]
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    (key,) = config_map["data"]
    assert env["OPS_OBSERVE_SETTINGS"]["value"] == f"{mount['mountPath']}/{key}"
    # Ports: serve's --port is the named container port the probes, the Service and the monitors use.
    command = container["command"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert command[:2] == ["ops-observe", "serve"] and ports["http"] == int(command[command.index("--port") + 1])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ports
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports)
    # Draining: readiness fails at SIGTERM for drain_seconds, long enough for the probe to notice,
    # and the pod is not killed before the drain and the requests in flight are done.
    readiness = container["readinessProbe"]
    assert settings.health.drain_seconds >= readiness["periodSeconds"] * readiness["failureThreshold"]
    assert pod["spec"]["terminationGracePeriodSeconds"] > settings.health.drain_seconds
    assert readiness["timeoutSeconds"] > settings.health.timeout
    # The probes' paths are the suite's: liveness answers, readiness runs the checks (the placeholder
    # database refuses connections, so 503; never a 404).
    app = ops_observe.wrap(_no_app, settings=settings)
    assert get(app, container["startupProbe"]["httpGet"]["path"]).status_code == 200
    assert get(app, container["livenessProbe"]["httpGet"]["path"]).status_code == 200
    assert get(app, readiness["httpGet"]["path"]).status_code == 503
    assert get(app, settings.metrics.path).status_code == 200


def test_kubernetes_monitors_scrape_the_metrics_and_honour_its_labels(tmp_path: Path, placeholders: None) -> None:
    settings = page_settings("docs/kubernetes.md", tmp_path)
    service, pod = one("Service"), one("Deployment")["spec"]["template"]
    monitor = one("ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
        assert endpoint["path"] == settings.metrics.path
        assert endpoint["honorLabels"] is True  # else our `endpoint` label becomes exported_endpoint
    pod_monitor = one("PodMonitor")
    assert pod_monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    for endpoint in pod_monitor["spec"]["podMetricsEndpoints"]:
        assert endpoint["port"] in {p["name"] for p in container["ports"]}
        assert endpoint["path"] == settings.metrics.path and endpoint["honorLabels"] is True


def test_the_prometheus_rule_is_named_as_the_page_says(tmp_path: Path, placeholders: None) -> None:
    from ops_observe.alerts.command import export_command

    settings = page_settings("docs/kubernetes.md", tmp_path)
    out = io.StringIO()
    export_command(settings, "operator", None, out)
    rule = yaml.safe_load(out.getvalue())
    assert rule["kind"] == "PrometheusRule" and rule["metadata"]["name"] == "shop-rules"
    assert "shop-rules" in (ROOT / "docs/kubernetes.md").read_text()


async def _no_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


# -- Log shipping -------------------------------------------------------------------------------

LABELS = {"service", "level", "kind"}
"""What docs/log-shipping.md makes a Loki label: a few values each."""
PER_REQUEST = {"correlation_id", "trace_id", "span_id", "path", "client", "user_id", "duration_ms", "message"}


@pytest.fixture(scope="module")
def line_keys(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The keys of real lines: access lines (one failed), an application line, a business event."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from ops_observe.logging import feature
    from ops_observe.logging.api import bind_request

    sink = tmp_path_factory.mktemp("lines") / "app.log"

    async def ok(request: Any) -> PlainTextResponse:
        bind_request(user_id="u-1")
        ops_observe.get_logger("shop").business_event("signup", plan="pro")
        return PlainTextResponse("ok")

    async def boom(request: Any) -> PlainTextResponse:
        raise RuntimeError("boom")

    api = Starlette(routes=[Route("/ok", ok), Route("/boom", boom)])
    app = ops_observe.wrap(api, settings={"service_name": "shop", "logging": {"sink": str(sink)}})

    async def go() -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            await client.get("/ok")
            await client.get("/boom")

    try:
        asyncio.run(go())
    finally:
        feature.uninstall()
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    assert {line.get("kind") for line in lines} >= {"access", "business_event"}
    keys = {key for line in lines for key in line}
    keys |= {f"exception.{key}" for line in lines for key in line.get("exception", {})}
    return keys


def alloy_map(config: str, stage: str, argument: str) -> dict[str, str]:
    """``{name = "expr", ...}`` of ``argument`` in the ``stage`` block of an Alloy configuration."""
    found = re.search(rf"{re.escape(stage)}\s*\{{[^}}]*?{argument}\s*=\s*\{{([^}}]*)\}}", config)
    assert found is not None, f"no {stage} {argument}"
    return {k: v or k for k, v in re.findall(r'(\w+)\s*=\s*"([^"]*)"', found.group(1))}


def test_alloy_pipeline_reads_our_fields(line_keys: set[str]) -> None:
    (block,) = blocks("docs/log-shipping.md", "alloy")
    extracted = alloy_map(block.code, "stage.json", "expressions")
    assert set(extracted.values()) <= line_keys
    labels = set(alloy_map(block.code, "stage.labels", "values"))
    assert labels <= set(extracted) and labels <= LABELS
    metadata = set(alloy_map(block.code, "stage.structured_metadata", "values"))
    assert metadata <= set(extracted) and {"correlation_id", "trace_id"} <= metadata
    source = re.search(r'stage\.timestamp\s*\{[^}]*source\s*=\s*"(\w+)"', block.code)
    assert source is not None and source.group(1) in extracted


def test_promtail_pipeline_reads_our_fields(line_keys: set[str]) -> None:
    (block,) = [b for b in blocks("docs/log-shipping.md", "yaml") if b.filename == "promtail.yaml"]
    (job,) = documents(block)[0]["scrape_configs"]
    stages = {name: value for stage in job["pipeline_stages"] for name, value in stage.items()}
    extracted = stages["json"]["expressions"]
    assert set(extracted.values()) <= line_keys
    assert set(stages["labels"]) <= set(extracted) and set(stages["labels"]) <= LABELS
    assert {"correlation_id", "trace_id"} <= set(stages["structured_metadata"])
    assert stages["timestamp"]["source"] in extracted


def test_elasticsearch_template_maps_our_fields(line_keys: set[str]) -> None:
    (block,) = blocks("docs/log-shipping.md", "json")
    mappings = json.loads(block.code)["template"]["mappings"]
    assert mappings["dynamic"] is False
    fields = {name for name in mappings["properties"] if name != "@timestamp"}  # set by Logstash's date filter
    fields |= {f"exception.{name}" for name in mappings["properties"]["exception"]["properties"]}
    assert fields - {"exception"} <= line_keys
    for name in ("correlation_id", "trace_id", "span_id"):
        assert mappings["properties"][name]["type"] == "keyword"
    (logstash,) = blocks("docs/log-shipping.md", "logstash")
    assert re.search(r'match\s*=>\s*\["(\w+)"', logstash.code).group(1) in line_keys  # type: ignore[union-attr]


def test_no_per_request_value_is_a_label() -> None:
    text = (ROOT / "docs/log-shipping.md").read_text()
    assert not PER_REQUEST & LABELS
    for name in PER_REQUEST:
        assert not re.search(rf"stage\.labels\s*\{{[^}}]*\b{name}\b", text), name


# -- JSON, PromQL, the guide's table of contents ------------------------------------------------


@pytest.mark.parametrize("block", every("json"), ids=lambda b: b.name)
def test_json_block_parses(block: Block) -> None:
    try:
        json.loads(block.code)
    except json.JSONDecodeError:  # one object a line: log lines
        for line in block.code.splitlines():
            assert isinstance(json.loads(line), dict), f"{block.name}: {line[:80]}"


@pytest.mark.parametrize("block", every("promql"), ids=lambda b: b.name)
def test_promql_block_parses(block: Block) -> None:
    promql_parser = pytest.importorskip("promql_parser")
    for expression in block.code.strip().splitlines():
        promql_parser.parse(expression)


def test_the_guide_links_every_page() -> None:
    index = (ROOT / "docs/index.md").read_text()
    linked = set(re.findall(r"\]\(([\w.-]+\.(?:md|yml))\)", index))
    on_disk = {path.name for path in (ROOT / "docs").iterdir() if path.suffix in (".md", ".yml")} - {"index.md"}
    assert linked == on_disk
    readme = (ROOT / "README.md").read_text()
    for name in on_disk - {"alertmanager.yml"}:
        assert f"(docs/{name})" in readme, f"README.md does not link docs/{name}"
