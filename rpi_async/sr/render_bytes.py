"""The renderer's byte backend: the response identifier straight to its encoding.

Theory of operation. ``render.assemble`` builds the identifier exactly as for a
Dataset, with ``_Encoder`` as its backend: ``render.content`` walks the template and
here each content item becomes bytes at once, built from the leaves up (see ``wire``):
the node's pre-encoded head, its value element, then the Content Sequence of its
children, behind an item header. Code sequences are encoded once per code, and a CODE
item without children (laterality, route, family member...) once per (node, code).
Per identifier only dates, numbers, texts, the patient's values and the lengths are
encoded. ``Renderer`` owns the encoders and the rendering caches.

The result must equal ``dicom.transfer.write_identifier(render_identifier(...))`` byte for
byte (both engines must send the same identifier; ``tests/sr`` checks it on many
patients). Text follows the walk's character set decision: a VR that obeys Specific
Character Set (PN, LO, SH, UT...) is encoded as UTF-8, which equals ASCII when the
identifier is all ASCII; a value pydicom would write in its default character set
regardless (CS, DA, DT) must be ASCII. The rare identifiers outside these cases (a
non-ASCII date or coding scheme, a person name with component groups, a 16-bit length
overflow) raise ``wire.Fallback`` and are encoded by pydicom from the Dataset rendering.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import struct
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import zstandard
from pydicom.dataelem import DataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from rpi_async import __version__
from rpi_async.dicom.codes import Code
from rpi_async.dicom.transfer import DEFLATED, deflate, is_implicit, write_identifier
from rpi_async.sr import wire
from rpi_async.sr.content import Template, ValueType
from rpi_async.sr.dsbuild import code_sequence, element
from rpi_async.sr.render import (
    CONCEPT_CODE_SEQUENCE,
    CONTENT_SEQUENCE,
    CONTINUITY_OF_CONTENT,
    DATASET_BACKEND,
    DATE,
    DATETIME,
    ISSUER_OF_PATIENT_ID,
    MEASURED_VALUE_SEQUENCE,
    MEASUREMENT_UNITS_CODE_SEQUENCE,
    NUMERIC_VALUE,
    OBSERVATION_DATETIME,
    OTHER_PATIENT_IDS_SEQUENCE,
    PATIENT_ID,
    SPECIFIC_CHARACTER_SET,
    TEXT_VALUE,
    TYPE_OF_PATIENT_ID,
    UTF8,
    VALUE_TYPE,
    Node,
    Record,
    RenderCache,
    RequestKeys,
    assemble,
    numeric_text,
    render_identifier,
    request_keys,
    stored_content,
)
from rpi_async.sr.wire import ITEM, UL
from rpi_async.store.answers import StoredAnswer
from rpi_async.store.model import OtherPatientId

_MAX_LEAVES = 1024  # cached whole items per node and VR mode (CODE; NUM separately)
_MAX_CODES = 1 << 15  # cached code sequences per tag and VR mode
_SEPARATE = element(CONTINUITY_OF_CONTENT, "CS", "SEPARATE")
_CONTAINER_VALUE_TYPE = element(VALUE_TYPE, "CS", ValueType.CONTAINER.value)
# Enum members as module constants: ``ValueType.CODE`` costs a metaclass lookup per use.
_CONTAINER, _CODE, _NUM, _TEXT, _DATETIME = (
    ValueType.CONTAINER,
    ValueType.CODE,
    ValueType.NUM,
    ValueType.TEXT,
    ValueType.DATETIME,
)
_TEXT_VRS = frozenset({"PN", "LO", "SH", "ST", "LT", "UC", "UT"})  # follow the character set


@lru_cache(maxsize=16384)
def _code_sequence(tag: BaseTag, code: Code) -> tuple[tuple[bytes, bytes], bool]:
    """(Implicit, Explicit) encoding of a one-item code sequence, and whether it is usable.

    Unusable: a non-ASCII coding scheme with an ASCII value and meaning, the one text of
    a code the walk does not look at when it chooses the character set.
    """
    usable = code.scheme.isascii() or not (code.value.isascii() and code.meaning.isascii())
    return wire.both({tag: code_sequence(tag, code)}), usable


@lru_cache(maxsize=1024)
def _empty(tag: int, vr: str, explicit: bool) -> bytes:
    """A requested key this renderer has no value for: zero-length, as pydicom writes it."""
    key = BaseTag(tag)
    return wire.chunk({key: DataElement(key, vr, empty_value_for_VR(vr))}, explicit)


class _Encoder:
    """Content items and top-level elements in one VR mode."""

    def __init__(self, explicit: bool) -> None:
        x = self.x = int(explicit)
        self.explicit = explicit
        self.content = wire.Element(CONTENT_SEQUENCE, "SQ", explicit)
        self.content_prefix = wire.prefix(CONTENT_SEQUENCE, "SQ", explicit)
        self.content_size = len(self.content_prefix) + 4
        self.measured_prefix = wire.prefix(MEASURED_VALUE_SEQUENCE, "SQ", explicit)
        self.numeric_prefix = wire.prefix(NUMERIC_VALUE, "DS", explicit)
        self.text_prefix = wire.prefix(TEXT_VALUE, "UT", explicit)
        self.datetime_prefix = wire.prefix(DATETIME, "DT", explicit)
        self.date_prefix = wire.prefix(DATE, "DA", explicit)
        self.short = wire.US if explicit else wire.UL  # the length of a short-VR value
        self.separate = wire.both({CONTINUITY_OF_CONTENT: _SEPARATE})[x]
        self.observed_element = wire.Element(OBSERVATION_DATETIME, "DT", explicit)
        self.charset_element = wire.both(
            {SPECIFIC_CHARACTER_SET: DataElement(SPECIFIC_CHARACTER_SET, "CS", UTF8)}
        )[x]
        self.other_ids = wire.Element(OTHER_PATIENT_IDS_SEQUENCE, "SQ", explicit)
        self.other_id = wire.Element(PATIENT_ID, "LO", explicit)
        self.other_issuer = wire.Element(ISSUER_OF_PATIENT_ID, "LO", explicit)
        self.other_type = wire.Element(TYPE_OF_PATIENT_ID, "CS", explicit)
        self.elements: dict[tuple[int, str], wire.Element] = {}
        # Per code sequence tag: id(code) -> (code, encoding).
        self.codes: dict[BaseTag, dict[int, tuple[Code, bytes]]] = {
            CONCEPT_CODE_SEQUENCE: {},
            MEASUREMENT_UNITS_CODE_SEQUENCE: {},
        }

    def code(self, tag: BaseTag, code: Code) -> bytes:
        """A one-item code sequence (Concept Code or Measurement Units Code Sequence)."""
        cache = self.codes[tag]
        entry = cache.get(id(code))  # by identity: hashing a Code builds a tuple
        if entry is None or entry[0] is not code:
            encoded, usable = _code_sequence(tag, code)
            if not usable:
                raise wire.Fallback("non-ASCII coding scheme")
            if len(cache) >= _MAX_CODES:
                cache.clear()
            entry = cache[id(code)] = (code, encoded[self.x])  # holds code: id stays unique
        return entry[1]

    def item(self, node: Node, value: Any, children: list[bytes]) -> bytes:
        """The byte backend of ``render.content``: one content item."""
        vt = node.value_type
        x = self.x
        if vt is _CODE:
            if not children:  # the whole item depends on (node, code) only
                leaves = node.wire.leaves[x]
                done = leaves.get(id(value))
                if done is None or done[0] is not value:
                    if len(leaves) >= _MAX_LEAVES:
                        leaves.clear()
                    field = self.code(CONCEPT_CODE_SEQUENCE, value)
                    done = leaves[id(value)] = (value, self._item(node.wire.head[x], field))
                return done[1]
            field = self.code(CONCEPT_CODE_SEQUENCE, value)
        elif vt is _DATETIME:
            # A non-ASCII value raises UnicodeEncodeError, a long one struct.error: both
            # send the identifier to pydicom (``render_identifier_bytes``).
            raw = value.encode("ascii")
            field = self.datetime_prefix + self.short(len(raw) + (len(raw) & 1)) + raw
            if len(raw) & 1:
                field += b" "
        elif vt is _CONTAINER:
            field = self.separate
        elif vt is _NUM:
            number, units = value
            if not children:  # (node, number, units) decide the whole item
                numbers = node.wire.numbers[x]
                key = (number, id(units))
                known = numbers.get(key)
                if known is None or known[0] is not units:
                    if len(numbers) >= _MAX_LEAVES:
                        numbers.clear()
                    field = self._measured(number, units)
                    known = numbers[key] = (units, self._item(node.wire.head[x], field))
                return known[1]
            field = self._measured(number, units)
        elif vt is _TEXT:
            raw = value.encode("utf-8")
            if len(raw) & 1:
                raw += b" "
            field = self.text_prefix + UL(len(raw)) + raw
        else:  # DATE
            raw = value.encode("ascii")
            field = self.date_prefix + self.short(len(raw) + (len(raw) & 1)) + raw
            if len(raw) & 1:
                field += b" "
        head = node.wire.head[x]
        if not children:
            return self._item(head, field)
        inner = b"".join(children)
        size = len(head) + len(field) + self.content_size + len(inner)
        return b"".join((ITEM, UL(size), head, field, self.content_prefix, UL(len(inner)), inner))

    @staticmethod
    def _item(head: bytes, field: bytes) -> bytes:
        return b"".join((ITEM, UL(len(head) + len(field)), head, field))

    def _measured(self, number: float, units: Code) -> bytes:
        """Measured Value Sequence: one item with the units and the Numeric Value (DS)."""
        raw = numeric_text(number).encode("ascii")
        if len(raw) & 1:
            raw += b" "
        item = self.code(MEASUREMENT_UNITS_CODE_SEQUENCE, units)
        item += self.numeric_prefix + self.short(len(raw)) + raw
        return b"".join((self.measured_prefix, UL(len(item) + 8), ITEM, UL(len(item)), item))

    def echo(self, tag: int, vr: str, value: str | tuple[OtherPatientId, ...] | None) -> bytes:
        """A requested key: a record value, the other patient IDs, or zero-length."""
        if value is None:
            return _empty(tag, vr, self.explicit)
        if isinstance(value, tuple):
            return self._other_ids(value)
        coder = self.elements.get((tag, vr))
        if coder is None:
            coder = self.elements[(tag, vr)] = wire.Element(tag, vr, self.explicit)
        if vr == "PN" and "=" in value:
            raise wire.Fallback("person name with component groups")
        return coder.utf8(value) if vr in _TEXT_VRS else coder.text(value)

    def _other_ids(self, others: tuple[OtherPatientId, ...]) -> bytes:
        items = []
        for other in others:
            body = self.other_id.utf8(other.patient_id)
            if other.issuer:
                body += self.other_issuer.utf8(other.issuer)
            items.append(wire.item(body + self.other_type.text(other.type_of_id)))
        return self.other_ids.encode(b"".join(items))

    def constant(self, template: Template, root: Node) -> list[tuple[int, bytes]]:
        """The template's constant top-level elements; Fallback if it needs pydicom."""
        cached = root.wire.top.get(self.explicit)
        if cached is None:
            cached = [
                (tag, wire.chunk({BaseTag(tag): e}, self.explicit))
                for tag, e in DATASET_BACKEND.constant(template, root)
            ]
            if not (_all_ascii(root) and template.tid.isascii()):
                cached = []  # marks "use pydicom"
            root.wire.top[self.explicit] = cached
        if not cached:
            raise wire.Fallback("template text is not ASCII")
        return cached

    def observed(self, text: str) -> bytes:
        return self.observed_element.text(text)

    def content_sequence(self, items: list[bytes]) -> bytes:
        return self.content.encode(b"".join(items))

    def charset(self) -> bytes:
        return self.charset_element

    def finish(self, top: list[tuple[int, bytes]]) -> bytes:
        return b"".join([encoded for _, encoded in top])


