"""End-to-end behaviour of the SCP over real TCP on loopback, for every engine."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from rpi_async import scu
from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import SopClass
from tests.conftest import RunningServer, ServerThread, dcmtk, server_settings
from tests.engines.raw_peer import RawPeer
from tests.engines.scu_tools import associate

pytestmark = pytest.mark.network

ROOTS = {
    ("general", "9007"): ("111517", "DCM"),
    ("general", "9000"): ("111511", "DCM"),
    ("general", "3802"): ("11329-0", "LN"),
    ("breast", "9000"): ("111511", "DCM"),
    ("cardiac", "3802"): ("11329-0", "LN"),
}
SOPS = {
    "general": SopClass.GENERAL_RPI_QUERY,
    "breast": SopClass.BREAST_RPI_QUERY,
    "cardiac": SopClass.CARDIAC_RPI_QUERY,
}


def query(
    srv: RunningServer,
    patient_id: str,
    *,
    issuer: str | None = None,
    template: str = "9007",
    sop: str = "general",
    request: Dataset | None = None,
) -> list[scu.FindResponse]:
    ds = request if request is not None else scu.build_request(patient_id, issuer, template)
    return scu.find(srv.host, srv.port, ds, sop_class=SOPS[sop], timeout=10)


def statuses(responses: list[scu.FindResponse]) -> list[int]:
    return [r.status for r in responses]


@pytest.mark.parametrize(("sop", "template"), sorted(ROOTS))
def test_one_match_gives_pending_then_success(
    server: RunningServer, sop: str, template: str
) -> None:
    responses = query(server, "P0001", issuer="HOSP_A", template=template, sop=sop)
    assert statuses(responses) == [FindStatus.PENDING, FindStatus.SUCCESS]
    ident = responses[0].identifier
    assert ident is not None
    assert ident.PatientID == "P0001"
    assert str(ident.PatientName) == "Doe^Jane"
    assert ident.ValueType == "CONTAINER"
    root = ident.ConceptNameCodeSequence[0]
    assert (root.CodeValue, root.CodingSchemeDesignator) == ROOTS[(sop, template)]
    assert ident.ContentTemplateSequence[0].TemplateIdentifier == template
    assert ident.ContentTemplateSequence[0].MappingResource == "DCMR"
    first = ident.ContentSequence[0]
    assert first.RelationshipType == "HAS CONCEPT MOD"
    assert first.ConceptNameCodeSequence[0].CodeValue == "121049"
    assert responses[1].identifier is None


def test_no_match_gives_success_only(server: RunningServer) -> None:
    responses = query(server, "NOBODY")
    assert statuses(responses) == [FindStatus.SUCCESS]
    assert responses[0].identifier is None


def test_same_id_in_two_issuers(server: RunningServer) -> None:
    assert statuses(query(server, "DUP")) == [FindStatus.MORE_THAN_ONE_MATCH]
    responses = query(server, "DUP", issuer="ISSUER_B")
    assert statuses(responses) == [FindStatus.PENDING, FindStatus.SUCCESS]
    assert responses[0].identifier is not None
    assert str(responses[0].identifier.PatientName) == "Smith^Bob"


@pytest.mark.parametrize(
    ("sop", "template"), [("general", "1234"), ("breast", "3802"), ("cardiac", "9007")]
)
def test_unsupported_template(server: RunningServer, sop: str, template: str) -> None:
    responses = query(server, "P0001", issuer="HOSP_A", template=template, sop=sop)
    assert statuses(responses) == [FindStatus.UNABLE_TO_SUPPORT_TEMPLATE]


def _request_without(keyword: str) -> Dataset:
    ds = scu.build_request("P0001", "HOSP_A")
    if keyword == "MappingResource":
        ds.ContentTemplateSequence[0].MappingResource = "SNM3"
    else:
        delattr(ds, keyword)
    return ds


@pytest.mark.parametrize(
    ("keyword", "offending"),
    [
        ("PatientID", 0x00100020),
        ("ContentTemplateSequence", 0x0040A504),
        ("MappingResource", 0x00080105),
    ],
)
def test_identifier_not_matching_sop_class(
    server: RunningServer, keyword: str, offending: int
) -> None:
    responses = query(server, "", request=_request_without(keyword))
    assert statuses(responses) == [FindStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS]
    assert responses[0].offending_elements == [offending]
    assert responses[0].error_comment


def test_garbage_identifier_gets_c000_and_server_keeps_serving(server: RunningServer) -> None:
    with RawPeer(server.host, server.port) as peer:
        peer.associate()
        # A tag whose declared length runs past the end of the data.
        garbage = b"\x10\x00\x20\x00\xff\xff\x00\x10garbage" + bytes(range(256))
        out = peer.find_raw(garbage)
        assert [r.status for r in out] == [FindStatus.UNABLE_TO_PROCESS]
        out = peer.find_raw(b"\x00" * 7)
        assert [r.status for r in out] == [FindStatus.UNABLE_TO_PROCESS]
        peer.release()
    assert statuses(query(server, "P0001", issuer="HOSP_A")) == [0xFF00, 0]


def test_multi_megabyte_identifier(server: RunningServer) -> None:
    ds = scu.build_request("P0001", "HOSP_A")
    ds.add_new(0x00091010, "UN", bytes(3 * 1024 * 1024))
    responses = query(server, "P0001", request=ds)
    assert statuses(responses)[-1] in (FindStatus.SUCCESS, FindStatus.UNABLE_TO_PROCESS)
    assert statuses(query(server, "P0001", issuer="HOSP_A")) == [0xFF00, 0]


def test_unserved_sop_class_context_is_rejected(server: RunningServer) -> None:
    ct_storage = "1.2.840.10008.5.1.4.1.1.2"
    assoc = associate(server.host, server.port, contexts=(ct_storage, SopClass.GENERAL_RPI_QUERY))
    try:
        assert assoc.is_established
        accepted = {str(c.abstract_syntax) for c in assoc.accepted_contexts}
        rejected = {str(c.abstract_syntax) for c in assoc.rejected_contexts}
        assert accepted == {SopClass.GENERAL_RPI_QUERY.value}
        assert rejected == {ct_storage}
    finally:
        assoc.release()


def test_peer_vanishing_mid_query(server: RunningServer) -> None:
    assoc = associate(server.host, server.port)
    assert assoc.is_established
    context = assoc.accepted_contexts[0]
    from pynetdicom.dimse_primitives import C_FIND

    req = C_FIND()
    req.MessageID = 1
    req.AffectedSOPClassUID = SopClass.GENERAL_RPI_QUERY
    req.Priority = 2
    from io import BytesIO

    from pynetdicom.dsutils import encode

    encoded = encode(scu.build_request("P0001", "HOSP_A"), True, True)
    assert encoded is not None
    req.Identifier = BytesIO(encoded)
    assert context.context_id is not None
    assoc.dimse.send_msg(req, context.context_id)
    assert assoc.dul.socket is not None
    sock = assoc.dul.socket.socket
    assert sock is not None
    sock.shutdown(socket.SHUT_RDWR)
    assoc.abort()
    sock.close()
    assert statuses(query(server, "P0001", issuer="HOSP_A")) == [0xFF00, 0]


def test_echo(server: RunningServer) -> None:
    assert scu.echo(server.host, server.port, timeout=10) == 0
    assert server.stats.echoes == 1


@pytest.mark.dcmtk
@pytest.mark.skipif(dcmtk("echoscu") is None, reason="DCMTK echoscu not installed")
def test_dcmtk_echoscu(server: RunningServer) -> None:
    env = {**os.environ, "TCP_NODELAY": "1"}
    ok = subprocess.run(
        [str(dcmtk("echoscu")), "-aec", "RPI_SCP", server.host, str(server.port)],
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    wrong = subprocess.run(
        [str(dcmtk("echoscu")), "-aec", "NOT_US", server.host, str(server.port)],
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert wrong.returncode != 0
    assert b"called ae title not recogni" in (wrong.stdout + wrong.stderr).lower()


def test_wrong_called_ae_is_rejected(server: RunningServer) -> None:
    with pytest.raises(scu.AssociationFailed, match="called-ae-title-not-recognized"):
        scu.echo(server.host, server.port, aec="SOMEONE_ELSE", timeout=10)
    assert server.stats.associations_rejected["called-ae-title-not-recognized"] == 1


def test_any_called_ae_and_calling_allow_list(sample_db: Path, engine: str) -> None:
    settings = server_settings(
        sample_db, engine, accept_any_called_ae=True, allowed_calling_aes=("GOOD_SCU",)
    )
    thread = ServerThread(settings)
    srv = thread.start()
    try:
        assert scu.echo(srv.host, srv.port, aec="ANYTHING", aet="GOOD_SCU", timeout=10) == 0
        with pytest.raises(scu.AssociationFailed, match="calling-ae-title-not-recognized"):
            scu.echo(srv.host, srv.port, aet="BAD_SCU", timeout=10)
    finally:
        thread.stop()


def test_fifty_concurrent_associations(server: RunningServer) -> None:
    def one(i: int) -> list[int]:
        if i % 3 == 0:
            return statuses(query(server, "NOBODY"))
        return statuses(query(server, "P0001", issuer="HOSP_A", template="9000"))

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(50)))
    for i, result in enumerate(results):
        assert result == ([0] if i % 3 == 0 else [0xFF00, 0])
    assert server.stats.total_queries() == 50


def test_no_patient_data_in_info_logs(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    query(server, "P0001", issuer="HOSP_A")
    query(server, "DUP")
    assert statuses(query(server, "NOBODY")) == [0]
    text = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    for secret in ("P0001", "Doe", "Jane", "DUP", "Smith", "NOBODY"):
        assert secret not in text


def test_final_success_carries_no_data_set(server: RunningServer) -> None:
    """PS3.4 Q.2.1.1.4: the identifier goes with the Pending response only."""
    from pynetdicom.dsutils import encode

    with RawPeer(server.host, server.port) as peer:
        accepted = peer.associate()
        identifier = encode(
            scu.build_request("P0001", "HOSP_A"),
            accepted.transfer_syntax == "1.2.840.10008.1.2",
            True,
        )
        assert identifier is not None
        datasets: list[bytes] = []
        out = peer.find_raw(identifier, datasets=datasets)
        assert [(r.status, r.has_data_set) for r in out] == [(0xFF00, True), (0x0000, False)]
        assert len(datasets) == 1
        peer.release()
