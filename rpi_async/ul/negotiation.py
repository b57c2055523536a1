"""Association negotiation for the acceptor: one pure function (PS3.8 §7.1, PS3.7 Annex D.3).

Theory of operation
-------------------
``negotiate(rq, policy)`` returns the reply PDU and the outcome, with no I/O and no
state, so both engines share it. The association as a whole is rejected (A-ASSOCIATE-
RJ, PS3.8 Table 9-21), in this order, when:

1. protocol version 1 is not offered: permanent, service-provider (ACSE), reason 2;
2. the application context is not the DICOM one: permanent, service-user, reason 2;
3. the called AE title is not ours (unless any is accepted): permanent, user, reason 7;
4. the calling AE title is not on the allow-list, or the caller's own access policy
   refused it (``calling_ae_refused``: e.g. a title bound to other addresses):
   permanent, service-user, reason 3;
5. no presentation context is proposed at all: permanent, service-user, reason 1
   (an A-ASSOCIATE-AC must carry one or more contexts, PS3.8 §9.3.3);
6. the caller says we are at capacity: transient, service-provider (presentation),
   reason 2 "local-limit-exceeded".

Otherwise the association is accepted and each context gets its own result (PS3.8
Table 9-18): acceptance with the first of *our* preferred transfer syntaxes that the
peer proposed, abstract-syntax-not-supported (3) or transfer-syntaxes-not-supported
(4). A request none of whose contexts is acceptable is still *accepted*, with every
context rejected: nothing in PS3.8 or PS3.7 calls for an A-ASSOCIATE-RJ there, and
pynetdicom's acceptor (``ACSE._negotiate_as_acceptor``) does the same; the requestor
sees the per-context reasons and releases or aborts.

Extended negotiation (PS3.7 D.3.3):
- SCP/SCU role selection (D.3.3.4): we are SCP only. Each role selection item offered
  is answered: SCU role accepted when proposed and the SOP class is one we serve, SCP
  role declined. A context whose SOP class the requestor offered only as SCP (SCU role
  0) gets user-rejection, since neither side could then invoke the service.
- User identity (D.3.3.7): we do not authenticate. When the requestor asked for a
  positive response to a username (or username and passcode) identity, the reply has a
  user identity sub-item with an empty server response; otherwise none. Kerberos,
  SAML and JWT identities get no response item: we cannot produce their tokens.
- Asynchronous operations window, SOP class (common) extended negotiation: not
  supported, so no reply item (the defaults apply).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rpi_async import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from rpi_async.dicom.uids import (
    APPLICATION_CONTEXT_NAME,
    PREFERRED_TRANSFER_SYNTAXES,
    SopClass,
)
from rpi_async.errors import ConfigError
from rpi_async.ul.codes import (
    PROTOCOL_VERSION_1,
    AcseRejectReason,
    ContextResult,
    PresentationRejectReason,
    RejectResult,
    RejectSource,
    UserIdentityType,
    UserRejectReason,
)
from rpi_async.ul.items import (
    PresentationContextAC,
    RoleSelection,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)
from rpi_async.ul.pdu import AAssociateAC, AAssociateRJ, AAssociateRQ

DEFAULT_MAX_PDU_LENGTH = 16384
MIN_MAX_PDU_LENGTH = 1024
_MAX_U32 = 0xFFFFFFFF
_PLAIN_IDENTITIES = frozenset({UserIdentityType.USERNAME, UserIdentityType.USERNAME_AND_PASSCODE})


def valid_ae_title(title: str) -> bool:
    """PS3.5 Table 6.2-1 AE: 1 to 16 characters of the default repertoire, no control
    character and no backslash, not only spaces (leading and trailing ones are not
    significant)."""
    return 0 < len(title.strip(" ")) <= 16 and all(" " <= c <= "~" and c != "\\" for c in title)


@dataclass(frozen=True, slots=True)
class AcceptorPolicy:
    """What this acceptor agrees to; validated on construction (``ConfigError``)."""

    ae_title: str
    accept_any_called_ae: bool = False
    calling_ae_titles: frozenset[str] | None = None
    abstract_syntaxes: frozenset[str] = frozenset(SopClass)
    transfer_syntaxes: tuple[str, ...] = PREFERRED_TRANSFER_SYNTAXES
    max_pdu_length: int = DEFAULT_MAX_PDU_LENGTH
    implementation_class_uid: str = IMPLEMENTATION_CLASS_UID
    implementation_version_name: str = IMPLEMENTATION_VERSION_NAME

    def __post_init__(self) -> None:
        if not valid_ae_title(self.ae_title):
            raise ConfigError(
                f"AE title {self.ae_title!r}: 1 to 16 printable ASCII characters, no backslash"
            )
        for title in self.calling_ae_titles or ():
            if not valid_ae_title(title):
                raise ConfigError(f"calling AE title {title!r} in the allow-list is not valid")
        if not MIN_MAX_PDU_LENGTH <= self.max_pdu_length <= _MAX_U32:
            raise ConfigError(
                f"maximum PDU length {self.max_pdu_length}: must be between"
                f" {MIN_MAX_PDU_LENGTH} and {_MAX_U32}"
            )
        if not self.transfer_syntaxes:
            raise ConfigError("at least one transfer syntax must be supported")
        if not 0 < len(self.implementation_version_name) <= 16:
            raise ConfigError("implementation version name: 1 to 16 characters")
        if not 0 < len(self.implementation_class_uid) <= 64:
            raise ConfigError("implementation class UID: 1 to 64 characters")
        object.__setattr__(self, "ae_title", self.ae_title.strip(" "))
        # Plain strings, not StrEnum members: cheaper to compare, and what goes on the wire.
        object.__setattr__(self, "abstract_syntaxes", frozenset(map(str, self.abstract_syntaxes)))
        object.__setattr__(self, "transfer_syntaxes", tuple(map(str, self.transfer_syntaxes)))
        if self.calling_ae_titles is not None:
            titles = frozenset(t.strip(" ") for t in self.calling_ae_titles)
            object.__setattr__(self, "calling_ae_titles", titles)


@dataclass(frozen=True, slots=True)
class AcceptedContext:
    """A presentation context in use: DIMSE messages on ``context_id`` use these syntaxes."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str


