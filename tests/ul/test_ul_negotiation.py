"""negotiate(): association rejections, per-context results, extended negotiation."""

from __future__ import annotations

from typing import Any

import pytest

from rpi_async import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from rpi_async.dicom.uids import TransferSyntax
from rpi_async.errors import ConfigError
from rpi_async.ul import AcceptorPolicy, negotiate
from rpi_async.ul.codes import ContextResult, UserIdentityType
from rpi_async.ul.items import (
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)
from rpi_async.ul.negotiation import AcceptedContext, accepted_contexts
from rpi_async.ul.pdu import AAssociateAC, AAssociateRJ, AAssociateRQ, read_pdu, write_pdu
from tests.ul.ul_peer import (
    CT_STORAGE,
    EXPLICIT,
    GENERAL,
    IMPLICIT,
    VERIFICATION,
    associate_rq,
    decode_ac,
)

POLICY = AcceptorPolicy("RPI_SCP")
INFO = UserInformation(max_length=16384)


def rq(
    *contexts: PresentationContextRQ,
    called: str = "RPI_SCP",
    calling: str = "FINDSCU",
    info: UserInformation = INFO,
    app: str = "1.2.840.10008.3.1.1.1",
    version: int = 1,
) -> AAssociateRQ:
    if not contexts:
        contexts = (PresentationContextRQ(1, GENERAL, (IMPLICIT,)),)
    return AAssociateRQ(called, calling, contexts, info, app, version)


def ac_of(request: AAssociateRQ, policy: AcceptorPolicy = POLICY) -> AAssociateAC:
    reply = negotiate(request, policy).reply
    assert isinstance(reply, AAssociateAC)
    return reply


@pytest.mark.parametrize(
    ("request_", "policy", "over", "expected"),
    [
        (rq(version=2), POLICY, False, AAssociateRJ(1, 2, 2)),
        (rq(app="1.2.3"), POLICY, False, AAssociateRJ(1, 1, 2)),
        (rq(called="OTHER"), POLICY, False, AAssociateRJ(1, 1, 7)),
        (
            rq(calling="STRANGER"),
            AcceptorPolicy("RPI_SCP", calling_ae_titles=frozenset({"FINDSCU2"})),
            False,
            AAssociateRJ(1, 1, 3),
        ),
        (AAssociateRQ("RPI_SCP", "FINDSCU", ()), POLICY, False, AAssociateRJ(1, 1, 1)),
        (rq(), POLICY, True, AAssociateRJ(2, 3, 2)),
    ],
    ids=[
        "protocol-version",
        "application-context",
        "called-ae",
        "calling-ae",
        "no-contexts",
        "local-limit",
    ],
)
def test_association_rejections(
    request_: AAssociateRQ, policy: AcceptorPolicy, over: bool, expected: AAssociateRJ
) -> None:
    result = negotiate(request_, policy, over_capacity=over)
    assert result.reply == expected
    assert not result.is_accepted
    assert result.accepted == {}


def test_called_ae_any_and_calling_allow_list() -> None:
    policy = AcceptorPolicy(
        "RPI_SCP", accept_any_called_ae=True, calling_ae_titles=frozenset({"FINDSCU "})
    )
    assert negotiate(rq(called="WHATEVER"), policy).is_accepted
    assert negotiate(rq(calling="FINDSCU"), policy).is_accepted


def test_context_results_and_our_transfer_syntax_preference() -> None:
    request = rq(
        PresentationContextRQ(1, GENERAL, (IMPLICIT, EXPLICIT)),
        PresentationContextRQ(3, VERIFICATION, (IMPLICIT,)),
        PresentationContextRQ(5, CT_STORAGE, (IMPLICIT,)),
        PresentationContextRQ(7, GENERAL, (str(TransferSyntax.EXPLICIT_VR_BE),)),
        PresentationContextRQ(9, GENERAL, ()),
    )
    result = negotiate(request, POLICY)
    assert isinstance(result.reply, AAssociateAC)
    assert result.reply.presentation_contexts == (
        PresentationContextAC(1, ContextResult.ACCEPTANCE, EXPLICIT),
        PresentationContextAC(3, ContextResult.ACCEPTANCE, IMPLICIT),
        PresentationContextAC(5, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED, IMPLICIT),
        PresentationContextAC(
            7, ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED, str(TransferSyntax.EXPLICIT_VR_BE)
        ),
        PresentationContextAC(9, ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED, ""),
    )
    assert result.accepted == {
        1: AcceptedContext(1, GENERAL, EXPLICIT),
        3: AcceptedContext(3, VERIFICATION, IMPLICIT),
    }
    assert accepted_contexts(request, result.reply) == result.accepted


