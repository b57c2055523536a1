"""One FHIR R4 resource to the facts of the patient model.

Theory of operation: ``Translator.resource`` takes one decoded resource and returns
either a ``PatientInfo`` (a FHIR ``Patient``: DICOM identity, name, birth date, sex,
Other Patient IDs), a ``Translated`` (the facts of a clinical resource, the reference to
its subject, and its key ``Type/id``), or a ``Skipped`` with the reason (a resource type
this importer does not read, a resource without a subject, an entered-in-error record,
an observation no template renders). Anything malformed raises ``FhirError`` naming the
field. Facts are written as patient-document facts (``docs/patient-document.md``) and are
validated by the same code as a document import.

Where each resource goes (sections of ``store.model``; PS3.16 templates in brackets):

- ``Condition`` -> ``problem`` [TID 9004]; also ``cardiac_concern`` [TID 3802] when its
  code is in ``CARDIAC_CONCERNS``, and ``risk_factor`` [TID 9005, 3802] when its code is
  in CID 6087, 6081 or 3756.
- ``Procedure`` -> ``procedure`` [TID 9003]; also ``surgical`` [TID 3802] when its
  category is SNOMED CT 387713003 (surgical procedure) or its code is in CID 3721, and
  ``diagnostic_test`` [TID 3802] when its code is in CID 3757 (the row's value set).
- ``MedicationStatement``, ``MedicationRequest`` -> ``medication`` [TID 9002, 3802], the
  status as CID 3773; also ``hormone`` [TID 9000] when the code is in CID 6080.
- ``Observation`` -> the rows in ``OBSERVATIONS``: smoking status (``social``, values
  mapped to CID 3724), HDL and LDL cholesterol (``lab``, in mg/dL), the gynecological
  counts, ages and the date of the last menstrual period (``gynecological``, TID 9001).
  Other observations (vital signs included: no template has a row for them) are skipped.
- ``FamilyMemberHistory`` -> ``family_history`` [TID 3802], one fact per condition, the
  relationship mapped from HL7 v3 RoleCode to CID 7451.
- ``AllergyIntolerance`` -> ``problem`` [TID 9004 Indicated Problems], with the comment
  "Allergy" or "Intolerance" and the reactions: no RPI template has an allergy row, and
  an allergy is a problem a radiologist must see (contrast media).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from rpi_async.dicom.codes import Code
from rpi_async.sr import concepts as c
from rpi_async.sr.valuesets import cid_members
from rpi_async.store.document import LO_MAX, TEXT_MAX, DocumentError, encoded_fact, person_name
from rpi_async.store.fhir.codes import CodeMapper, FhirError
from rpi_async.store.model import OtherPatientId, Section

SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"

# Resource types read (others are skipped and counted), with the element naming the patient.
SUBJECT_FIELD: dict[str, str] = {
    "Condition": "subject",
    "Procedure": "subject",
    "MedicationStatement": "subject",
    "MedicationRequest": "subject",
    "Observation": "subject",
    "FamilyMemberHistory": "patient",
    "AllergyIntolerance": "patient",
}
GENDER = {"male": "M", "female": "F", "other": "O", "unknown": ""}
# Statuses whose record did not happen (or was a mistake): skipped.
VOID_STATUSES = frozenset({"entered-in-error", "not-taken", "draft", "cancelled", "refuted"})
ONGOING_CLINICAL = {
    "active": True,
    "recurrence": True,
    "relapse": True,
    "inactive": False,
    "remission": False,
    "resolved": False,
}
# MedicationStatement / MedicationRequest status -> CID 3773 Medication status.
IN_PROGRESS = Code("385651009", "SCT", "In progress")
SUSPENDED = Code("385655000", "SCT", "Suspended")
ENDED = Code("385656004", "SCT", "Ended")
MEDICATION_STATUS: dict[str, tuple[Code, bool]] = {
    "active": (IN_PROGRESS, True),
    "on-hold": (SUSPENDED, False),
    "completed": (ENDED, False),
    "stopped": (ENDED, False),
}
# Laterality (CID 244) and the breast sites of CID 6022 with their laterality.
RIGHT, LEFT = Code("24028007", "SCT", "Right"), Code("7771000", "SCT", "Left")
BILATERAL = Code("51440002", "SCT", "Bilateral")
LATERALITY_CODES = frozenset({"24028007", "7771000", "51440002", "66459002"})
BREAST_LATERALITY: dict[str, Code] = {"73056007": RIGHT, "80248007": LEFT, "63762007": BILATERAL}

# SNOMED CT condition codes -> the TID 3802 concern they document, and a CID 3778 stage.
_STAGES = {n: Code(v, "SCT", f"Stage {n}") for n, v in ((1, "258215001"), (2, "258219007"))}
_STAGES |= {n: Code(v, "SCT", f"Stage {n}") for n, v in ((3, "258224005"), (4, "258228008"))}
_STAGES[5] = Code("261617005", "SCT", "Stage 5")
CARDIAC_CONCERNS: dict[str, tuple[Code, Code | None]] = {
    **dict.fromkeys(
        ("161445009", "73211009", "44054006", "46635009"), (c.HISTORY_OF_DIABETES, None)
    ),
    **dict.fromkeys(("161501007", "38341003", "59621000"), (c.HISTORY_OF_HYPERTENSION, None)),
    **dict.fromkeys(
        ("414416008", "13644009", "55822004"), (c.HISTORY_OF_HYPERCHOLESTEROLEMIA, None)
    ),
    **dict.fromkeys(
        ("399211009", "22298006", "401303003", "401314000", "1755008"),
        (c.HISTORY_OF_MYOCARDIAL_INFARCTION, None),
    ),
    **dict.fromkeys(("698247007", "44808001", "49436004"), (c.ARRHYTHMIA_CURRENT, None)),
    **dict.fromkeys(("275552000", "709044004", "90688005"), (c.HISTORY_OF_KIDNEY_DISEASE, None)),
    "431855005": (c.HISTORY_OF_KIDNEY_DISEASE, _STAGES[1]),
    "431856006": (c.HISTORY_OF_KIDNEY_DISEASE, _STAGES[2]),
    "433144002": (c.HISTORY_OF_KIDNEY_DISEASE, _STAGES[3]),
    "431857002": (c.HISTORY_OF_KIDNEY_DISEASE, _STAGES[4]),
    "433146000": (c.HISTORY_OF_KIDNEY_DISEASE, _STAGES[5]),
    "46177005": (c.HISTORY_OF_KIDNEY_DISEASE, _STAGES[5]),
}
SURGICAL_CATEGORY = frozenset({"387713003"})
# Smoking status values (SNOMED CT, as US Core uses them) -> CID 3724 Smoking History.
CURRENT_SMOKER = Code("77176002", "SCT", "Current Smoker")
SMOKING: dict[str, Code] = {
    **dict.fromkeys(
        ("77176002", "449868002", "428041000124106", "65568007", "428071000124103"),
        CURRENT_SMOKER,
    ),
    "428061000124105": CURRENT_SMOKER,
    "8517006": Code("8517006", "SCT", "Former Smoker"),
    "266919005": Code("266919005", "SCT", "No History of Smoking"),
}
# HL7 v3 RoleCode (FamilyMemberHistory.relationship) -> CID 7451 Family Member.
_MOTHER, _FATHER = (
    Code("65656005", "SCT", "Natural mother"),
    Code("9947008", "SCT", "Natural father"),
)
_SISTER, _BROTHER = (
    Code("73678001", "SCT", "Natural sister"),
    Code("60614009", "SCT", "Natural brother"),
)
_GRANDMOTHER = Code("17945006", "SCT", "Natural grand-mother")
_GRANDFATHER = Code("62296006", "SCT", "Natural grand-father")
FAMILY_MEMBERS: dict[str, Code] = {
    **dict.fromkeys(("MTH", "NMTH"), _MOTHER),
    **dict.fromkeys(("FTH", "NFTH"), _FATHER),
    **dict.fromkeys(("SIS", "NSIS"), _SISTER),
    **dict.fromkeys(("BRO", "NBRO"), _BROTHER),
    "DAU": Code("83420006", "SCT", "Natural daughter"),
    "SON": Code("113160008", "SCT", "Natural son"),
    **dict.fromkeys(("GRMTH", "MGRMTH", "PGRMTH"), _GRANDMOTHER),
    **dict.fromkeys(("GRFTH", "MGRFTH", "PGRFTH"), _GRANDFATHER),
    **dict.fromkeys(("AUNT", "MAUNT", "PAUNT"), Code("25211005", "SCT", "Aunt")),
    **dict.fromkeys(("UNCLE", "MUNCLE", "PUNCLE"), Code("38048003", "SCT", "Uncle")),
    "HSIS": Code("2272004", "SCT", "Half-sister"),
    "HBRO": Code("45929001", "SCT", "Half-brother"),
}


@dataclass(frozen=True, slots=True)
class ObservationRow:
    """Where an Observation code goes: an attribute section and the template's concept."""

    section: Section
    concept: Code
    value: str  # "quantity", "code" or "date"


