"""What a new user does in the first hour (issue 11), in a fresh virtual environment from a clean clone.

- The demo, started as the README says (``python3 -m ops_observe serve``, on a free port): the
  README's own ``curl`` lines, run by ``curl`` over HTTP, answer the statuses the README gives, and
  the server writes JSON lines only, one access line per request, one line per failure.
- The README's FastAPI example (``main.py`` and ``ops_observe.toml`` exactly as in the README) and
  the quick start's Starlette one, run both ways the pages give, ``ops-observe serve main:app`` in
  their folder and ``uvicorn main:app``, with one worker and with two: one access line per
  request, the same correlation id in the body, the header and the line, exact counts on
  ``/metrics``.
- The quick start's Django project (``django-admin startproject`` and the page's files), served
  wrapped by uvicorn and by ``ops-observe serve``, and the variants of docs/django.md: one JSON
  line per request, Django's own lines in the stream.

Every subprocess is bounded by a timeout; the servers' output goes to files, read when they stop.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from newcomer_env import Newcomer
from prometheus_client.parser import text_string_to_metric_families

from services import free_port, get_when_up, need

pytestmark = pytest.mark.timeout(900)  # the first test builds the environment (about a minute)

REQUESTS = 20


@dataclass
class Served:
    """A server run by the test: its address while it runs, its output once it stopped."""

    base: str
    stdout: str = ""
    stderr: str = ""

    def lines(self) -> list[dict[str, Any]]:
        """Every line of stdout, each parsed as JSON (a plain text line fails the test)."""
        parsed = []
        for line in self.stdout.splitlines():
            try:
                parsed.append(json.loads(line))
            except json.JSONDecodeError:
                pytest.fail(f"a line of stdout is not JSON: {line!r}")
        return parsed

    def access_lines(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("kind") == "access"]


@contextmanager
def serving(command: list[str], cwd: Path, env: dict[str, str], port: int, tmp_path: Path) -> Iterator[Served]:
    """Run ``command`` until the block ends, then stop it with SIGTERM (as Kubernetes and systemd do)."""
    out, err = tmp_path / f"stdout-{port}.log", tmp_path / f"stderr-{port}.log"
    served = Served(f"http://127.0.0.1:{port}")
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=stdout, stderr=stderr, start_new_session=True)
        try:
            get_when_up(f"{served.base}/health", process=process, timeout=90)
            yield served
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
                pytest.fail(f"{command} did not stop on SIGTERM within 30 s")
    served.stdout, served.stderr = out.read_text(), err.read_text()


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """The value of one series of a Prometheus exposition."""
    for family in text_string_to_metric_families(metrics):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return None


def block(text: str, language: str, first_line: str, nth: int = 0) -> str:
    """The ``nth`` fenced block of ``language`` whose first line is ``first_line``."""
    found = [code for code in re.findall(rf"```{language}\n(.*?)```", text, re.S) if code.startswith(first_line + "\n")]
    assert len(found) > nth, f"no ```{language} block starting {first_line!r}"
    return found[nth]


# -- the demo -----------------------------------------------------------------------------------


def readme_demo(readme: str) -> tuple[list[str], list[str]]:
    """The README's command that starts the demo, and its ``curl`` lines."""
    first = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert first is not None
    serve = first.group(1).splitlines()[0].split("&&")[1].split("#")[0].split()
    assert serve == ["python3", "-m", "ops_observe", "serve"], serve
    curls = re.search(r"status it answers.*?```bash\n(.*?)```", readme, re.S)
    assert curls is not None
    return serve, [line for line in curls.group(1).splitlines() if line.startswith("curl ")]