def test_no_acceptable_context_is_still_an_acceptance() -> None:
    result = negotiate(rq(PresentationContextRQ(1, CT_STORAGE, (IMPLICIT,))), POLICY)
    assert isinstance(result.reply, AAssociateAC)
    assert result.accepted == {}
    assert (
        result.reply.presentation_contexts[0].result == ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED
    )


def test_acceptance_user_information() -> None:
    info = ac_of(rq()).user_information
    assert info.max_length == POLICY.max_pdu_length
    assert info.implementation_class_uid == IMPLEMENTATION_CLASS_UID
    assert info.implementation_version_name == IMPLEMENTATION_VERSION_NAME
    assert info.role_selections == ()
    assert info.user_identity is None
    assert info.async_ops_window is None


def test_role_selection_we_are_scp_only() -> None:
    info = UserInformation(
        max_length=0,
        role_selections=(
            RoleSelection(GENERAL, scu_role=True, scp_role=True),
            RoleSelection(VERIFICATION, scu_role=False, scp_role=True),
            RoleSelection(CT_STORAGE, scu_role=True, scp_role=False),
        ),
    )
    request = rq(
        PresentationContextRQ(1, GENERAL, (IMPLICIT,)),
        PresentationContextRQ(3, VERIFICATION, (IMPLICIT,)),
        info=info,
    )
    result = negotiate(request, POLICY)
    assert isinstance(result.reply, AAssociateAC)
    assert result.reply.user_information.role_selections == (
        RoleSelection(GENERAL, scu_role=True, scp_role=False),
        RoleSelection(VERIFICATION, scu_role=False, scp_role=False),
        RoleSelection(CT_STORAGE, scu_role=False, scp_role=False),
    )
    results = [cx.result for cx in result.reply.presentation_contexts]
    assert results == [ContextResult.ACCEPTANCE, ContextResult.USER_REJECTION]
    assert set(result.accepted) == {1}


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (UserIdentityRQ(UserIdentityType.USERNAME, True, b"bob"), UserIdentityAC(b"")),
        (
            UserIdentityRQ(UserIdentityType.USERNAME_AND_PASSCODE, True, b"bob", b"pw"),
            UserIdentityAC(),
        ),
        (UserIdentityRQ(UserIdentityType.USERNAME, False, b"bob"), None),
        (UserIdentityRQ(UserIdentityType.KERBEROS, True, b"ticket"), None),
        (UserIdentityRQ(UserIdentityType.JWT, True, b"token"), None),
    ],
)
def test_user_identity_response(identity: UserIdentityRQ, expected: UserIdentityAC | None) -> None:
    info = UserInformation(max_length=0, user_identity=identity)
    assert ac_of(rq(info=info)).user_information.user_identity == expected


def test_with_pynetdicom_on_both_ends() -> None:
    data = associate_rq(
        contexts=((1, GENERAL, (IMPLICIT,)), (3, CT_STORAGE, (IMPLICIT,))),
        roles=((GENERAL, True, True),),
        identity=(2, True, b"bob", b"pw"),
    )
    parsed = read_pdu(data, 1 << 20)
    assert parsed is not None
    request = parsed[0]
    assert isinstance(request, AAssociateRQ)
    reply = ac_of(request)
    theirs = decode_ac(write_pdu(reply)).to_primitive()
    results = [
        (cx.context_id, cx.result) for cx in theirs.presentation_context_definition_results_list
    ]
    assert results == [(1, 0), (3, 3)]
    kinds: dict[str, Any] = {type(x).__name__: x for x in theirs.user_information}
    assert kinds["MaximumLengthNotification"].maximum_length_received == 16384
    assert kinds["UserIdentityNegotiation"].server_response == b""
    role = kinds["SCP_SCU_RoleSelectionNegotiation"]
    assert (role.sop_class_uid, role.scu_role, role.scp_role) == (GENERAL, True, False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ae_title": ""},
        {"ae_title": "A" * 17},
        {"ae_title": "BACK\\SLASH"},
        {"ae_title": "RPI", "calling_ae_titles": frozenset({"\u00e9"})},
        {"ae_title": "RPI", "max_pdu_length": 0},
        {"ae_title": "RPI", "max_pdu_length": 2**32},
        {"ae_title": "RPI", "transfer_syntaxes": ()},
        {"ae_title": "RPI", "implementation_version_name": "X" * 17},
        {"ae_title": "RPI", "implementation_class_uid": ""},
    ],
)
def test_policy_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        AcceptorPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_strips_padding() -> None:
    policy = AcceptorPolicy(" RPI ", calling_ae_titles=frozenset({"A  "}))
    assert policy.ae_title == "RPI"
    assert policy.calling_ae_titles == frozenset({"A"})
