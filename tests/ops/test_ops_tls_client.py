"""``echo`` and ``query`` over TLS (``--tls``, ``--tls-ca``, ``--tls-cert``, ``--tls-key``)
against a mutual-TLS server, and one-line errors that say what failed in the handshake."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rpi_async.cli import app
from rpi_async.cli import commands as _commands  # noqa: F401  (registers the commands)
from tests.cli.cli_support import assert_one_line_error
from tests.conftest import RunningServer, server_settings
from tests.ops.ops_certs import Pki, make_pki
from tests.ops.ops_support import OpsServerThread

pytestmark = pytest.mark.network


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def mtls_server(sample_db: Path, engine: str, pki: Pki) -> Iterator[RunningServer]:
    settings = server_settings(
        sample_db,
        engine,
        tls_cert=pki.server_cert,
        tls_key=pki.server_key,
        tls_ca=pki.ca,
        tls_require_client_cert=True,
    )
    thread = OpsServerThread(settings)
    srv = thread.start()
    yield srv
    thread.stop()


def client_flags(pki: Pki) -> list[str]:
    return ["--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert),
            "--tls-key", str(pki.client_key)]  # fmt: skip


def test_echo_and_query_over_mutual_tls(mtls_server: RunningServer, pki: Pki) -> None:
    port = str(mtls_server.port)
    code, out, err = run("echo", "127.0.0.1", port, "--tls", *client_flags(pki))
    assert (code, out.strip(), err) == (0, "C-ECHO status 0x0000", "")
    code, out, _ = run(
        "query", "127.0.0.1", port, "--patient-id", "P0001", "--issuer", "HOSP_A",
        *client_flags(pki),
    )  # fmt: skip
    assert code == 0
    assert "status 0xFF00 Pending" in out


def test_server_certificate_not_trusted(mtls_server: RunningServer, pki: Pki) -> None:
    result = run("echo", "127.0.0.1", str(mtls_server.port), "--tls", "--timeout", "5")
    assert_one_line_error(*result, "its certificate is not trusted")


def test_client_certificate_refused(mtls_server: RunningServer, pki: Pki) -> None:
    result = run(
        "echo", "127.0.0.1", str(mtls_server.port), "--tls-ca", str(pki.ca), "--timeout", "5"
    )
    assert_one_line_error(*result, "the server refused our certificate")


def test_plain_client_on_tls_port(mtls_server: RunningServer) -> None:
    result = run("echo", "127.0.0.1", str(mtls_server.port), "--timeout", "5")
    assert_one_line_error(*result, "use --tls")


def test_tls_client_on_plain_port(server: RunningServer, pki: Pki) -> None:
    result = run("echo", "127.0.0.1", str(server.port), "--tls-ca", str(pki.ca), "--timeout", "5")
    assert_one_line_error(*result, "does not speak TLS")


def test_handshake_timeout(pki: Pki) -> None:
    with socket.socket() as silent:  # accepts (in the kernel backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = str(silent.getsockname()[1])
        result = run("echo", "127.0.0.1", port, "--tls-ca", str(pki.ca), "--timeout", "1")
    assert_one_line_error(*result, "no answer within 1 s")


def test_bad_tls_files(tmp_path: Path, pki: Pki) -> None:
    result = run("echo", "127.0.0.1", "11112", "--tls-ca", str(tmp_path / "nope.pem"))
    assert_one_line_error(*result, "nope.pem")
    result = run("echo", "127.0.0.1", "11112", "--tls-key", str(pki.client_key))
    assert_one_line_error(*result, "--tls-key needs --tls-cert")


def test_bench_over_mutual_tls(mtls_server: RunningServer, pki: Pki) -> None:
    port = str(mtls_server.port)
    code, _, err = run(
        "bench", "127.0.0.1", port, "--count", "20", "--concurrency", "2", "--warmup", "0",
        "--no-progress", "--demo-ids", "1", *client_flags(pki),
    )  # fmt: skip
    assert code == 0, err
    assert mtls_server.stats.snapshot().associations_accepted >= 20
    result = run("bench", "127.0.0.1", port, "--tls", "--count", "1", "--timeout", "5")
    assert_one_line_error(*result, "server certificate not trusted")
    result = run("bench", "127.0.0.1", port, "--tls-ca", str(pki.ca), "--count", "1")
    assert_one_line_error(*result, "may have refused our certificate")
