"""QueryService: one RPI C-FIND, from decoded identifier to response (PS3.4 Annex Q).

Theory of operation. Both network engines decode the request identifier in the
negotiated transfer syntax and call ``QueryService.find``. The service validates the
identifier against PS3.4 Q.2.1.1.3, looks the patient up in the store, renders the
requested template and returns a ``FindResult``. It applies the status rules of
PS3.4 Q.2.1.1.4 (summarised in the project's spec §3):

- exactly one match: Pending FF00 with the identifier; the engine then sends 0000;
- no match: Success 0000 alone;
- several matches (same Patient ID under several issuers, no issuer given): C100;
- template not supported for the SOP class: C200;
- missing Patient ID or Content Template Sequence, or a Mapping Resource other than
  DCMR: A900 with Offending Element and Error Comment;
- an identifier that cannot be decoded: C000 with Error Comment;
- store unavailable, overloaded or too slow: A700;
- a C-CANCEL that arrived before the answer: FE00.

``find`` never raises: whatever goes wrong becomes a status. Patient identifiers are
logged only at DEBUG.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag

from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import SOP_CLASS_BY_NAME, SopClass
from rpi_async.errors import StoreUnavailable
from rpi_async.service.stats import ServerStats
from rpi_async.sr import registry
from rpi_async.sr.render import render_identifier
from rpi_async.store.reader import PatientStore

log = logging.getLogger("rpi_async.dimse")

TAG_PATIENT_ID = Tag(0x0010, 0x0020)
TAG_ISSUER = Tag(0x0010, 0x0021)
TAG_CONTENT_TEMPLATE_SEQUENCE = Tag(0x0040, 0xA504)
TAG_MAPPING_RESOURCE = Tag(0x0008, 0x0105)
TAG_TEMPLATE_IDENTIFIER = Tag(0x0040, 0xDB00)
DCMR = "DCMR"

SOP_NAMES: dict[str, str] = {uid.value: name for name, uid in SOP_CLASS_BY_NAME.items()}


@dataclass(frozen=True, slots=True)
class Peer:
    """Who asked: calling AE title and network address."""

    ae_title: str
    address: str
    port: int


@dataclass(frozen=True, slots=True)
class FindResult:
    """The answer to one C-FIND. A Pending result carries the identifier."""

    status: FindStatus
    identifier: Dataset | None = None
    error_comment: str | None = None
    offending_elements: tuple[BaseTag, ...] = ()
    template: str | None = None

    def status_dataset(self) -> Dataset:
        """Status as a Dataset, with Error Comment and Offending Element when present."""
        ds = Dataset()
        ds.Status = int(self.status)
        if self.error_comment:
            ds.ErrorComment = self.error_comment[:64]
        if self.offending_elements:
            ds.OffendingElement = list(self.offending_elements)
        return ds


class _Invalid(Exception):
    def __init__(self, status: FindStatus, comment: str, *offending: BaseTag) -> None:
        super().__init__(comment)
        self.result = FindResult(status, None, comment, tuple(offending))


def _text(ds: Dataset, tag: BaseTag) -> str | None:
    """A string element's value, stripped; None when absent. May raise on bad encoding."""
    if tag not in ds:
        return None
    value = ds[tag].value
    if value is None:
        return ""
    if isinstance(value, bytes):
        raise ValueError(f"element {tag} could not be decoded")
    return str(value).strip()


def _template_request(identifier: Dataset) -> tuple[str, str]:
    """(mapping resource, template id) from the Content Template Sequence, or _Invalid."""
    if TAG_CONTENT_TEMPLATE_SEQUENCE not in identifier:
        raise _Invalid(
            FindStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
            "Content Template Sequence is required",
            TAG_CONTENT_TEMPLATE_SEQUENCE,
        )
    seq = identifier[TAG_CONTENT_TEMPLATE_SEQUENCE].value
    if not seq or len(seq) != 1:
        raise _Invalid(
            FindStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
            "Content Template Sequence must have exactly one item",
            TAG_CONTENT_TEMPLATE_SEQUENCE,
        )
    item = seq[0]
    resource = _text(item, TAG_MAPPING_RESOURCE)
    if resource != DCMR:
        raise _Invalid(
            FindStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
            "Mapping Resource must be DCMR",
            TAG_MAPPING_RESOURCE,
        )
    template_id = _text(item, TAG_TEMPLATE_IDENTIFIER)
    if not template_id:
        raise _Invalid(
            FindStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
            "Template Identifier is required",
            TAG_TEMPLATE_IDENTIFIER,
        )
    return resource, template_id