def _all_ascii(node: Node) -> bool:
    return node.wire.ascii and all(_all_ascii(child) for child in node.children)


class NeedsRecord(Exception):
    """A stored answer cannot serve this query: render it from the whole record."""


STORED_TEMPLATE_IDS = ("9007", "9000", "3802")  # rendered into the dictionary and stored
DICTIONARY_PATIENTS = 24  # demo patients whose answers make the compression dictionary
DICTIONARY_BYTES = 32 * 1024
ANSWER_LEVEL = 3  # zstd's default (benchmarks/answer_codec.py: RESULTS.md §8)
# An answer inflates to some kilobytes: a frame that claims more than this is corrupt.
MAX_ANSWER_BYTES = 16 << 20


@functools.cache
def answer_dictionary() -> bytes:
    """The dictionary stored answers are compressed with (zstd, raw content).

    The content items of a few synthetic patients in the stored templates: the constant
    heads, concept names and common codes that every answer repeats, so that an answer
    of some kilobytes compresses about tenfold. Deterministic for a given code version;
    its digest is part of ``fingerprint``.
    """
    from rpi_async.sr.registry import TEMPLATES
    from rpi_async.store.demo import generate

    renderer = Renderer(compress=False)
    parts = []
    for record in generate(DICTIONARY_PATIENTS, seed=0):
        for tid in STORED_TEMPLATE_IDS:
            stored = renderer.stored_answer(record, TEMPLATES[tid])
            if stored is not None:
                parts.append(stored.content)
    return b"".join(parts)[-DICTIONARY_BYTES:]