_GYN_COUNTS = (c.GRAVIDA, c.PARA, c.TERM, c.PRETERM, c.LIVE_BIRTHS, c.ABORTA)
# LOINC Observation codes -> template rows. Ages and counts are numbers, converted to the
# row's units when the document is validated (``store.units``).
OBSERVATIONS: dict[str, ObservationRow] = {
    "72166-2": ObservationRow(Section.SOCIAL, c.TOBACCO_SMOKING_BEHAVIOR, "code"),
    **dict.fromkeys(
        ("2085-9", "2086-7"), ObservationRow(Section.LAB, c.HDL_CHOLESTEROL, "quantity")
    ),
    **dict.fromkeys(
        ("2089-1", "18262-6", "13457-7"), ObservationRow(Section.LAB, c.LDL_CHOLESTEROL, "quantity")
    ),
    **{g.value: ObservationRow(Section.GYNECOLOGICAL, g, "quantity") for g in _GYN_COUNTS},
    c.ECTOPIC_PREGNANCIES.value: ObservationRow(
        Section.GYNECOLOGICAL, c.ECTOPIC_PREGNANCIES, "quantity"
    ),
    "11955-2": ObservationRow(Section.GYNECOLOGICAL, c.DATE_OF_LAST_MENSTRUAL_PERIOD, "date"),
    "42798-9": ObservationRow(Section.GYNECOLOGICAL, c.AGE_AT_FIRST_MENSES, "quantity"),
}
VITAL_SIGNS = "vital-signs"
NO_UNITS = "1"


