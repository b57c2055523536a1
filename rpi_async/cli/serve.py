"""``rpi-async serve`` and ``rpi-async config show``: thin layers over Server and Settings."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from rpi_async.cli import app, fail
from rpi_async.config import Settings, load_settings
from rpi_async.config.settings import FIELD_NAMES
from rpi_async.errors import RpiError

T = TypeVar("T")

config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML configuration file", show_default=False)
]


def build_settings(
    config: Path | None, overrides: dict[str, Any]
) -> tuple[Settings, dict[str, str]]:
    return load_settings(config_file=config, environ=os.environ, overrides=overrides)


@app.command()
def serve(
    config: ConfigOpt = None,
    db: Annotated[Path | None, typer.Option(help="SQLite patient database")] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="serve a demo database, created on first use")
    ] = False,
    demo_patients: Annotated[
        int, typer.Option(help="patients in the demo database when it is created")
    ] = 2000,
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port")] = None,
    ae_title: Annotated[str | None, typer.Option("--ae-title", help="our AE title")] = None,
    accept_any_called_ae: Annotated[
        bool | None,
        typer.Option("--accept-any-called-ae/--require-called-ae", help="Called AE policy"),
    ] = None,
    allowed_calling_ae: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-calling-ae", help="allowed calling AE title: AE or AE@CIDR (repeatable)"
        ),
    ] = None,
    engine: Annotated[str | None, typer.Option(help="network engine: pynetdicom or native")] = None,
    workers: Annotated[
        int | None, typer.Option(help="worker processes sharing the port (native engine)")
    ] = None,
    worker: Annotated[bool, typer.Option("--worker", hidden=True)] = False,
    max_associations: Annotated[int | None, typer.Option(help="concurrent associations")] = None,
    backlog: Annotated[int | None, typer.Option(help="TCP listen backlog")] = None,
    max_pdu_size: Annotated[int | None, typer.Option(help="maximum PDU we receive")] = None,
    log_level: Annotated[str | None, typer.Option(help="trace|debug|info|warning|error")] = None,
    log_format: Annotated[str | None, typer.Option(help="text|json")] = None,
    max_associations_per_peer: Annotated[
        int | None, typer.Option(help="concurrent associations from one IP address (0: no limit)")
    ] = None,
    max_in_flight: Annotated[
        int | None, typer.Option(help="queries in progress at once; more get A700 (0: no limit)")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="serve /metrics, /healthz, /readyz on this HTTP port")
    ] = None,
    metrics_host: Annotated[str | None, typer.Option(help="address of the metrics port")] = None,
    audit_file: Annotated[Path | None, typer.Option(help="append JSON audit records here")] = None,
    audit_syslog: Annotated[
        str | None, typer.Option(help="audit to syslog: udp://HOST:PORT, tcp://HOST:PORT, /dev/log")
    ] = None,
    audit_atna: Annotated[
        bool | None,
        typer.Option("--audit-atna/--no-audit-atna", help="DICOM audit messages to audit-syslog"),
    ] = None,
    audit_patient_id: Annotated[
        str | None, typer.Option(help="patient IDs in audit records: hash or clear")
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate: DICOM over TLS")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert")] = None,
    tls_ca: Annotated[Path | None, typer.Option(help="PEM CAs for client certificates")] = None,
    tls_require_client_cert: Annotated[
        bool | None,
        typer.Option("--tls-require-client-cert/--tls-optional-client-cert", help="mutual TLS"),
    ] = None,
) -> None:
    """Run the RPI Query SCP until SIGINT or SIGTERM."""
    from rpi_async import logs
    from rpi_async.server import Server

    overrides: dict[str, Any] = {
        "db": db,
        "host": host,
        "port": port,
        "ae_title": ae_title,
        "accept_any_called_ae": accept_any_called_ae,
        "allowed_calling_aes": tuple(allowed_calling_ae) if allowed_calling_ae else None,
        "engine": engine,
        "workers": workers,
        "max_associations": max_associations,
        "backlog": backlog,
        "max_pdu_size": max_pdu_size,
        "log_level": log_level,
        "log_format": log_format,
        "max_associations_per_peer": max_associations_per_peer,
        "max_in_flight": max_in_flight,
        "metrics_port": metrics_port,
        "metrics_host": metrics_host,
        "audit_file": audit_file,
        "audit_syslog": audit_syslog,
        "audit_atna": audit_atna,
        "audit_patient_id": audit_patient_id,
        "tls_cert": tls_cert,
        "tls_key": tls_key,
        "tls_ca": tls_ca,
        "tls_require_client_cert": tls_require_client_cert,
    }
    try:
        settings, _ = build_settings(config, overrides)
        if demo:
            if db is not None:
                raise fail("--demo and --db exclude each other")
            settings = settings.replace(db=ensure_demo_db(demo_patients))
        logs.configure(settings.log_level, settings.log_format)
        if settings.workers > 1:
            from rpi_async.supervisor import Supervisor

            raise typer.Exit(run_event_loop(Supervisor(settings).run()))
        if worker:
            from rpi_async.supervisor import READY_LINE

            run_event_loop(Server(settings, worker=True).run(announce=READY_LINE))
        else:
            run_event_loop(Server(settings).run())
    except RpiError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot listen: {exc.strerror or exc}") from None


def ensure_demo_db(patients: int) -> Path:
    """The demo database in the user's data directory, created only if absent."""
    from rpi_async.store.demo import create_demo_database
    from rpi_async.store.paths import default_db_path

    path = default_db_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        typer.echo(f"creating demo database {path} ({patients} patients)", err=True)
        create_demo_database(path, patients=patients)
    return path


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is available."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return asyncio.run(main)
    return uvloop.run(main)


@config_app.command("show")
def config_show(config: ConfigOpt = None) -> None:
    """Print the effective configuration and where each value came from."""
    try:
        settings, origin = build_settings(config, {})
    except RpiError as exc:
        raise fail(str(exc)) from None
    width = max(len(n) for n in FIELD_NAMES)
    for name in FIELD_NAMES:
        value = getattr(settings, name)
        if isinstance(value, tuple):
            value = ",".join(value)
        typer.echo(f"{name:<{width}}  {value!s:<24}  ({origin[name]})")
