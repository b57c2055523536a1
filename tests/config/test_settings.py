from __future__ import annotations

from pathlib import Path

import pytest

from rpi_async.config import Settings, load_settings
from rpi_async.errors import ConfigError


def test_defaults_are_valid_and_documented() -> None:
    settings, origin = load_settings(environ={})
    assert settings == Settings()
    assert settings.ae_title == "RPI_SCP"
    assert settings.port == 11112
    assert set(origin.values()) == {"default"}


def test_toml_then_env_then_cli(tmp_path: Path) -> None:
    config = tmp_path / "rpi.toml"
    config.write_text(
        '[rpi-async]\nport = 2000\nae_title = "FROM_FILE"\nmax_associations = 7\n'
        'allowed_calling_aes = ["A", "B"]\n'
    )
    settings, origin = load_settings(
        config_file=config,
        environ={"RPI_ASYNC_PORT": "3000", "RPI_ASYNC_MAX_ASSOCIATIONS": "9", "HOME": "/x"},
        overrides={"port": 4000, "ae_title": None},
    )
    assert settings.port == 4000
    assert origin["port"] == "cli"
    assert settings.max_associations == 9
    assert origin["max_associations"] == "env RPI_ASYNC_MAX_ASSOCIATIONS"
    assert settings.ae_title == "FROM_FILE"
    assert origin["ae_title"].startswith("file ")
    assert settings.allowed_calling_aes == ("A", "B")


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environ", "needle"),
    [
        ({"RPI_ASYNC_PORT": "eleven"}, "'port'"),
        ({"RPI_ASYNC_PORT": "70000"}, "'port'"),
        ({"RPI_ASYNC_AE_TITLE": "WAY_TOO_LONG_AE_TITLE"}, "'ae_title'"),
        ({"RPI_ASYNC_AE_TITLE": "BACK\\SLASH"}, "'ae_title'"),
        ({"RPI_ASYNC_ENGINE": "threads"}, "'engine'"),
        ({"RPI_ASYNC_ACCEPT_ANY_CALLED_AE": "maybe"}, "'accept_any_called_ae'"),
        ({"RPI_ASYNC_NO_SUCH_KEY": "1"}, "'NO_SUCH_KEY'"),
        ({"RPI_ASYNC_QUERY_TIMEOUT": "0"}, "'query_timeout'"),
    ],
)
def test_bad_values_name_the_key(environ: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ=environ)
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_bad_toml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("port = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config_file=bad, environ={})
    wrong_type = tmp_path / "wrong.toml"
    wrong_type.write_text('port = "11112"\n')
    with pytest.raises(ConfigError, match="'port'"):
        load_settings(config_file=wrong_type, environ={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("colour = 1\n")
    with pytest.raises(ConfigError, match="unknown configuration key 'colour'"):
        load_settings(config_file=unknown, environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(config_file=tmp_path / "missing.toml", environ={})


def test_booleans_and_lists_from_environment() -> None:
    settings, _ = load_settings(
        environ={
            "RPI_ASYNC_ACCEPT_ANY_CALLED_AE": "yes",
            "RPI_ASYNC_ALLOWED_CALLING_AES": "MODALITY1, RIS ,",
        }
    )
    assert settings.accept_any_called_ae is True
    assert settings.allowed_calling_aes == ("MODALITY1", "RIS")