def test_the_readme_demo_answers_its_curl_lines(
    newcomer: Newcomer, postgres_server: Any, redis_server: Any, tmp_path: Path
) -> None:
    curl = shutil.which("curl")
    need(curl, "curl is not installed")
    serve, curls = readme_demo((newcomer.clone / "README.md").read_text())
    port = free_port()
    env = newcomer.env(DATABASE_URL=postgres_server.dsn, REDIS_URL=redis_server.url)
    command = [newcomer.bin("python"), *serve[1:], "--port", str(port)]
    requests = []  # (correlation id, status, whether the suite's own endpoint answered)
    with serving(command, newcomer.clone, env, port, tmp_path) as demo:
        for line in curls:
            command_line, _, comment = line.partition("  # ")
            expected = {int(code) for code in re.findall(r"\b[1-5]\d\d\b", comment)}
            shell = command_line.replace("localhost:8000", f"127.0.0.1:{port}")
            result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=30)
            assert result.returncode == 0, f"{line}: {result.stderr}"
            if " -i " not in shell:  # the exposition piped into grep
                assert "_http_requests_total{" in result.stdout, line
                continue
            head = result.stdout.partition("\r\n\r\n")[0]
            status = int(head.split()[1])
            assert status in expected, f"{line}: answered {status}"
            found = re.search(r"(?im)^x-correlation-id: (\S+)", head)
            assert found is not None, line
            requests.append((found.group(1), status, "/health" in shell or "/metrics" in shell))
    # One access line per request to the app, with its id and status; the suite's own endpoints
    # (/health...) are not logged by default.
    logged = sorted((line["correlation_id"], line["status"]) for line in demo.access_lines())
    assert logged == sorted((cid, status) for cid, status, own in requests if not own)
    # One line per failure: the access line of /boom carries the exception; uvicorn's report is left out.
    failures = [line for line in demo.lines() if "exception" in line]
    assert [(f["logger"], f["path"]) for f in failures] == [("ops_observe.access", "/boom")]
    assert not any("Exception in ASGI application" in line.get("message", "") for line in demo.lines())


# -- the README's FastAPI example and the quick start's Starlette one ----------------------------


EXAMPLES = {
    # name: (page, which of its main.py blocks, the settings' namespace)
    "readme-fastapi": ("README.md", 0, "billing"),
    "quickstart-starlette": ("docs/quickstart.md", 0, "shop"),
    "quickstart-fastapi": ("docs/quickstart.md", 1, "shop"),
}

RUNS = [
    ("readme-fastapi", "serve", 1),
    ("readme-fastapi", "uvicorn", 1),
    ("readme-fastapi", "serve", 2),
    ("readme-fastapi", "uvicorn", 2),
    ("quickstart-starlette", "serve", 1),
    ("quickstart-starlette", "uvicorn", 1),
    ("quickstart-fastapi", "serve", 1),
    ("quickstart-fastapi", "uvicorn", 1),
]


def example_folder(newcomer: Newcomer, example: str, folder: Path) -> str:
    """``main.py`` and ``ops_observe.toml`` saved from the page exactly as written; the namespace."""
    page, nth, namespace = EXAMPLES[example]
    text = (newcomer.clone / page).read_text()
    folder.mkdir()
    (folder / "main.py").write_text(block(text, "python", "# main.py", nth))
    (folder / "ops_observe.toml").write_text(block(text, "toml", "# ops_observe.toml"))
    return namespace


@pytest.mark.parametrize(("example", "server", "workers"), RUNS, ids=[f"{e}-{s}-{w}" for e, s, w in RUNS])
def test_the_example_app_logs_each_request_once_and_counts_exactly(
    newcomer: Newcomer, postgres_server: Any, tmp_path: Path, example: str, server: str, workers: int
) -> None:
    app = tmp_path / "app"
    namespace = example_folder(newcomer, example, app)
    port = free_port()
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = newcomer.env(DATABASE_URL=postgres_server.dsn, TMPDIR=str(private_tmp))
    if server == "serve":
        command = [newcomer.bin("ops-observe"), "serve", "main:app", "--port", str(port), "--workers", str(workers)]
    else:
        command = [newcomer.bin("uvicorn"), "main:app", "--port", str(port), "--workers", str(workers)]
        if workers > 1:  # docs/multiprocess.md: other servers need the directory named
            (tmp_path / "metrics").mkdir()
            env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    with serving(command, app, env, port, tmp_path) as served:
        responses = [httpx.get(f"{served.base}/items/{i}", timeout=10) for i in range(REQUESTS)]
        metrics = httpx.get(f"{served.base}/metrics", timeout=10).text
        ready = httpx.get(f"{served.base}/health/ready", timeout=10)
        live = httpx.get(f"{served.base}/health", timeout=10)
    for i, response in enumerate(responses):
        assert response.status_code == 200
        assert response.json() == {"item": i, "correlation_id": response.headers["x-correlation-id"]}
    series = {"endpoint": "/items/{item_id}", "method": "GET", "status": "200"}
    assert sample(metrics, f"{namespace}_http_requests_total", **series) == REQUESTS
    assert ready.status_code == 200, ready.text
    # What the pages show: /health touches nothing, /health/ready runs the critical checks.
    assert live.json() == {"status": "pass", "service": namespace, "version": "dev"}
    checks = {name: check["status"] for name, check in ready.json()["checks"].items()}
    assert checks == ({"disk": "pass"} if namespace == "shop" else {"db": "pass"})  # the README's postgres check
    # One access line per request, carrying the id its response returned.
    access = served.access_lines()
    assert sorted(line["correlation_id"] for line in access) == sorted(r.headers["x-correlation-id"] for r in responses)
    assert {(line["route"], line["status"], line["service"]) for line in access} == {
        ("/items/{item_id}", 200, namespace)
    }
    if workers == 1:  # the supervisor of several workers writes its own plain lines on stderr
        assert served.stderr == "", served.stderr
    if server == "serve":  # serve removes its metrics directory when it stops
        assert list(private_tmp.glob("ops-observe-metrics-*")) == []


