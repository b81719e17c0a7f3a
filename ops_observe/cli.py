"""The ``ops-observe`` command: serve, check, settings, plugins.

Bad settings exit with status 2 and the one-line error on stderr, never a traceback. Every
command validates the settings the same way (:func:`ops_observe.settings.validate`, as ``wrap()``
does), and every path in a message is shown as the user gave it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ops_observe import plugins
from ops_observe.errors import PluginError, SettingsError
from ops_observe.settings import DEFAULT_FILE, ENV_VAR, Settings, load_settings, to_dict, validate

DESCRIPTION = "Observability for ASGI apps: serve an app wrapped in the suite, check it, show its settings."
"""The help's description: plain text, as every help text (argparse prints it as written)."""

NO_FILE = f"ops-observe: no settings file found (looked for ${ENV_VAR}, ./{DEFAULT_FILE}); showing the defaults"
"""What ``settings`` writes on stderr when it shows the defaults."""

DEMO_SETTINGS = Path(__file__).with_name("demo.toml")
"""The demo's settings, used by `serve` when neither an app nor settings are named."""

MULTIPROC_ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"
APP_ENV_VAR = "OPS_OBSERVE_APP"
"""The ``module:attr`` of the app `serve` wraps, handed to each uvicorn worker."""
APP_DIR_ENV_VAR = "OPS_OBSERVE_APP_DIR"
"""The folder `serve` puts first on ``sys.path`` (``--app-dir``), handed to each uvicorn worker."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    # As uvicorn does: the app's folder first on the path, so that `serve main:app` imports ./main.py
    # (and a dotted-path middleware in the settings resolves the same for every command).
    _use_app_dir(getattr(args, "app_dir", "."))
    try:
        status = int(args.run(args))
        sys.stdout.flush()  # here, not at exit: a closed pipe is then the BrokenPipeError below
        return status
    except (SettingsError, PluginError) as exc:
        print(f"ops-observe: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before uvicorn took over the signals: no traceback
        return 130
    except BrokenPipeError:
        # The reader went away (`ops-observe settings | head`): no traceback. Point stdout at
        # devnull so that the interpreter's last flush at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _version() -> str:
    try:
        return version("ops-observe")
    except PackageNotFoundError:  # pragma: no cover - a checkout run without being installed
        return "unknown (the ops-observe distribution is not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ops-observe", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"ops-observe {_version()}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument(
            "--settings", metavar="FILE", help=f"settings file (default: ${ENV_VAR}, then ./ops_observe.toml)"
        )
        sub.add_argument(
            "--app-dir",
            metavar="DIR",
            default=".",
            help="folder put first on the module search path, for the app and dotted paths in the settings "
            "(default: the current folder, as uvicorn's --app-dir)",
        )
        return sub

    serve = command("serve", "wrap an app (the built-in demo when none is named) and serve it with uvicorn")
    serve.add_argument("app", nargs="?", metavar="MODULE:APP", help="the ASGI app to wrap, e.g. main:app")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default: 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes; with more than one, metrics are shared through a temporary folder "
        "removed when serve exits (default: 1)",
    )
    serve.set_defaults(run=_serve)

    check = command("check", "run the readiness checks once; exit 0 when every critical check passes, 1 otherwise")
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.set_defaults(run=_check)

    settings = command("settings", "validate and print the effective settings, secrets masked")
    settings.set_defaults(run=_settings)

    plugins_cmd = command("plugins", "list every discovered plugin by group, and whether it loads")
    plugins_cmd.set_defaults(run=_plugins)

    alerts_group = commands.add_parser("alerts", help="Prometheus alert rules generated from the metric catalog")
    alerts_commands = alerts_group.add_subparsers(required=True, metavar="COMMAND")

    def alerts_command(name: str, help: str) -> argparse.ArgumentParser:
        sub = alerts_commands.add_parser(name, help=help, description=help)
        sub.add_argument(
            "--settings", metavar="FILE", help=f"settings file (default: ${ENV_VAR}, then ./ops_observe.toml)"
        )
        return sub

    alerts_export = alerts_command("export", "write the enabled packs as a Prometheus rule file (or a PrometheusRule)")
    alerts_export.add_argument("--format", choices=("prometheus", "operator"), default="prometheus")
    alerts_export.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    alerts_export.set_defaults(run=_alerts_export)
    alerts_command(
        "list", "list the alerts of the enabled packs: name, pack, severity, threshold, for, enabled"
    ).set_defaults(run=_alerts_list)
    alerts_check = alerts_command(
        "check", "lint the enabled rules against a live exposition: every metric and label they read exists"
    )
    alerts_check.add_argument("--metrics-url", required=True, metavar="URL", help="e.g. http://127.0.0.1:8000/metrics")
    alerts_check.set_defaults(run=_alerts_check)

    dashboards = commands.add_parser("dashboards", help="Grafana dashboards generated from the metric catalog")
    what = "write the Grafana dashboard (JSON model)"
    dashboards_export = dashboards.add_subparsers(required=True, metavar="COMMAND").add_parser(
        "export", help=what, description=what
    )
    dashboards_export.add_argument(
        "--settings", metavar="FILE", help=f"settings file (default: ${ENV_VAR}, then ./ops_observe.toml)"
    )
    dashboards_export.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    dashboards_export.set_defaults(run=_dashboards_export)
    return parser


def _load(args: argparse.Namespace) -> Settings:
    """The settings of ``--settings`` (else the usual search), validated as ``wrap()`` validates them."""
    return validate(load_settings(args.settings))


def _settings(args: argparse.Namespace) -> int:
    settings = _load(args)
    if settings.source == "<defaults>":  # neither --settings, $OPS_OBSERVE_SETTINGS nor ./ops_observe.toml
        print(NO_FILE, file=sys.stderr)
    print(json.dumps(to_dict(settings), indent=2))
    return 0


def _plugins(args: argparse.Namespace) -> int:
    # A file that does not parse stops here; the plugins it names are validated after the listing,
    # so that a plugin which fails to load is shown beside the others before the exit status 2.
    settings = load_settings(args.settings)
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
    sys.stdout.flush()  # the listing before the error on stderr, when both go to one terminal
    validate(settings)
    return 1 if failed else 0


def _check(args: argparse.Namespace) -> int:
    settings = _load(args)
    from ops_observe.health.command import check_command

    return check_command(settings, as_json=args.json, out=sys.stdout)


def _dashboards_export(args: argparse.Namespace) -> int:
    from ops_observe.alerts.dashboards import export_command

    return export_command(_load(args), args.output)


def _alerts_export(args: argparse.Namespace) -> int:
    from ops_observe.alerts.command import export_command

    return export_command(_load(args), args.format, args.output, sys.stdout)


def _alerts_list(args: argparse.Namespace) -> int:
    from ops_observe.alerts.command import list_command

    return list_command(_load(args), sys.stdout)


def _alerts_check(args: argparse.Namespace) -> int:
    from ops_observe.alerts.check import check_command

    return check_command(_load(args), args.metrics_url, out=sys.stdout, err=sys.stderr)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    if not args.app and not args.settings and not os.environ.get(ENV_VAR) and not os.path.exists(DEFAULT_FILE):
        args.settings = str(DEMO_SETTINGS)
    if args.settings:
        # As given, not made absolute: the workers share this working directory, and a message about
        # the file names it as the user wrote it. Set before the app is imported, so that an app
        # calling wrap() itself reads the same file here and in the workers.
        os.environ[ENV_VAR] = args.settings
    settings = _load(args)  # fail before uvicorn starts, with exit status 2
    os.environ[APP_DIR_ENV_VAR] = os.path.abspath(args.app_dir)
    if args.app:
        from ops_observe.plugins import import_from_string

        import_from_string(args.app)
        os.environ[APP_ENV_VAR] = args.app
    with contextlib.ExitStack() as run:
        if args.workers > 1:
            _prepare_workers(settings, run)
        uvicorn.run(
            "ops_observe.cli:served_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            # uvicorn's own records reach the suite's JSON stream (the logging feature routes the
            # standard library there): its loggers at INFO, as `uvicorn` itself sets them, so that
            # "Uvicorn running on ..." shows; its plain-text handlers are not installed.
            log_config=None,
            log_level="info",
            # The suite's access log replaces uvicorn's, with the request's context, unless kept.
            access_log=settings.logging.keep_server_access_log,
        )
    return 0


def _prepare_workers(settings: Settings, run: contextlib.ExitStack) -> None:
    """Several workers share their metrics through prometheus-client's multiprocess directory.

    Each worker switches to multiprocess mode when it builds its app; the parent only makes sure
    that all of them agree on one directory: a fresh one, removed when ``run`` ends (serve exits
    normally, on SIGTERM or on SIGINT), unless the settings or the environment name one, which is
    the user's and stays.
    """
    if not settings.metrics.multiprocess_dir and not os.environ.get(MULTIPROC_ENV_VAR):
        from ops_observe.metrics.multiprocess import run_directory

        os.environ[MULTIPROC_ENV_VAR] = run.enter_context(run_directory())
        run.callback(os.environ.pop, MULTIPROC_ENV_VAR, None)


def _use_app_dir(app_dir: str) -> None:
    path = os.path.abspath(app_dir)
    if not sys.path or sys.path[0] != path:
        sys.path.insert(0, path)


def served_app() -> Any:
    """The app `serve` runs in each worker: the named app (or the demo), wrapped.

    An app that is wrapped already (its module calls ``ops_observe.wrap()``) is served as it is:
    ``wrap()`` of a wrapped app returns it, so the suite never stacks twice.
    """
    from ops_observe.app import wrap

    app_dir = os.environ.get(APP_DIR_ENV_VAR)
    if app_dir:  # a worker started by uvicorn: the parent's --app-dir
        _use_app_dir(app_dir)
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