class QueryService:
    """Answers RPI C-FINDs from a patient store. Shared by every engine."""

    def __init__(
        self,
        store: PatientStore,
        *,
        stats: ServerStats | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now().astimezone(),
    ) -> None:
        self.store = store
        self.stats = stats if stats is not None else ServerStats()
        self._clock = clock

    async def find(
        self,
        identifier: Dataset | None,
        sop_class_uid: str,
        peer: Peer,
        *,
        is_cancelled: Callable[[], bool] = lambda: False,
    ) -> FindResult:
        """Answer one query. ``identifier`` None means it could not be decoded."""
        sop_name = SOP_NAMES.get(str(sop_class_uid), "unknown")
        try:
            result = await self._find(identifier, sop_class_uid, is_cancelled)
        except _Invalid as invalid:
            result = invalid.result
        except StoreUnavailable as exc:
            log.warning("query from %s answered A700: %s", peer.ae_title, exc)
            result = FindResult(FindStatus.OUT_OF_RESOURCES, error_comment=str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the engine must get a status, whatever happened
            log.error("query from %s failed: %s: %s", peer.ae_title, type(exc).__name__, exc)
            log.debug("query failure detail", exc_info=True)
            result = FindResult(FindStatus.UNABLE_TO_PROCESS, error_comment="Unable to process")
        self.stats.query_answered(sop_name, int(result.status))
        return result

    async def _find(
        self, identifier: Dataset | None, sop_class_uid: str, is_cancelled: Callable[[], bool]
    ) -> FindResult:
        if identifier is None:
            return FindResult(
                FindStatus.UNABLE_TO_PROCESS, error_comment="Identifier could not be decoded"
            )
        try:
            sop_class = SopClass(str(sop_class_uid))
        except ValueError:
            return FindResult(FindStatus.UNABLE_TO_PROCESS, error_comment="SOP class not served")
        try:
            patient_id = _text(identifier, TAG_PATIENT_ID)
            issuer = _text(identifier, TAG_ISSUER) or None
            resource, template_id = _template_request(identifier)
        except _Invalid:
            raise
        except Exception:
            return FindResult(
                FindStatus.UNABLE_TO_PROCESS, error_comment="Identifier could not be decoded"
            )
        if not patient_id:
            raise _Invalid(
                FindStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                "Patient ID is required",
                TAG_PATIENT_ID,
            )
        template = registry.resolve(sop_class, resource, template_id)
        if template is None:
            return FindResult(
                FindStatus.UNABLE_TO_SUPPORT_TEMPLATE,
                error_comment=f"Template {template_id[:16]} not supported for this SOP class",
                offending_elements=(TAG_TEMPLATE_IDENTIFIER,),
            )
        log.debug("lookup patient_id=%r issuer=%r template=%s", patient_id, issuer, template_id)
        records = await self.store.lookup(patient_id, issuer)
        if is_cancelled():
            return FindResult(FindStatus.CANCEL, template=template_id)
        if not records:
            return FindResult(FindStatus.SUCCESS, template=template_id)
        if len(records) > 1:
            return FindResult(
                FindStatus.MORE_THAN_ONE_MATCH,
                error_comment="More than one match: give Issuer of Patient ID",
                template=template_id,
            )
        response = render_identifier(
            records[0], template, identifier, observation_datetime=self._clock()
        )
        return FindResult(FindStatus.PENDING, response, template=template_id)