@dataclass(frozen=True, slots=True)
class PatientInfo:
    """A FHIR Patient as the store's demographics."""

    key: str  # "Patient/<id>" (or the fullUrl when the resource has no id)
    aliases: tuple[str, ...]  # every reference that names this patient
    patient_id: str
    issuer: str
    name: str
    birth_date: str
    sex: str
    other_ids: tuple[OtherPatientId, ...]


# A fact as stored in the spool and in ``fhir_resource``: section, document fact, sort key.
FactEntry = tuple[str, dict[str, Any], str]


@dataclass(frozen=True, slots=True)
class Translated:
    """The facts of one clinical resource and the reference to its patient."""

    key: str  # "Condition/<id>"
    subject: str  # a normalised reference: "Patient/<id>" or "urn:uuid:..."
    facts: list[FactEntry] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: str


def normalise_reference(ref: str) -> str:
    """``Patient/1``, ``https://x/fhir/Patient/1/_history/2`` -> ``Patient/1``; URNs as is."""
    if ref.startswith("urn:"):
        return ref
    parts = ref.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:])


def _code_json(code: Code) -> str:
    """The document's compact code form (value and scheme never hold '|': ``codes``)."""
    return f"{code.value}|{code.scheme}|{code.meaning}"


def _text(value: str) -> str:
    return value if len(value) <= TEXT_MAX else value[: TEXT_MAX - 3] + "..."


