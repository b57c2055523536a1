"""The status rules of an RPI C-FIND, in one place (PS3.4 Q.2.1.1.3 and Q.2.1.1.4).

Theory of operation. Every status the service can answer is decided here, and nowhere
else; the engines only put the ``Answer`` on the wire. The rules read like the
standard's table (the project's spec §3), in the order they apply:

Before the lookup (``check_request``, on the request identifier):

====================================================  =====  ==========================
situation                                             code   offending element
====================================================  =====  ==========================
identifier missing or not decodable                   C000   -
SOP class not one we serve                            C000   -
Content Template Sequence absent, or not one item     A900   (0040,A504)
Mapping Resource not DCMR                             A900   (0008,0105)
Template Identifier empty                             A900   (0040,DB00)
Patient ID absent or empty                            A900   (0010,0020)
Patient ID or Issuer with several values, * or ?     A900   (0010,0020) / (0010,0021)
template not supported for the SOP class              C200   (0040,DB00)
====================================================  =====  ==========================

After the lookup (``after_lookup``): a C-CANCEL received before the answer, FE00;
no match, 0000; one match, FF00 with the identifier (the engine then sends 0000); two
matches (the Patient ID in several issuers' domains, no issuer given), C100.

Whatever else happens (``for_error``): refused by the in-flight limit, the store
unavailable or the query slower than ``query_timeout``, A700; anything unexpected, C000.

An ``Answer`` also carries the request's keys as far as they could be read (patient ID,
issuer, template), for the audit trail, whatever the status.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Protocol

from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import SopClass
from rpi_async.errors import StoreUnavailable
from rpi_async.sr import registry
from rpi_async.sr.content import Template

log = logging.getLogger("rpi_async.dimse")

TAG_PATIENT_ID = 0x00100020
TAG_ISSUER = 0x00100021
TAG_CONTENT_TEMPLATE_SEQUENCE = 0x0040A504
TAG_MAPPING_RESOURCE = 0x00080105
TAG_TEMPLATE_IDENTIFIER = 0x0040DB00
DCMR = "DCMR"

UNDECODABLE = "Identifier could not be decoded"
NOT_SERVED = "SOP class not served"
MORE_THAN_ONE = "More than one match: give Issuer of Patient ID"
SHED = "Server busy: too many queries in flight"
TIMED_OUT = "Query timed out"
UNABLE = "Unable to process"
STOPPING = "Service stopping"


@dataclass(frozen=True, slots=True)
class AuditKeys:
    """The keys a request named, as far as they could be read (for the audit trail)."""

    patient_id: str | None = None
    issuer: str | None = None
    template_id: str | None = None


NO_AUDIT_KEYS = AuditKeys()


@dataclass(frozen=True, slots=True)
class Answer:
    """The service's answer to one C-FIND; the one type both engines put on the wire.

    A Pending answer carries the response identifier, encoded in the request's
    transfer syntax; the engine sends it, then the final Success.
    """

    status: FindStatus
    identifier: bytes | None = None
    error_comment: str | None = None
    offending_elements: tuple[int, ...] = ()
    keys: AuditKeys = field(default=NO_AUDIT_KEYS, repr=False)  # holds patient data

    def with_keys(self, keys: AuditKeys) -> Answer:
        return self if keys is self.keys else replace(self, keys=keys)


@dataclass(frozen=True, slots=True)
class Query:
    """A valid request: whom to look up, what to render, which keys to echo."""

    patient_id: str
    issuer: str | None
    template: Template = field(repr=False)  # the whole row tree: identified by template_id
    template_id: str
    echo: tuple[tuple[int, str], ...]  # requested keys with their VRs, in request order

    @property
    def keys(self) -> AuditKeys:
        return AuditKeys(self.patient_id, self.issuer, self.template_id)


class RequestView(Protocol):
    """What the rules read from a request identifier (``service.request`` reads it)."""

    def text(self, tag: int) -> str | None:
        """A top-level string value, stripped; None when absent; raises when undecodable."""

    def template_items(self) -> int | None:
        """Items in the Content Template Sequence; None when it is absent."""

    def item_text(self, tag: int) -> str | None:
        """A string value of the (single) Content Template Sequence item, like ``text``."""

    def echo_keys(self) -> tuple[tuple[int, str], ...]:
        """The requested keys the response echoes, with their VRs, in request order."""


def failure(
    status: FindStatus, comment: str, *offending: int, keys: AuditKeys = NO_AUDIT_KEYS
) -> Answer:
    return Answer(status, None, comment, offending, keys)


class _Invalid(Exception):
    def __init__(self, comment: str, tag: int) -> None:
        super().__init__(comment)
        self.comment = comment
        self.tag = tag


def _read(view: RequestView, tag: int) -> str | None:
    """A value for the audit record only: None when it cannot be read."""
    try:
        return view.text(tag)
    except Exception:
        return None


def _template_request(view: RequestView) -> str:
    """The template ID from the Content Template Sequence, or _Invalid."""
    items = view.template_items()
    if items is None:
        raise _Invalid("Content Template Sequence is required", TAG_CONTENT_TEMPLATE_SEQUENCE)
    if items != 1:
        raise _Invalid(
            "Content Template Sequence must have exactly one item", TAG_CONTENT_TEMPLATE_SEQUENCE
        )
    if view.item_text(TAG_MAPPING_RESOURCE) != DCMR:
        raise _Invalid("Mapping Resource must be DCMR", TAG_MAPPING_RESOURCE)
    template_id = view.item_text(TAG_TEMPLATE_IDENTIFIER)
    if not template_id:
        raise _Invalid("Template Identifier is required", TAG_TEMPLATE_IDENTIFIER)
    return template_id


def _requested_template(view: RequestView) -> str | None:
    try:
        if view.template_items() == 1:
            return view.item_text(TAG_TEMPLATE_IDENTIFIER) or None
    except Exception:
        return None
    return None


# Single value matching (PS3.4 Q.2.1.1.3) for Patient ID and its issuer: several values
# (a backslash) or a wildcard ("*", "?": PS3.4 C.2.2.2.4) would ask for another kind of
# matching, which this SOP class does not offer; looked up as written it would only miss.
_NOT_SINGLE = str.maketrans("", "", "\\*?")


def _single_value(value: str) -> bool:
    return value.translate(_NOT_SINGLE) == value


def check_request(view: RequestView | None, sop_class_uid: str) -> Query | Answer:
    """The rules before the lookup: a Query to look up, or the failure Answer."""
    if view is None:
        return failure(FindStatus.UNABLE_TO_PROCESS, UNDECODABLE)
    try:
        sop_class = SopClass(str(sop_class_uid))
    except ValueError:
        return failure(FindStatus.UNABLE_TO_PROCESS, NOT_SERVED)
    try:
        patient_id = view.text(TAG_PATIENT_ID)
        issuer = view.text(TAG_ISSUER) or None
        template_id = _template_request(view)
    except _Invalid as invalid:
        keys = AuditKeys(_read(view, TAG_PATIENT_ID), None, _requested_template(view))
        keys = replace(keys, issuer=_read(view, TAG_ISSUER) or None)
        return failure(
            FindStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, invalid.comment, invalid.tag, keys=keys
        )
    except Exception:
        return failure(FindStatus.UNABLE_TO_PROCESS, UNDECODABLE)
    keys = AuditKeys(patient_id or None, issuer, template_id)
    if not patient_id:
        return failure(
            FindStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
            "Patient ID is required",
            TAG_PATIENT_ID,
            keys=keys,
        )
    for tag, value in ((TAG_PATIENT_ID, patient_id), (TAG_ISSUER, issuer)):
        if value and not _single_value(value):
            name = "Patient ID" if tag == TAG_PATIENT_ID else "Issuer of Patient ID"
            return failure(
                FindStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                f"{name} must be one value, without wildcards",
                tag,
                keys=keys,
            )
    template = registry.resolve(sop_class, DCMR, template_id)
    if template is None:
        return failure(
            FindStatus.UNABLE_TO_SUPPORT_TEMPLATE,
            f"Template {template_id[:16]} not supported for this SOP class",
            TAG_TEMPLATE_IDENTIFIER,
            keys=keys,
        )
    try:
        echo = view.echo_keys()
    except Exception:  # a return key pydicom cannot read: nothing to echo it with
        return failure(FindStatus.UNABLE_TO_PROCESS, UNDECODABLE, keys=keys)
    return Query(patient_id, issuer, template, template_id, echo)


def after_lookup(matches: int, cancelled: bool) -> FindStatus:
    """The status once the store has answered (``matches``: 0, 1 or 2 patients)."""
    if cancelled:
        return FindStatus.CANCEL
    if matches == 0:
        return FindStatus.SUCCESS
    if matches == 1:
        return FindStatus.PENDING
    return FindStatus.MORE_THAN_ONE_MATCH


def lookup_answer(status: FindStatus, keys: AuditKeys) -> Answer:
    """A status decided by ``after_lookup`` that carries no identifier."""
    comment = MORE_THAN_ONE if status is FindStatus.MORE_THAN_ONE_MATCH else None
    return Answer(status, None, comment, (), keys)


SHED_ANSWER = failure(FindStatus.OUT_OF_RESOURCES, SHED)
CANCEL_ANSWER = Answer(FindStatus.CANCEL)


def for_error(exc: BaseException, calling_ae: str) -> Answer:
    """The answer when a query failed with ``exc`` (timeout, store, anything else)."""
    if isinstance(exc, TimeoutError):
        log.warning("query from %s timed out: answered A700", calling_ae)
        return failure(FindStatus.OUT_OF_RESOURCES, TIMED_OUT)
    if isinstance(exc, StoreUnavailable):
        log.warning("query from %s answered A700: %s", calling_ae, exc)
        return failure(FindStatus.OUT_OF_RESOURCES, str(exc))
    log.error("query from %s failed: %s", calling_ae, type(exc).__name__)
    log.debug("query failure detail", exc_info=exc)
    return failure(FindStatus.UNABLE_TO_PROCESS, UNABLE)
