"""``rpi-async serve`` and ``rpi-async config show``: thin layers over Server and Settings.

The serve flags are generated from the Settings fields (``settings_options``): one flag
per key, ``--<key-with-dashes>``, typed as the field, with the field's help text, so a
key added to Settings has its flag without a second list to keep in step.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast, get_origin

import typer

from rpi_async.cli import PlainHelpCommand, app, fail
from rpi_async.config import Settings, load_settings
from rpi_async.config.settings import (
    CONFIG_ENV,
    FIELD_NAMES,
    check_files,
    field_aliases,
    field_help,
    field_type,
)
from rpi_async.errors import RpiError

T = TypeVar("T")


config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help=f"TOML configuration file (default: ${CONFIG_ENV}, if set)",
        show_default=False,
    ),
]


def build_settings(
    config: Path | None, overrides: dict[str, Any]
) -> tuple[Settings, dict[str, str]]:
    return load_settings(config_file=config, environ=os.environ, overrides=overrides)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _shown_default(name: str) -> str:
    default = getattr(Settings(), name)
    if isinstance(default, bool):
        return "on" if default else "off"
    if default in (None, "", ()):
        return ""
    return str(default)


def settings_options() -> list[inspect.Parameter]:
    """One keyword parameter per Settings field, annotated for typer; None = not given."""
    params = []
    for name in FIELD_NAMES:
        base = field_type(name)
        text = field_help(name)
        if shown := _shown_default(name):
            text += f"  [default: {shown}]"
        if base is bool:
            decls: tuple[str, ...] = (f"{_flag(name)}/--no-{_flag(name)[2:]}",)
            annotation: Any = bool | None
        elif get_origin(base) is tuple:
            decls = (_flag(name), *field_aliases(name))
            annotation = list[str] | None
        else:
            decls = (_flag(name), *field_aliases(name))
            annotation = base | None
        metavar = "<str>" if get_origin(base) is tuple else None  # not <list[str]>
        option = typer.Option(*decls, help=text, show_default=False, metavar=metavar)
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[annotation, option],
            )
        )
    return params


def _overrides(values: dict[str, Any]) -> dict[str, Any]:
    """The flags given, as settings values (lists become tuples)."""
    out: dict[str, Any] = {}
    for name in FIELD_NAMES:
        value = values.get(name)
        out[name] = tuple(value) if isinstance(value, list) else value
    return out


def serve(
    *,
    config: Path | None = None,
    demo: bool = False,
    demo_patients: int = 2000,
    worker: bool = False,
    **flags: Any,
) -> None:
    """Run the RPI Query SCP until SIGINT or SIGTERM.

    Every configuration key has a flag (--KEY-WITH-DASHES); see 'rpi-async config show'.
    """
    from rpi_async import logs
    from rpi_async.server import Server

    settings: Settings | None = None
    try:
        settings, _ = build_settings(config, _overrides(flags))
        if demo:
            if flags.get("db") is not None:
                raise fail("--demo and --db exclude each other")
            settings = settings.replace(db=ensure_demo_db(demo_patients))
        check_files(settings)
        logs.configure(settings.log_level, settings.log_format)
        if settings.workers > 1:
            from rpi_async.supervisor import Supervisor

            raise typer.Exit(run_event_loop(Supervisor(settings).run()))
        run_event_loop(Server(settings, worker=worker).run())
    except RpiError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        where = f" on {settings.host}:{settings.port}" if settings is not None else ""
        raise fail(f"cannot listen{where}: {exc.strerror or exc}") from None


_SERVE_OWN = [
    inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ConfigOpt),
    inspect.Parameter(
        "demo",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool, typer.Option("--demo", help="serve a demo database, created on first use")
        ],
    ),
    inspect.Parameter(
        "demo_patients",
        inspect.Parameter.KEYWORD_ONLY,
        default=2000,
        annotation=Annotated[
            int, typer.Option(help="patients in the demo database when it is created")
        ],
    ),
    inspect.Parameter(
        "worker",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[bool, typer.Option("--worker", hidden=True)],
    ),
]
cast(Any, serve).__signature__ = inspect.Signature([*_SERVE_OWN, *settings_options()])
app.command(cls=PlainHelpCommand)(serve)


def ensure_demo_db(patients: int) -> Path:
    """The demo database in the user's data directory, created only if absent.

    Its stored answers are rendered when missing or outdated (as ``rpi-async db
    prerender`` does), so that the demo serves hits as a lookup and a splice: it is this
    tool's own file, created without them or left by an earlier rpi-async."""
    from rpi_async.cli.db import prerender_file
    from rpi_async.store.demo import create_demo_database
    from rpi_async.store.paths import default_db_path

    path = default_db_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        typer.echo(f"creating demo database {path} ({patients} patients)", err=True)
        create_demo_database(path, patients=patients)
    prerender_file(path)
    return path


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is available."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return asyncio.run(main)
    return uvloop.run(main)


def _audit_key_path() -> str:
    from rpi_async.ops.audit import default_key_path

    return str(default_key_path())


# What an unset key means, for ``config show``: the value the server then uses.
_EFFECTIVE_WHEN_UNSET: dict[str, Callable[[], str]] = {
    "db": lambda: "none: give --db or --demo",
    "allowed_calling_aes": lambda: "anyone",
    "metrics_port": lambda: "off",
    "audit_file": lambda: "off",
    "audit_syslog": lambda: "off",
    "audit_syslog_ca": lambda: "system CAs",
    "audit_spool": lambda: "off",
    "audit_secret_file": _audit_key_path,
    "audit_source_id": socket.gethostname,
    "tls_cert": lambda: "off",
    "tls_key": lambda: "in tls_cert",
    "tls_ca": lambda: "none",
}


def shown_value(settings: Settings, name: str) -> str:
    """A setting as ``config show`` prints it: lists comma-separated, unset ones explained."""
    value = getattr(settings, name)
    if value in (None, "", ()) and name in _EFFECTIVE_WHEN_UNSET:
        return _EFFECTIVE_WHEN_UNSET[name]()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


@config_app.command("show", cls=PlainHelpCommand)
def config_show(config: ConfigOpt = None) -> None:
    """Print the effective configuration and where each value came from."""
    try:
        settings, origin = build_settings(config, {})
    except RpiError as exc:
        raise fail(str(exc)) from None
    width = max(len(n) for n in FIELD_NAMES)
    for name in FIELD_NAMES:
        typer.echo(f"{name:<{width}}  {shown_value(settings, name):<24}  ({origin[name]})")
