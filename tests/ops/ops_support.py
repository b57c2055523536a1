"""Helpers for the operations tests: a server whose Server object the test can reach,
plain HTTP GETs, raw pynetdicom associations,
DCMTK lookup, throw-away certificates."""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from pynetdicom import AE
from pynetdicom.association import Association

from rpi_async.dicom.uids import SopClass
from rpi_async.server import Server
from tests.conftest import ServerThread

T = TypeVar("T")


class OpsServerThread(ServerThread):
    """ServerThread that lets the test reach the Server and run coroutines on its loop."""

    @property
    def server(self) -> Server:
        assert self._server is not None
        return self._server

    def call(self, fn: Callable[[], Coroutine[Any, Any, T]], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(timeout)

    def request_stop(self) -> None:
        """Ask the server to stop without waiting for it (it drains meanwhile)."""
        self._loop.call_soon_threadsafe(self.server.stop)

    @property
    def metrics_port(self) -> int:
        assert self.server.metrics_address is not None
        return self.server.metrics_address[1]


def http_get(port: int, path: str, host: str = "127.0.0.1") -> tuple[int, str]:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def raw_associate(
    port: int,
    *,
    aet: str = "TEST_SCU",
    aec: str = "RPI_SCP",
    tls_args: tuple[Any, str] | None = None,
) -> Association:
    """A pynetdicom association (maybe rejected) whose primitives the test can read."""
    ae = AE(ae_title=aet)
    ae.add_requested_context(SopClass.VERIFICATION)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = 10
    return ae.associate("127.0.0.1", port, ae_title=aec, tls_args=tls_args)


def reject_fields(assoc: Association) -> tuple[int, int, int]:
    prim = assoc.acceptor.primitive
    assert prim is not None
    return int(prim.result or 0), int(prim.result_source or 0), int(prim.diagnostic or 0)