@functools.cache
def fingerprint() -> str:
    """Identity of this renderer and its templates: stored answers of another are ignored.

    A digest of the ``rpi_async.sr`` sources (the codec's settings among them), the
    package version and the compression dictionary, so that any change to a template, a
    value set, the encoder, the codec or the dictionary makes stored answers outdated."""
    digest = hashlib.sha256(__version__.encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    digest.update(answer_dictionary())
    return digest.hexdigest()[:16]


class AnswerCodec:
    """Stored answers compressed: zstd frames with the answer dictionary, without checksum
    or dictionary ID (SQLite keeps the bytes; the fingerprint names the dictionary).

    zstd with this dictionary makes answers about a third smaller than zlib with it did,
    compresses them three times and inflates them four times as fast (RESULTS.md §8).
    zstd's (de)compressors are not thread-safe: each thread gets its own pair."""

    def __init__(self, dictionary: bytes) -> None:
        self._dictionary = zstandard.ZstdCompressionDict(
            dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT
        )
        self._dictionary.precompute_compress(level=ANSWER_LEVEL)
        self._local = threading.local()

    def _pair(self) -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
        pair: tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor] | None
        pair = getattr(self._local, "pair", None)
        if pair is None:
            compressor = zstandard.ZstdCompressor(
                level=ANSWER_LEVEL,
                dict_data=self._dictionary,
                write_checksum=False,
                write_content_size=True,
                write_dict_id=False,
            )
            pair = compressor, zstandard.ZstdDecompressor(dict_data=self._dictionary)
            self._local.pair = pair
        return pair

    def compress(self, content: bytes) -> bytes:
        return self._pair()[0].compress(content)

    def inflate(self, data: bytes) -> bytes | None:
        """``data`` inflated; None if it is not a frame of this codec or claims an
        implausible size (it would be allocated before it is read)."""
        try:
            size = zstandard.frame_content_size(data)
            if not 0 <= size <= MAX_ANSWER_BYTES:
                return None
            return self._pair()[1].decompress(data)
        except zstandard.ZstdError:
            return None