class Translator:
    """Resources to facts, with an issuer map for Patient identifiers and a code table."""

    def __init__(self, issuer_map: Mapping[str, str], codes: CodeMapper) -> None:
        self.issuer_map = dict(issuer_map)
        self.codes = codes
        self._risks = cid_members(6087) | cid_members(6081) | cid_members(3756)
        self._hormones = cid_members(6080)
        self._cardiac_surgery = cid_members(3721)
        self._cardiac_tests = cid_members(3757)
        # Which FHIR element fed each fact field of the resource being translated.
        self._origin: dict[str, str] = {}

    def resource(self, value: object, full_url: str = "") -> PatientInfo | Translated | Skipped:
        """Translate one resource (FhirError if it is malformed)."""
        if not isinstance(value, dict):
            raise FhirError("", "a resource must be a JSON object")
        kind = value.get("resourceType")
        if not isinstance(kind, str):
            raise FhirError("resourceType", "missing")
        if kind == "Patient":
            return self.patient(value, full_url)
        subject_field = SUBJECT_FIELD.get(kind)
        if subject_field is None:
            return Skipped(f"{kind} (not read)")
        subject = value.get(subject_field)
        ref = subject.get("reference") if isinstance(subject, dict) else None
        if not isinstance(ref, str) or not ref.strip():
            return Skipped(f"{kind} without a {subject_field}")
        ref = normalise_reference(ref.strip())
        if not (ref.startswith("Patient/") or ref.startswith("urn:")):
            return Skipped(f"{kind} whose {subject_field} is not a Patient")
        if self._void(value):
            return Skipped(f"{kind} entered in error, refuted or not done")
        key = self._key(kind, value, full_url)
        self._origin = {}
        facts = getattr(self, f"_{kind}")(value)
        if isinstance(facts, Skipped):
            return facts
        return Translated(key, ref, [self._checked(s, f, d) for s, f, d in facts])

    # --- helpers --------------------------------------------------------------------

    def _date(self, value: Mapping[str, Any], role: str, *names: str) -> str | None:
        """The first of ``names`` present (a dateTime, or a Period's start); remembers which
        element fed fact field ``role``, for error messages."""
        for name in names:
            raw = value.get(name)
            if isinstance(raw, str):
                self._origin[role] = name
                return raw
            if isinstance(raw, dict) and name.endswith("Period"):
                start = raw.get("start" if role != "end" else "end")
                if isinstance(start, str):
                    self._origin[role] = f"{name}.{'end' if role == 'end' else 'start'}"
                    return start
        return None

    @staticmethod
    def _key(kind: str, value: Mapping[str, Any], full_url: str) -> str:
        rid = value.get("id")
        if isinstance(rid, str) and rid:
            return f"{kind}/{rid}"
        if full_url:
            return full_url
        # No identity at all: the content's hash, so that a re-import is idempotent.
        return f"{kind}/#" + hashlib.sha1(orjson.dumps(value), usedforsecurity=False).hexdigest()

    @staticmethod
    def _void(value: Mapping[str, Any]) -> bool:
        if value.get("status") in VOID_STATUSES:
            return True
        verification = value.get("verificationStatus")
        if isinstance(verification, dict):
            for coding in verification.get("coding") or ():
                if isinstance(coding, dict) and coding.get("code") in VOID_STATUSES:
                    return True
        return False

    def _checked(self, section: Section, fact: dict[str, Any], when: str) -> FactEntry:
        """Validate a fact as a document fact would be (dates, lengths, units)."""
        fact = {k: v for k, v in fact.items() if v is not None}  # stored as JSON: no nulls
        try:
            kw, _ = encoded_fact(section, fact)
        except DocumentError as exc:
            raise FhirError(self._origin.get(exc.field, exc.field), exc.message) from None
        return section.value, fact, when or kw.get("start", "")

    def _ongoing(self, value: Mapping[str, Any]) -> bool | None:
        status = value.get("clinicalStatus")
        if isinstance(status, dict):
            for coding in status.get("coding") or ():
                if isinstance(coding, dict) and coding.get("code") in ONGOING_CLINICAL:
                    return ONGOING_CLINICAL[str(coding["code"])]
        return None

    def _body_site(self, value: Mapping[str, Any], fact: dict[str, Any]) -> None:
        """bodySite codings: a laterality (CID 244), a breast (CID 6022), or a site."""
        sites = value.get("bodySite")
        if not isinstance(sites, list):
            return
        for i, site in enumerate(sites):
            code = self.codes.concept(site, f"bodySite[{i}]", required=False)
            if code is None or code.scheme != "SCT":
                continue
            if code.value in LATERALITY_CODES:
                fact.setdefault("laterality", _code_json(code))
            elif code.value in BREAST_LATERALITY:
                fact.setdefault("laterality", _code_json(BREAST_LATERALITY[code.value]))
                fact.setdefault("site", _code_json(code))
            else:
                fact.setdefault("site", _code_json(code))

    @staticmethod
    def _note(value: Mapping[str, Any], prefix: str = "") -> str | None:
        texts = [prefix] if prefix else []
        for note in value.get("note") or ():
            if isinstance(note, dict) and isinstance(note.get("text"), str):
                texts.append(note["text"].strip())
        joined = "; ".join(t for t in texts if t)
        return _text(joined) if joined else None

    # --- one method per resource type --------------------------------------------------

    def _Condition(self, value: Mapping[str, Any]) -> list[tuple[Section, dict[str, Any], str]]:
        code = self.codes.concept(value.get("code"), "code")
        assert code is not None
        fact: dict[str, Any] = {"code": _code_json(code)}
        start = self._date(value, "start", "onsetDateTime", "onsetPeriod", "recordedDate")
        end = self._date(value, "end", "abatementDateTime", "abatementPeriod")
        if start:
            fact["start"] = start
        if end:
            fact["end"] = end
        self._body_site(value, fact)
        ongoing = self._ongoing(value)
        note = self._note(value)
        out = [(Section.PROBLEM, {**fact, "ongoing": ongoing, "text": note}, start or "")]
        if code.scheme == "SCT" and code.value in CARDIAC_CONCERNS:
            concern, stage = CARDIAC_CONCERNS[code.value]
            extra = {"code": _code_json(concern), "start": start, "end": end, "text": note}
            if stage is not None:
                extra["result"] = _code_json(stage)
            out.append((Section.CARDIAC_CONCERN, extra, start or ""))
        if (code.value, code.scheme) in self._risks:
            out.append((Section.RISK_FACTOR, {"code": fact["code"]}, start or ""))
        return out

    def _Procedure(self, value: Mapping[str, Any]) -> list[tuple[Section, dict[str, Any], str]]:
        code = self.codes.concept(value.get("code"), "code")
        assert code is not None
        fact: dict[str, Any] = {"code": _code_json(code)}
        start = self._date(value, "start", "performedDateTime", "performedPeriod")
        if start:
            fact["start"] = start
        self._body_site(value, fact)
        outcome = self.codes.concept(value.get("outcome"), "outcome", required=False)
        if outcome is not None:
            fact["result"] = _code_json(outcome)
        note = self._note(value)
        out = [(Section.PROCEDURE, {**fact}, start or "")]
        brief = {"code": fact["code"], "start": start, "text": note, "result": fact.get("result")}
        key = (code.value, code.scheme)
        surgical = self.codes.has_code(value.get("category"), SCT, SURGICAL_CATEGORY)
        if surgical or key in self._cardiac_surgery:
            out.append((Section.SURGICAL, brief, start or ""))
        if key in self._cardiac_tests:
            out.append((Section.DIAGNOSTIC_TEST, dict(brief), start or ""))
        return out

    def _medication(
        self, value: Mapping[str, Any], dosages: str, start_names: tuple[str, ...]
    ) -> list[tuple[Section, dict[str, Any], str]] | Skipped:
        if "medicationCodeableConcept" not in value:
            return Skipped(f"{value['resourceType']} naming a Medication resource")
        code = self.codes.concept(value["medicationCodeableConcept"], "medicationCodeableConcept")
        assert code is not None
        fact: dict[str, Any] = {"code": _code_json(code)}
        start = self._date(value, "start", *start_names)
        if start:
            fact["start"] = start
        end = self._date(value, "end", "effectivePeriod")
        if end:
            fact["end"] = end
        status = MEDICATION_STATUS.get(str(value.get("status")))
        if status is not None:
            fact["modifier"] = _code_json(status[0])
            fact["ongoing"] = status[1]
        dose = _dosage(value.get(dosages))
        if dose:
            fact["text"] = _text(dose)
        out = [(Section.MEDICATION, fact, start or "")]
        if (code.value, code.scheme) in self._hormones:
            hormone: dict[str, Any] = {
                k: fact[k] for k in ("code", "start", "end", "ongoing") if k in fact
            }
            out.append((Section.HORMONE, hormone, start or ""))
        return out

    def _MedicationStatement(
        self, value: Mapping[str, Any]
    ) -> list[tuple[Section, dict[str, Any], str]] | Skipped:
        return self._medication(value, "dosage", ("effectiveDateTime", "effectivePeriod"))

    def _MedicationRequest(
        self, value: Mapping[str, Any]
    ) -> list[tuple[Section, dict[str, Any], str]] | Skipped:
        return self._medication(value, "dosageInstruction", ("authoredOn",))

    def _Observation(
        self, value: Mapping[str, Any]
    ) -> list[tuple[Section, dict[str, Any], str]] | Skipped:
        code = self.codes.concept(value.get("code"), "code", required=False)
        row = None if code is None or code.scheme != "LN" else OBSERVATIONS.get(code.value)
        if row is None:
            vital = _has_category(value.get("category"), VITAL_SIGNS)
            return Skipped("Observation of vital signs" if vital else "Observation without a row")
        when = self._date(value, "when", "effectiveDateTime", "effectivePeriod", "issued") or ""
        fact: dict[str, Any] = {"concept": _code_json(row.concept)}
        if row.value == "code":
            found = self.codes.concept(value.get("valueCodeableConcept"), "valueCodeableConcept")
            assert found is not None
            if row.concept == c.TOBACCO_SMOKING_BEHAVIOR and found.scheme == "SCT":
                found = SMOKING.get(found.value, found)
            fact["code"] = _code_json(found)
        elif row.value == "date":
            raw = value.get("valueDateTime")
            if not isinstance(raw, str):
                raise FhirError("valueDateTime", "missing (a date is expected)")
            fact["start"] = raw
            self._origin["start"] = "valueDateTime"
        else:
            number, unit = self._quantity(value)
            fact["number"], fact["unit"] = number, _code_json(unit)
            self._origin |= {"number": "valueQuantity.value", "unit": "valueQuantity.code"}
        return [(row.section, fact, when)]

    def _quantity(self, value: Mapping[str, Any]) -> tuple[float, Code]:
        if "valueInteger" in value:
            raw = value["valueInteger"]
            if not isinstance(raw, int) or isinstance(raw, bool):
                raise FhirError("valueInteger", "expected an integer")
            return float(raw), Code(NO_UNITS, "UCUM", "no units")
        quantity = value.get("valueQuantity")
        if not isinstance(quantity, dict):
            raise FhirError("valueQuantity", "missing (a number is expected)")
        number = quantity.get("value")
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise FhirError("valueQuantity.value", "expected a number")
        unit = quantity.get("code") or quantity.get("unit")
        if not isinstance(unit, str) or not unit:
            return float(number), Code(NO_UNITS, "UCUM", "no units")
        system = quantity.get("system")
        if system not in (None, "http://unitsofmeasure.org"):
            raise FhirError("valueQuantity.system", f"{system!r} is not UCUM")
        shown = quantity.get("unit") if isinstance(quantity.get("unit"), str) else unit
        return float(number), Code(unit, "UCUM", str(shown)[:LO_MAX] or unit)

    def _FamilyMemberHistory(
        self, value: Mapping[str, Any]
    ) -> list[tuple[Section, dict[str, Any], str]] | Skipped:
        conditions = value.get("condition")
        if not isinstance(conditions, list) or not conditions:
            return Skipped("FamilyMemberHistory without a condition")
        member = self._relationship(value.get("relationship"))
        when = self._date(value, "when", "date") or ""
        out = []
        for i, condition in enumerate(conditions):
            if not isinstance(condition, dict):
                raise FhirError(f"condition[{i}]", "expected an object")
            code = self.codes.concept(condition.get("code"), f"condition[{i}].code")
            assert code is not None
            fact: dict[str, Any] = {"code": _code_json(code)}
            if member is not None:
                fact["modifier"] = _code_json(member)
            out.append((Section.FAMILY_HISTORY, fact, when))
        return out

    def _relationship(self, value: object) -> Code | None:
        if not isinstance(value, dict):
            raise FhirError("relationship", "missing")
        for coding in value.get("coding") or ():
            if isinstance(coding, dict) and coding.get("system") == ROLE_CODE:
                found = FAMILY_MEMBERS.get(str(coding.get("code")))
                if found is not None:
                    return found
        return self.codes.concept(value, "relationship", required=False) if _sct(value) else None

    def _AllergyIntolerance(
        self, value: Mapping[str, Any]
    ) -> list[tuple[Section, dict[str, Any], str]]:
        code = self.codes.concept(value.get("code"), "code")
        assert code is not None
        kind = "Intolerance" if value.get("type") == "intolerance" else "Allergy"
        reactions = []
        for reaction in value.get("reaction") or ():
            for manifestation in (reaction or {}).get("manifestation") or ():
                found = self.codes.concept(manifestation, "reaction.manifestation", required=False)
                if found is not None:
                    reactions.append(found.meaning)
        comment = kind + (f"; reaction: {', '.join(reactions)}" if reactions else "")
        criticality = value.get("criticality")
        if isinstance(criticality, str) and criticality in ("low", "high"):
            comment += f"; criticality {criticality}"
        fact: dict[str, Any] = {"code": _code_json(code), "text": self._note(value, comment)}
        start = self._date(value, "start", "onsetDateTime", "onsetPeriod", "recordedDate")
        if start:
            fact["start"] = start
        ongoing = self._ongoing(value)
        if ongoing is not None:
            fact["ongoing"] = ongoing
        out = [(Section.PROBLEM, fact, start or "")]
        if (code.value, code.scheme) in self._risks:
            out.append((Section.RISK_FACTOR, {"code": fact["code"]}, start or ""))
        return out

    # --- Patient ----------------------------------------------------------------------

    def patient(self, value: Mapping[str, Any], full_url: str = "") -> PatientInfo:
        key = self._key("Patient", value, full_url)
        aliases = {key}
        if full_url:
            aliases.add(normalise_reference(full_url))
        patient_id, issuer, others = self._identity(value.get("identifier"))
        name = ""
        names = value.get("name")
        if isinstance(names, list) and names:
            chosen = next(
                (n for n in names if isinstance(n, dict) and n.get("use") == "official"), names[0]
            )
            name = person_name(_name_parts(chosen), "name")
        birth = value.get("birthDate")
        birth_date = ""
        if isinstance(birth, str) and len(birth) == 10:
            birth_date = birth.replace("-", "")
        elif birth is not None and not (isinstance(birth, str) and len(birth) in (4, 7)):
            raise FhirError("birthDate", f"{birth!r} is not a FHIR date")
        sex = GENDER.get(str(value.get("gender") or "unknown"))
        if sex is None:
            raise FhirError("gender", f"{value.get('gender')!r} is not a FHIR gender")
        return PatientInfo(
            key, tuple(sorted(aliases)), patient_id, issuer, name, birth_date, sex, others
        )

    def _identity(self, value: object) -> tuple[str, str, tuple[OtherPatientId, ...]]:
        """(Patient ID, issuer, other IDs): the first identifier of a mapped system, else the
        medical record number (type MR) when no ``--issuer-map`` is given."""
        if not isinstance(value, list) or not value:
            raise FhirError("identifier", "missing (a Patient needs an identifier)")
        found: list[tuple[int, str, str]] = []  # (rank, id, issuer)
        ids: list[tuple[str, str]] = []
        ranks = {system: i for i, system in enumerate(self.issuer_map)}
        for i, item in enumerate(value):
            where = f"identifier[{i}]"
            if not isinstance(item, dict) or not isinstance(item.get("value"), str):
                raise FhirError(where, "an identifier needs a value")
            system = str(item.get("system") or "")
            text = item["value"].strip()
            if not text or len(text) > LO_MAX or "\\" in text:
                raise FhirError(f"{where}.value", "not a usable DICOM ID (1-64 characters)")
            if system in self.issuer_map:
                issuer = self.issuer_map[system]
                found.append((ranks[system], text, issuer))
            else:
                issuer = system if len(system) <= LO_MAX else ""
                if not self.issuer_map and _has_type(item, "MR"):
                    found.append((0, text, issuer))
            ids.append((text, issuer))
        if not found:
            needed = "an identifier of a system given by --issuer-map"
            if not self.issuer_map:
                needed = "a medical record number (type MR), or give --issuer-map SYSTEM=ISSUER"
            raise FhirError("identifier", f"no Patient ID: needs {needed}")
        _, patient_id, issuer = min(found)
        others = tuple(
            OtherPatientId(text, iss)
            for text, iss in dict.fromkeys(ids)
            if (text, iss) != (patient_id, issuer)
        )
        return patient_id, issuer, others


