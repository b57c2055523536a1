"""The service's settings: one frozen dataclass, validated on construction.

Sources, each overriding the one before (``load_settings``):

1. the dataclass defaults;
2. a TOML file (``--config FILE``), keys named as the fields, in a ``[rpi-async]`` table
   or at top level;
3. environment variables ``RPI_ASYNC_<FIELD>`` (e.g. ``RPI_ASYNC_PORT=11112``);
4. CLI flags.

Every field is declared once, here; its type drives parsing from text (environment) and
checking of TOML values. Unknown keys and invalid values raise ConfigError naming the key.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from rpi_async.errors import ConfigError
from rpi_async.ops.access import parse_allow_list
from rpi_async.ops.syslog import parse_syslog_target

ENV_PREFIX = "RPI_ASYNC_"
ENGINES = ("pynetdicom", "native")
LOG_LEVELS = ("trace", "debug", "info", "warning", "error")
AUDIT_PATIENT_ID_MODES = ("hash", "clear")
_AE_RE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # PS3.5 AE VR: no backslash, no control


def is_ae_title(text: str) -> bool:
    """A valid AE title (PS3.5 AE VR): 1-16 characters, not all spaces, no backslash."""
    return bool(_AE_RE.match(text)) and bool(text.strip())


def _doc(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True, slots=True)
class Settings:
    """Effective configuration of one rpi-async server."""

    db: Path | None = field(default=None, metadata=_doc("SQLite patient database"))
    host: str = field(default="127.0.0.1", metadata=_doc("address to listen on"))
    port: int = field(default=11112, metadata=_doc("TCP port to listen on"))
    ae_title: str = field(default="RPI_SCP", metadata=_doc("our AE title"))
    accept_any_called_ae: bool = field(
        default=False, metadata=_doc("accept associations whatever Called AE Title they name")
    )
    allowed_calling_aes: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "if set, only these calling AE titles may associate; AE@CIDR binds one to addresses"
        ),
    )
    max_associations_per_peer: int = field(
        default=0, metadata=_doc("concurrent associations from one IP address (0: no limit)")
    )
    engine: str = field(default="pynetdicom", metadata=_doc("network engine"))
    workers: int = field(
        default=1, metadata=_doc("worker processes sharing the port (native engine)")
    )
    pynetdicom_workers: int = field(
        default=8,
        metadata=_doc(
            "associations the pynetdicom engine serves at once; the rest wait to connect"
        ),
    )
    reuse_port: bool = field(
        default=False, metadata=_doc("set SO_REUSEPORT so several processes share the port")
    )
    max_associations: int = field(
        default=64, metadata=_doc("concurrent associations; beyond it A-ASSOCIATE-RJ")
    )
    backlog: int = field(default=1024, metadata=_doc("TCP listen backlog"))
    max_pdu_size: int = field(default=65536, metadata=_doc("maximum PDU length we receive"))
    acse_timeout: float = field(default=30.0, metadata=_doc("seconds to wait for ACSE PDUs"))
    dimse_timeout: float = field(default=30.0, metadata=_doc("seconds to wait for DIMSE"))
    network_timeout: float = field(
        default=60.0, metadata=_doc("seconds an association may stay idle")
    )
    query_timeout: float = field(
        default=10.0, metadata=_doc("seconds one query may take before A700")
    )
    store_readers: int = field(default=4, metadata=_doc("read-only database connections"))
    store_mmap_mib: int = field(
        default=0,
        metadata=_doc("MiB of the database mapped into memory (faster lookups; counted in RSS)"),
    )
    store_inline: bool = field(
        default=False,
        metadata=_doc(
            "look patients up on the event loop's thread (no hand-off; a disk read blocks)"
        ),
    )
    shutdown_grace: float = field(
        default=10.0, metadata=_doc("seconds in-flight associations get at shutdown")
    )
    max_in_flight: int = field(
        default=0,
        metadata=_doc("queries in progress at once; beyond it A700 at once (0: no limit)"),
    )
    log_level: str = field(default="info", metadata=_doc("trace, debug, info, warning, error"))
    log_format: str = field(default="text", metadata=_doc("text or json"))
    metrics_port: int | None = field(
        default=None, metadata=_doc("serve /metrics, /healthz, /readyz over HTTP on this port")
    )
    metrics_host: str = field(default="127.0.0.1", metadata=_doc("address of the metrics port"))
    audit_file: Path | None = field(
        default=None, metadata=_doc("append one JSON line per query to this file")
    )
    audit_syslog: str = field(
        default="",
        metadata=_doc("send audit records to syslog: udp://HOST:PORT, tcp://HOST:PORT, /dev/log"),
    )
    audit_atna: bool = field(
        default=False,
        metadata=_doc("send DICOM audit messages (PS3.15 A.5.3) to audit_syslog, not JSON"),
    )
    audit_patient_id: str = field(
        default="hash", metadata=_doc("patient IDs in audit records: hash (HMAC-SHA256) or clear")
    )
    audit_secret_file: Path | None = field(
        default=None,
        metadata=_doc("HMAC key for hashed patient IDs; default: created in the data directory"),
    )
    audit_source_id: str = field(
        default="", metadata=_doc("audit source identity in audit messages (default: host name)")
    )
    tls_cert: Path | None = field(default=None, metadata=_doc("PEM certificate: DICOM over TLS"))
    tls_key: Path | None = field(
        default=None, metadata=_doc("PEM private key of tls_cert (if not in the same file)")
    )
    tls_ca: Path | None = field(
        default=None, metadata=_doc("PEM CA certificates that client certificates must chain to")
    )
    tls_require_client_cert: bool = field(
        default=False, metadata=_doc("mutual TLS: refuse clients without a valid certificate")
    )

    def __post_init__(self) -> None:
        def bad(key: str, why: str) -> ConfigError:
            return ConfigError(f"invalid value for '{key}': {why}")

        if not 0 <= self.port <= 65535:
            raise bad("port", f"{self.port} is not a TCP port (0-65535)")
        if not is_ae_title(self.ae_title):
            raise bad(
                "ae_title",
                f"{self.ae_title!r} is not a valid AE title (1-16 characters, no backslash)",
            )
        try:
            parse_allow_list(self.allowed_calling_aes)
        except ValueError as exc:
            raise bad("allowed_calling_aes", str(exc)) from None
        if self.engine not in ENGINES:
            raise bad("engine", f"{self.engine!r}; choose one of {', '.join(ENGINES)}")
        if self.workers < 1:
            raise bad("workers", "must be at least 1")
        if self.workers > 1 and self.engine != "native":
            raise bad("workers", "several workers need the native engine (--engine native)")
        if self.pynetdicom_workers < 1:
            raise bad("pynetdicom_workers", "must be at least 1")
        if self.max_associations < 1:
            raise bad("max_associations", "must be at least 1")
        if self.backlog < 1:
            raise bad("backlog", "must be at least 1")
        if self.max_pdu_size != 0 and self.max_pdu_size < 4096:
            raise bad("max_pdu_size", "must be 0 (unlimited) or at least 4096")
        for key in ("acse_timeout", "dimse_timeout", "network_timeout", "query_timeout"):
            if getattr(self, key) <= 0:
                raise bad(key, "must be a positive number of seconds")
        if self.shutdown_grace < 0:
            raise bad("shutdown_grace", "must not be negative")
        if self.store_readers < 1:
            raise bad("store_readers", "must be at least 1")
        if self.store_mmap_mib < 0:
            raise bad("store_mmap_mib", "must be 0 (off) or more")
        if self.log_level not in LOG_LEVELS:
            raise bad("log_level", f"{self.log_level!r}; choose one of {', '.join(LOG_LEVELS)}")
        if self.log_format not in ("text", "json"):
            raise bad("log_format", f"{self.log_format!r}; choose text or json")
        self._check_ops(bad)

    def _check_ops(self, bad: Callable[[str, str], ConfigError]) -> None:
        for key in ("max_associations_per_peer", "max_in_flight"):
            if getattr(self, key) < 0:
                raise bad(key, "must be 0 (no limit) or more")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise bad("metrics_port", f"{self.metrics_port} is not a TCP port (0-65535)")
        if self.audit_patient_id not in AUDIT_PATIENT_ID_MODES:
            raise bad("audit_patient_id", f"{self.audit_patient_id!r}; choose hash or clear")
        if self.audit_syslog:
            try:
                parse_syslog_target(self.audit_syslog)
            except ValueError as exc:
                raise bad("audit_syslog", str(exc)) from None
        if self.audit_atna and not self.audit_syslog:
            raise bad("audit_atna", "needs audit_syslog, where the audit messages go")
        if self.tls_key is not None and self.tls_cert is None:
            raise bad("tls_key", "needs tls_cert")
        if self.tls_ca is not None and self.tls_cert is None:
            raise bad("tls_ca", "needs tls_cert (client certificates are checked only over TLS)")
        if self.tls_require_client_cert and self.tls_ca is None:
            raise bad("tls_require_client_cert", "needs tls_ca to check client certificates")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


_HINTS: dict[str, Any] = get_type_hints(Settings)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Settings))


def field_help(name: str) -> str:
    return str(next(f for f in fields(Settings) if f.name == name).metadata.get("help", ""))


def _base_type(hint: Any) -> Any:
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        return args[0]
    return hint


def _from_text(key: str, text: str) -> Any:
    """Parse an environment-variable value for field ``key``."""
    hint = _base_type(_HINTS[key])
    try:
        if hint is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
        if hint is Path:
            return Path(text)
        if get_origin(hint) is tuple:
            return tuple(p.strip() for p in text.split(",") if p.strip())
    except ValueError:
        raise ConfigError(f"invalid value for '{key}': {text!r}") from None
    return text


def _from_toml(key: str, value: Any) -> Any:
    """Check and convert a TOML value for field ``key``."""
    hint = _base_type(_HINTS[key])
    ok: bool
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is Path:
        ok = isinstance(value, str)
        value = Path(value) if ok else value
    elif get_origin(hint) is tuple:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(f"invalid value for '{key}': {value!r} has the wrong type")
    return value


def to_environment(settings: Settings) -> dict[str, str]:
    """Every setting as ``RPI_ASYNC_*`` variables, the inverse of the environment parsing."""
    out: dict[str, str] = {}
    for name in FIELD_NAMES:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, tuple):
            text = ",".join(value)
        else:
            text = str(value)
        out[ENV_PREFIX + name.upper()] = text
    return out


def _key(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    if key not in FIELD_NAMES:
        raise ConfigError(f"unknown configuration key '{name}'")
    return key


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"configuration file {path} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None
    table = data.get("rpi-async", data)
    if not isinstance(table, dict):
        raise ConfigError(f"configuration file {path}: [rpi-async] must be a table")
    return table


def load_settings(
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[Settings, dict[str, str]]:
    """Build the effective settings and say where each value came from.

    ``overrides`` are CLI flags; a value of None means "not given".
    """
    values: dict[str, Any] = {}
    origin: dict[str, str] = dict.fromkeys(FIELD_NAMES, "default")
    if config_file is not None:
        for name, value in read_toml(config_file).items():
            key = _key(name)
            values[key] = _from_toml(key, value)
            origin[key] = f"file {config_file}"
    env = os.environ if environ is None else environ
    for name, text in env.items():
        if name.startswith(ENV_PREFIX):
            key = _key(name[len(ENV_PREFIX) :])
            values[key] = _from_text(key, text)
            origin[key] = f"env {name}"
    for key, value in (overrides or {}).items():
        if value is not None:
            values[_key(key)] = value
            origin[key] = "cli"
    return Settings(**values), origin