@dataclass(frozen=True, slots=True)
class Negotiation:
    """The reply to send and, when it is an acceptance, the contexts in use."""

    reply: AAssociateAC | AAssociateRJ
    accepted: Mapping[int, AcceptedContext] = field(default_factory=dict, hash=False)

    @property
    def is_accepted(self) -> bool:
        return isinstance(self.reply, AAssociateAC)


def _reject(result: int, source: int, reason: int) -> Negotiation:
    return Negotiation(AAssociateRJ(result, source, reason))


def _association_rejection(
    rq: AAssociateRQ, policy: AcceptorPolicy, over_capacity: bool, calling_ae_refused: bool
) -> Negotiation | None:
    if not rq.protocol_version & PROTOCOL_VERSION_1:
        return _reject(
            RejectResult.PERMANENT,
            RejectSource.SERVICE_PROVIDER_ACSE,
            AcseRejectReason.PROTOCOL_VERSION_NOT_SUPPORTED,
        )
    if rq.application_context_name != APPLICATION_CONTEXT_NAME:
        return _reject(
            RejectResult.PERMANENT,
            RejectSource.SERVICE_USER,
            UserRejectReason.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
        )
    if not policy.accept_any_called_ae and rq.called_ae_title != policy.ae_title:
        return _reject(
            RejectResult.PERMANENT,
            RejectSource.SERVICE_USER,
            UserRejectReason.CALLED_AE_TITLE_NOT_RECOGNIZED,
        )
    allowed = policy.calling_ae_titles
    if calling_ae_refused or (allowed is not None and rq.calling_ae_title not in allowed):
        return _reject(
            RejectResult.PERMANENT,
            RejectSource.SERVICE_USER,
            UserRejectReason.CALLING_AE_TITLE_NOT_RECOGNIZED,
        )
    if not rq.presentation_contexts:
        return _reject(
            RejectResult.PERMANENT, RejectSource.SERVICE_USER, UserRejectReason.NO_REASON_GIVEN
        )
    if over_capacity:
        return _reject(
            RejectResult.TRANSIENT,
            RejectSource.SERVICE_PROVIDER_PRESENTATION,
            PresentationRejectReason.LOCAL_LIMIT_EXCEEDED,
        )
    return None


