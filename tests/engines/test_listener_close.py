"""Closing a listening socket without resetting what it has queued
(``engines.lifecycle.refuse_new_connections``)."""

from __future__ import annotations

import socket
import sys

import pytest

from rpi_async.engines.lifecycle import refuse_new_connections

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux filter")


def test_queued_connection_kept_new_ones_never_complete_then_refused() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        address = listener.getsockname()
        queued = socket.create_connection(address, timeout=5)
        refuse_new_connections(listener)
        late = socket.socket()
        late.settimeout(0.5)
        with pytest.raises(TimeoutError):  # its SYN is dropped: no connection, no reset
            late.connect(address)
        late.close()
        accepted, _ = listener.accept()  # the one queued before is still there
        with accepted, queued:
            accepted.sendall(b"RJ")
            assert queued.recv(2) == b"RJ"
    with socket.socket() as after:
        after.settimeout(5)
        with pytest.raises(ConnectionRefusedError):
            after.connect(address)
