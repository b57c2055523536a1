"""The DICOM Upper Layer protocol core, acceptor side, without I/O (PS3.8, PS3.7).

- ``pdu`` / ``items``: the PDU codec (``read_pdu``, ``write_pdu``);
- ``commands`` / ``dimse``: DIMSE command sets, PDV reassembly and fragmentation;
- ``negotiation``: ``negotiate(rq, policy)``, the one association decision;
- ``fsm``: the PS3.8 state table as data; ``connection``: the ``Connection`` that runs
  it and the events it returns (``events``).

Nothing here imports asyncio, socket, threading, select or logging: the adapters do
the I/O, the clocks and the logging.
"""

from rpi_async.ul.connection import Connection, TimerRequest
from rpi_async.ul.errors import LocalProtocolError, RemoteProtocolError
from rpi_async.ul.events import (
    NEED_DATA,
    Aborted,
    AssociationRequested,
    ConnectionClosed,
    DimseMessage,
    Event,
    ProtocolAborted,
    ReleaseConfirmed,
    ReleaseRequested,
)
from rpi_async.ul.negotiation import AcceptedContext, AcceptorPolicy, Negotiation, negotiate
from rpi_async.ul.pdu import read_pdu, write_pdu

__all__ = [
    "NEED_DATA",
    "Aborted",
    "AcceptedContext",
    "AcceptorPolicy",
    "AssociationRequested",
    "Connection",
    "ConnectionClosed",
    "DimseMessage",
    "Event",
    "LocalProtocolError",
    "Negotiation",
    "ProtocolAborted",
    "ReleaseConfirmed",
    "ReleaseRequested",
    "RemoteProtocolError",
    "TimerRequest",
    "negotiate",
    "read_pdu",
    "write_pdu",
]