def _name_parts(name: object) -> dict[str, str]:
    if not isinstance(name, dict):
        raise FhirError("name", "expected a HumanName object")
    given = [g for g in name.get("given") or () if isinstance(g, str)]
    parts = {
        "family": name.get("family") or "",
        "given": given[0] if given else "",
        "middle": " ".join(given[1:]),
        "prefix": " ".join(p for p in name.get("prefix") or () if isinstance(p, str)),
        "suffix": " ".join(s for s in name.get("suffix") or () if isinstance(s, str)),
    }
    return {k: str(v).replace("^", " ").replace("=", " ") for k, v in parts.items()}


def _has_type(identifier: Mapping[str, Any], code: str) -> bool:
    kind = identifier.get("type")
    if isinstance(kind, dict):
        return any(isinstance(x, dict) and x.get("code") == code for x in kind.get("coding") or ())
    return False


def _has_category(value: object, code: str) -> bool:
    for item in value if isinstance(value, list) else ():
        if isinstance(item, dict):
            for coding in item.get("coding") or ():
                if isinstance(coding, dict) and coding.get("code") == code:
                    return True
    return False


def _sct(value: Mapping[str, Any]) -> bool:
    return any(isinstance(x, dict) and x.get("system") == SCT for x in value.get("coding") or ())


def _dosage(value: object) -> str:
    """The first Dosage as text: its ``text``, else dose and timing."""
    if not isinstance(value, list) or not value or not isinstance(value[0], dict):
        return ""
    dosage = value[0]
    if isinstance(dosage.get("text"), str):
        return str(dosage["text"]).strip()
    parts = []
    for rate in dosage.get("doseAndRate") or ():
        quantity = (rate or {}).get("doseQuantity")
        if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | float):
            unit = quantity.get("unit") or quantity.get("code") or ""
            parts.append(f"dose {quantity['value']:g} {unit}".strip())
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    if isinstance(repeat, dict) and repeat.get("frequency") and repeat.get("period"):
        unit = repeat.get("periodUnit", "")
        parts.append(f"{repeat['frequency']} time(s) per {repeat['period']:g} {unit}")
    if dosage.get("asNeededBoolean") is True:
        parts.append("as needed")
    return ", ".join(p.strip() for p in parts)