# -- Django -------------------------------------------------------------------------------------

DJANGO_RUNS = [
    "quickstart-uvicorn",
    "quickstart-serve",
    "django-md-asgi-from-another-folder",
    "django-md-settings-dict",
]


def django_project(newcomer: Newcomer, variant: str, tmp_path: Path) -> tuple[Path, list[str], str]:
    """``django-admin startproject mysite``, the quick start's files and a variant: (cwd, app args, namespace)."""
    subprocess.run(
        [newcomer.bin("django-admin"), "startproject", "mysite"],
        cwd=tmp_path, env=newcomer.env(), check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    project = tmp_path / "mysite"
    quickstart = (newcomer.clone / "docs/quickstart.md").read_text()
    for name in ("mysite/views.py", "mysite/urls.py", "mysite/asgi.py"):
        (project / name).write_text(block(quickstart, "python", f"# {name}"))
    (project / "ops_observe.toml").write_text(block(quickstart, "toml", "# ops_observe.toml"))
    django_page = (newcomer.clone / "docs/django.md").read_text()
    if variant == "django-md-asgi-from-another-folder":  # the settings file found next to manage.py
        (project / "mysite/asgi.py").write_text(block(django_page, "python", "# mysite/asgi.py"))
        return tmp_path, ["mysite.asgi:application", "--app-dir", "mysite"], "shop"
    if variant == "django-md-settings-dict":
        addition = block(django_page, "python", "# mysite/settings.py (an addition)")
        with (project / "mysite/settings.py").open("a") as settings:
            settings.write("\n" + addition)
        (project / "mysite/asgi.py").write_text(block(django_page, "python", "# mysite/asgi.py", nth=1))
        return project, ["mysite.asgi:application"], "mysite"
    return project, ["mysite.asgi:application"], "shop"


@pytest.mark.parametrize("variant", DJANGO_RUNS)
def test_the_django_project_is_served_wrapped(newcomer: Newcomer, tmp_path: Path, variant: str) -> None:
    cwd, app, namespace = django_project(newcomer, variant, tmp_path)
    port = free_port()
    if variant == "quickstart-serve":
        command = [newcomer.bin("ops-observe"), "serve", *app, "--port", str(port)]
    else:
        command = [newcomer.bin("uvicorn"), *app, "--port", str(port)]
    with serving(command, cwd, newcomer.env(), port, tmp_path) as served:
        items = [httpx.get(f"{served.base}/items/{pk}/", timeout=10) for pk in range(1, 6)]
        missing = httpx.get(f"{served.base}/nope/", timeout=10)
        metrics = httpx.get(f"{served.base}/metrics", timeout=10).text
    for pk, response in enumerate(items, start=1):
        assert response.json() == {"item": pk, "correlation_id": response.headers["x-correlation-id"]}
    assert missing.status_code == 404
    assert served.stderr == "", served.stderr
    lines = served.lines()  # every line JSON, Django's included
    access = served.access_lines()
    assert len(access) == 6
    assert [line["route"] for line in access if line["status"] == 200] == ["/items/<int:pk>/"] * 5
    missing_id = missing.headers["x-correlation-id"]
    assert [(d["logger"], d["message"]) for d in lines if d["correlation_id"] == missing_id] == [
        ("django.request", "Not Found: /nope/"),
        ("ops_observe.access", "GET /nope/ 404"),
    ]
    series = {"endpoint": "/items/<int:pk>/", "method": "GET", "status": "200"}
    assert sample(metrics, f"{namespace}_http_requests_total", **series) == 5
    unmatched = {"endpoint": "<unmatched>", "method": "GET", "status": "404"}
    assert sample(metrics, f"{namespace}_http_requests_total", **unmatched) == 1