class Renderer:
    """Response identifiers straight to bytes; owns the rendering caches.

    ``identifier_bytes`` equals ``dicom.transfer.write_identifier`` of the Dataset that
    ``render.assemble`` builds with the Dataset backend, without building it; the rare
    identifier outside the byte encoder's cases is built and encoded by pydicom. One
    Renderer per process (the server passes it to every QueryService); ``clear``
    forgets every cached template, code and encoding.
    """

    def __init__(self, *, compress: bool = True) -> None:
        self.fingerprint = fingerprint() if compress else ""
        self._codec = AnswerCodec(answer_dictionary()) if compress else None
        self.cache = RenderCache()
        self._encoders = (_Encoder(False), _Encoder(True))

    def identifier_bytes(
        self,
        record: Record,
        template: Template,
        keys: RequestKeys,
        transfer_syntax: str,
        observation_datetime: datetime.datetime,
        stored: StoredAnswer | None = None,
    ) -> bytes:
        """The identifier encoded in ``transfer_syntax``: Implicit VR LE, or Explicit VR
        LE for any other syntax, deflated for Deflated Explicit VR LE.

        With ``stored`` (not for Implicit VR) the record's stored answer is spliced; when
        this identifier needs pydicom after all, ``NeedsRecord`` asks for the whole record.
        """
        explicit = not is_implicit(transfer_syntax)
        if stored is not None and not explicit:
            raise NeedsRecord("stored answers are Explicit VR")
        try:
            data = self.encode(record, template, keys, explicit, observation_datetime, stored)
        except (wire.Fallback, UnicodeEncodeError, struct.error):
            if stored is not None:
                raise NeedsRecord("this identifier needs pydicom") from None
            ds = assemble(record, template, keys, observation_datetime, DATASET_BACKEND, self.cache)
            return write_identifier(ds, transfer_syntax)
        return deflate(data) if transfer_syntax == DEFLATED else data

    def encode(
        self,
        record: Record,
        template: Template,
        keys: RequestKeys,
        explicit: bool,
        observation_datetime: datetime.datetime,
        stored: StoredAnswer | None = None,
    ) -> bytes:
        """The identifier in Implicit or Explicit VR Little Endian; may raise wire.Fallback.

        ``stored`` (Explicit VR only): the record's stored answer for ``template``, spliced
        instead of walking the template (the record then carries no facts)."""
        encoder = self._encoders[explicit]
        if stored is not None:
            stored = self._inflate(stored)
        return assemble(record, template, keys, observation_datetime, encoder, self.cache, stored)

    def _inflate(self, stored: StoredAnswer) -> StoredAnswer:
        """A stored answer's content as stored compressed, inflated."""
        content = self.inflate(stored.content)
        if content is None:
            raise wire.Fallback("stored answer does not inflate")
        return StoredAnswer(content, stored.age_at, stored.ascii)

    def inflate(self, content: bytes) -> bytes | None:
        """``content`` as stored (compressed), inflated; None if it does not inflate.

        Thread-safe."""
        if self._codec is None:
            return content
        return self._codec.inflate(content)

    def stored_answer(self, record: Record, template: Template) -> StoredAnswer | None:
        """What ``store.answers`` keeps for ``record`` and ``template``: its content items
        in Explicit VR LE without Subject Age; None when they cannot be stored (a
        date-dependent row below the root, or content only pydicom can encode)."""
        encoder = self._encoders[True]
        root = self.cache.compiled(template)
        if not self.cache.storable(root):
            return None
        try:
            encoder.constant(template, root)
            stored = stored_content(record, root, encoder.item, self.cache)
        except (wire.Fallback, UnicodeEncodeError, struct.error):
            return None
        if stored is None or self._codec is None:
            return stored
        return StoredAnswer(self._codec.compress(stored.content), stored.age_at, stored.ascii)

    def identifier(
        self,
        record: Record,
        template: Template,
        request: Dataset | RequestKeys,
        observation_datetime: datetime.datetime,
    ) -> Dataset:
        """The identifier as a Dataset (``render.render_identifier`` with this cache)."""
        return render_identifier(
            record, template, request, observation_datetime=observation_datetime, cache=self.cache
        )

    def clear(self) -> None:
        self.cache.clear()
        self._encoders = (_Encoder(False), _Encoder(True))


def render_identifier_bytes(
    record: Record,
    template: Template,
    request: Dataset | RequestKeys,
    transfer_syntax: str,
    *,
    observation_datetime: datetime.datetime,
    renderer: Renderer | None = None,
) -> bytes:
    """``render_identifier`` encoded in ``transfer_syntax``, as pydicom would encode it."""
    keys = request_keys(request) if isinstance(request, Dataset) else request
    return (renderer or Renderer()).identifier_bytes(
        record, template, keys, transfer_syntax, observation_datetime
    )
