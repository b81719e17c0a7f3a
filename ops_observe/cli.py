"""The ``ops-observe`` command: serve, check, settings, plugins.

Bad settings exit with status 2 and the one-line error on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ops_observe import plugins
from ops_observe.errors import PluginError, SettingsError
from ops_observe.settings import DEFAULT_FILE, ENV_VAR, Settings, load_settings, to_dict

DEMO_SETTINGS = Path(__file__).with_name("demo.toml")
"""The demo's settings, used by `serve` when neither an app nor settings are named."""

MULTIPROC_ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"
APP_ENV_VAR = "OPS_OBSERVE_APP"
"""The ``module:attr`` of the app `serve` wraps, handed to each uvicorn worker."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (SettingsError, PluginError) as exc:
        print(f"ops-observe: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ops-observe", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument(
            "--settings", metavar="FILE", help=f"settings file (default: ${ENV_VAR}, then ./ops_observe.toml)"
        )
        return sub

    serve = command("serve", "wrap an app (the built-in demo when none is named) and serve it with uvicorn")
    serve.add_argument("app", nargs="?", metavar="MODULE:APP", help="the ASGI app to wrap, e.g. myproject.main:app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(run=_serve)

    check = command("check", "run the readiness checks once; exit 0 when every critical check passes, 1 otherwise")
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.set_defaults(run=_check)

    settings = command("settings", "validate and print the effective settings, secrets masked")
    settings.set_defaults(run=_settings)

    plugins_cmd = command("plugins", "list every discovered plugin by group, and whether it loads")
    plugins_cmd.set_defaults(run=_plugins)
    return parser


def _load(args: argparse.Namespace) -> Settings:
    return load_settings(args.settings)


def _settings(args: argparse.Namespace) -> int:
    print(json.dumps(to_dict(_load(args)), indent=2))
    return 0


def _plugins(args: argparse.Namespace) -> int:
    _load(args)  # the same exit status as every other command for a bad settings file
    failed = 0
    for group in plugins.GROUPS:
        print(f"{group}:")
        specs = plugins.find(group)
        if not specs:
            print("  (none)")
        for spec in specs:
            try:
                spec.load()
                status = "ok"
            except PluginError as exc:
                failed += 1
                status = f"FAILED: {exc}"
            print(f"  {spec.name:<16} {spec.value:<50} {spec.distribution:<24} {status}")
    return 1 if failed else 0


def _check(args: argparse.Namespace) -> int:
    settings = _load(args)
    from ops_observe.health.command import check_command

    return check_command(settings, as_json=args.json, out=sys.stdout)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    if not args.app and not args.settings and not os.environ.get(ENV_VAR) and not os.path.exists(DEFAULT_FILE):
        args.settings = str(DEMO_SETTINGS)
    settings = _load(args)  # fail before uvicorn starts, with exit status 2
    if args.app:
        from ops_observe.plugins import import_from_string

        import_from_string(args.app)
        os.environ[APP_ENV_VAR] = args.app
    if args.settings:
        os.environ[ENV_VAR] = os.path.abspath(args.settings)
    if args.workers > 1:
        _prepare_workers(settings)
    uvicorn.run(
        "ops_observe.cli:served_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,  # the suite's access log replaces uvicorn's, with the request's context
    )
    return 0


def _prepare_workers(settings: Settings) -> None:
    """Several workers share their metrics through prometheus-client's multiprocess directory.

    Each worker switches to multiprocess mode when it builds its app; the parent only makes sure
    that all of them agree on one directory, a fresh one unless the settings or environment name one.
    """
    if not settings.metrics.multiprocess_dir and not os.environ.get(MULTIPROC_ENV_VAR):
        os.environ[MULTIPROC_ENV_VAR] = tempfile.mkdtemp(prefix="ops-observe-metrics-")


def served_app() -> Any:
    """The app `serve` runs in each worker: the named app (or the demo), wrapped."""
    from ops_observe.app import wrap

    target = os.environ.get(APP_ENV_VAR)
    if target:
        from ops_observe.plugins import import_from_string

        app = import_from_string(target)
    else:
        from ops_observe.demo import create_app

        app = create_app()
    return wrap(app)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