def negotiate(
    rq: AAssociateRQ,
    policy: AcceptorPolicy,
    *,
    over_capacity: bool = False,
    calling_ae_refused: bool = False,
) -> Negotiation:
    """Answer ``rq`` under ``policy``; ``over_capacity`` rejects as local-limit-exceeded,
    ``calling_ae_refused`` as calling-AE-title-not-recognized."""
    rejection = _association_rejection(rq, policy, over_capacity, calling_ae_refused)
    if rejection is not None:
        return rejection
    supported = policy.abstract_syntaxes
    info = rq.user_information
    proposed_roles: dict[str, RoleSelection] = {}
    for offered in info.role_selections:
        proposed_roles.setdefault(offered.sop_class_uid, offered)

    results: list[PresentationContextAC] = []
    accepted: dict[int, AcceptedContext] = {}
    for context in rq.presentation_contexts:
        first_proposed = context.transfer_syntaxes[0] if context.transfer_syntaxes else ""
        abstract = context.abstract_syntax
        if abstract not in supported:
            results.append(
                PresentationContextAC(
                    context.context_id, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED, first_proposed
                )
            )
            continue
        chosen = next(
            (ts for ts in policy.transfer_syntaxes if ts in context.transfer_syntaxes), None
        )
        if chosen is None:
            results.append(
                PresentationContextAC(
                    context.context_id,
                    ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED,
                    first_proposed,
                )
            )
            continue
        role = proposed_roles.get(abstract)
        if role is not None and not role.scu_role:
            results.append(
                PresentationContextAC(context.context_id, ContextResult.USER_REJECTION, chosen)
            )
            continue
        results.append(PresentationContextAC(context.context_id, ContextResult.ACCEPTANCE, chosen))
        accepted[context.context_id] = AcceptedContext(context.context_id, abstract, chosen)

    role_replies = tuple(
        RoleSelection(uid, scu_role=role.scu_role and uid in supported, scp_role=False)
        for uid, role in proposed_roles.items()
    )
    identity = info.user_identity
    identity_reply = None
    if (
        isinstance(identity, UserIdentityRQ)
        and identity.positive_response_requested
        and identity.identity_type in _PLAIN_IDENTITIES
    ):
        identity_reply = UserIdentityAC(b"")
    ac = AAssociateAC(
        called_ae_title=rq.called_ae_title,
        calling_ae_title=rq.calling_ae_title,
        presentation_contexts=tuple(results),
        user_information=UserInformation(
            max_length=policy.max_pdu_length,
            implementation_class_uid=policy.implementation_class_uid,
            implementation_version_name=policy.implementation_version_name,
            role_selections=role_replies,
            user_identity=identity_reply,
        ),
        application_context_name=rq.application_context_name,
    )
    return Negotiation(ac, accepted)


def accepted_contexts(rq: AAssociateRQ, ac: AAssociateAC) -> dict[int, AcceptedContext]:
    """The contexts ``ac`` accepts out of those ``rq`` proposed, by context ID."""
    proposed = {cx.context_id: cx.abstract_syntax for cx in rq.presentation_contexts}
    return {
        cx.context_id: AcceptedContext(cx.context_id, proposed[cx.context_id], cx.transfer_syntax)
        for cx in ac.presentation_contexts
        if cx.result == ContextResult.ACCEPTANCE and cx.context_id in proposed
    }
