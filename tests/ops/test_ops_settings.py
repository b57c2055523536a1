"""The operations settings: validation, and the shipped example configuration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rpi_async.config import Settings, load_settings
from rpi_async.config.settings import FIELD_NAMES
from rpi_async.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "config.example.toml"


def test_example_configuration_is_valid_and_complete() -> None:
    settings, origin = load_settings(config_file=EXAMPLE, environ={})
    assert settings.metrics_port == 9464
    assert settings.allowed_calling_aes[0] == "MODALITY1@10.1.2.0/24"
    assert origin["audit_file"].startswith("file ")
    text = EXAMPLE.read_text()
    missing = [name for name in FIELD_NAMES if not re.search(rf"^#? ?{name} =", text, re.M)]
    assert missing == []


def test_readme_documents_every_key() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Configuration", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in FIELD_NAMES if f"`{name}`" not in section]
    assert missing == []


@pytest.mark.parametrize(
    ("environ", "needle"),
    [
        ({"RPI_ASYNC_ALLOWED_CALLING_AES": "MOD@10.0.0.300/8"}, "'allowed_calling_aes'"),
        ({"RPI_ASYNC_MAX_ASSOCIATIONS_PER_PEER": "-2"}, "'max_associations_per_peer'"),
        ({"RPI_ASYNC_MAX_IN_FLIGHT": "-5"}, "'max_in_flight'"),
        ({"RPI_ASYNC_METRICS_PORT": "70000"}, "'metrics_port'"),
        ({"RPI_ASYNC_AUDIT_PATIENT_ID": "plain"}, "'audit_patient_id'"),
        ({"RPI_ASYNC_AUDIT_SYSLOG": "http://x"}, "'audit_syslog'"),
        ({"RPI_ASYNC_AUDIT_ATNA": "true"}, "'audit_atna'"),
        ({"RPI_ASYNC_TLS_KEY": "/k.pem"}, "'tls_key'"),
        ({"RPI_ASYNC_TLS_CERT": "/c.pem", "RPI_ASYNC_TLS_REQUIRE_CLIENT_CERT": "1"}, "'tls_"),
    ],
)
def test_bad_operations_values_name_the_key(environ: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ=environ)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_operations_values_from_environment() -> None:
    settings, _ = load_settings(
        environ={
            "RPI_ASYNC_ALLOWED_CALLING_AES": "MOD1@10.1.0.0/16,RIS",
            "RPI_ASYNC_METRICS_PORT": "9464",
            "RPI_ASYNC_AUDIT_SYSLOG": "tcp://127.0.0.1:6514",
            "RPI_ASYNC_AUDIT_ATNA": "yes",
            "RPI_ASYNC_TLS_CERT": "/etc/rpi/server.pem",
        }
    )
    assert settings.allowed_calling_aes == ("MOD1@10.1.0.0/16", "RIS")
    assert settings.metrics_port == 9464
    assert settings.audit_atna is True
    assert settings.tls_cert == Path("/etc/rpi/server.pem")
    assert Settings().metrics_port is None  # off by default
