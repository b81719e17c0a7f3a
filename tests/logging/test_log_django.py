"""A real Django project served wrapped by uvicorn: Django's own loggers reach the JSON stream once.

The project is written to ``tmp_path`` (settings, URLconf, ``asgi.py``) and served by a real
``uvicorn`` in a subprocess, with the ``LOGGING`` setting that docs/django.md documents (taken from
the page itself), with ``LOGGING_CONFIG = None``, and with Django's default configuration under
``DEBUG = True`` (whose console handler prints every ``django`` record to stderr).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from services import free_port, get_when_up

DOC = Path(__file__).resolve().parents[2] / "docs" / "django.md"


def documented_logging() -> str:
    """The ``LOGGING = {...}`` sample of docs/django.md's logging section, as written there."""
    section = DOC.read_text().split("## Logging", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None and "LOGGING = {" in found.group(1)
    return found.group(1)


SETTINGS = textwrap.dedent(
    """
    SECRET_KEY = "test-only"
    DEBUG = {debug}
    ALLOWED_HOSTS = ["*"]
    ROOT_URLCONF = "project_urls"
    USE_TZ = True
    INSTALLED_APPS = []
    MIDDLEWARE = []
    """
)

URLS = textwrap.dedent(
    """
    from django.http import HttpResponse
    from django.urls import path


    def ok(request):
        return HttpResponse("ok")


    def boom(request):
        raise RuntimeError("kaboom")


    urlpatterns = [path("ok/", ok), path("boom/", boom)]
    """
)

ASGI = textwrap.dedent(
    """
    import os

    from django.core.asgi import get_asgi_application

    import ops_observe

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project_settings")
    application = ops_observe.wrap(
        get_asgi_application(),
        settings={"service_name": "mysite", "middleware": ["correlation", "logging"], "logging": {"sink": "stdout"}},
    )
    """
)


@pytest.mark.parametrize(
    ("logging_settings", "debug"),
    [
        (documented_logging(), False),
        (documented_logging(), True),
        ("LOGGING_CONFIG = None\n", False),
        ("", True),  # Django's DEFAULT_LOGGING: a console handler on "django" that prints when DEBUG
    ],
    ids=["documented", "documented-debug", "logging-config-none", "django-default-debug"],
)
def test_a_404_and_a_500_are_json_lines_each_written_once(tmp_path: Path, logging_settings: str, debug: bool) -> None:
    (tmp_path / "project_settings.py").write_text(SETTINGS.format(debug=debug) + logging_settings)
    (tmp_path / "project_urls.py").write_text(URLS)
    (tmp_path / "project_asgi.py").write_text(ASGI)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = [sys.executable, "-m", "uvicorn", "project_asgi:application", "--port", str(port)]
    server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        get_when_up(f"{base}/ok/", process=server, timeout=30)
        missing = httpx.get(f"{base}/nope/")
        failing = httpx.get(f"{base}/boom/")
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=20)
    assert (missing.status_code, failing.status_code) == (404, 500)
    assert err == "", err  # no plain text beside the stream
    lines: list[dict[str, Any]] = [json.loads(line) for line in out.splitlines()]  # every line is JSON

    def of(response: httpx.Response) -> list[tuple[str, str, str]]:
        cid = response.headers["x-correlation-id"]
        return [(d["logger"], d["level"], d["message"]) for d in lines if d["correlation_id"] == cid]

    assert of(missing) == [
        ("django.request", "WARNING", "Not Found: /nope/"),
        ("ops_observe.access", "WARNING", "GET /nope/ 404"),
    ]
    assert of(failing) == [
        ("django.request", "ERROR", "Internal Server Error: /boom/"),
        ("ops_observe.access", "ERROR", "GET /boom/ 500"),
    ]
    # Each written once: no copy outside the request's context either, and one traceback in all.
    assert sum("/nope/" in d["message"] for d in lines) == 2
    assert sum("/boom/" in d["message"] for d in lines) == 2
    (failure,) = [d for d in lines if "exception" in d]
    assert failure["logger"] == "django.request" and failure["exception"]["message"] == "kaboom"
    assert failure["status_code"] == 500 and failure["service"] == "mysite"
