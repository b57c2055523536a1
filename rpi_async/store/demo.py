"""A deterministic synthetic patient population for demos, tests and benchmarks.

Theory of operation: one ``random.Random(seed)`` drives everything, and every vocabulary
is a tuple in a fixed order (context-group members are sorted by scheme and value), so
the same seed and count always give the same records, and ``populate`` stamps every row
with the same fixed ``updated_at``: two databases built alike have identical dumps.

Every patient has data in every section that applies to them (all fifteen for women;
all but hormones and gynecological history otherwise), with values drawn from the value
sets the SR templates use (PS3.16): CID 6080 hormones, CID 6089 substances, CID 6083
breast procedures with CID 6022 laterality, CID 6055 breast problems, CID 6081 / 6087 /
3756 risk factors with CID 7451 family members, TID 9001 gynecological attributes,
TID 3802 concerns with their therapy context groups, social history (CID 3724),
cholesterol values, family history and devices. Patient IDs are ``DEMO000001``... in
the ``DEMO`` issuer's domain; ``DEMO-DUP`` exists twice, as two different people under
``ISSUER_A`` and ``ISSUER_B``, so that a lookup without an issuer finds two matches.
"""

from __future__ import annotations

import bisect
import functools
import random
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from itertools import accumulate
from pathlib import Path
from typing import TypeVar, cast

from pydicom.sr._cid_dict import cid_concepts
from pydicom.sr._concepts_dict import concepts

from rpi_async.dicom.codes import Code
from rpi_async.store import bulk, schema, writer
from rpi_async.store import demo_data as d
from rpi_async.store.model import Fact, OtherPatientId, PatientRecord, Section

T = TypeVar("T")

FEMALE_SECTIONS = frozenset(Section)
OTHER_SECTIONS = frozenset(Section) - {Section.HORMONE, Section.GYNECOLOGICAL}


def applicable_sections(sex: str) -> frozenset[Section]:
    """The sections every demo patient of this sex has data in."""
    return FEMALE_SECTIONS if sex == "F" else OTHER_SECTIONS


def demo_patient_id(n: int) -> str:
    """``DEMO000001`` for n = 1."""
    return f"{d.DEMO_ID_PREFIX}{n:0{d.DEMO_ID_DIGITS}d}"


@functools.cache
def context_group(cid: int) -> tuple[Code, ...]:
    """Members of a DICOM context group from pydicom's tables, sorted by scheme and value."""
    members: dict[tuple[str, str], Code] = {}
    for scheme, keywords in cid_concepts[cid].items():
        for keyword in keywords:
            entries = cast(dict[str, tuple[str, list[int]]], concepts[scheme][keyword])
            for value, (meaning, cids) in entries.items():
                if cid in cids:
                    members.setdefault((scheme, value), Code(value, scheme, meaning))
    return tuple(members[k] for k in sorted(members))


def _code(triple: tuple[str, str, str]) -> Code:
    return Code(*triple)


def _cid(cid: int, excluded: frozenset[str] = frozenset()) -> tuple[Code, ...]:
    return tuple(c for c in context_group(cid) if c.value not in excluded)


class Vocabulary:
    """Every coded value the generator draws from, built once."""

    def __init__(self) -> None:
        self.medications = tuple((_code(m[:3]), m[3]) for m in d.MEDICATIONS)
        self.active, self.inactive = _code(d.MEDICATION_ACTIVE), _code(d.MEDICATION_INACTIVE)
        self.hormones = _cid(d.CID_GYNECOLOGICAL_HORMONE, d.HORMONE_EXCLUDED)
        substances = context_group(d.CID_SUBSTANCE)
        self.substances = substances
        self.substance_cum = tuple(
            accumulate(d.SUBSTANCE_WEIGHTS.get(c.value, 1) for c in substances)
        )
        self.environment = tuple(_code(t) for t in d.ENVIRONMENTAL_FACTORS)
        breast_procedures = _cid(d.CID_BREAST_PROCEDURE, d.BREAST_PROCEDURE_EXCLUDED)
        self.breast_procedures = {
            "F": breast_procedures,
            "M": tuple(
                c for c in breast_procedures if c.value not in d.BREAST_PROCEDURE_FEMALE_ONLY
            ),
        }
        self.sides = context_group(d.CID_SIDE)
        by_value = {c.value: c for c in self.sides}
        self.named_sides = tuple((word, by_value[value]) for word, value in d.SIDE_WORDS)
        self.lateralities = context_group(d.CID_LATERALITY)
        self.procedure_results = context_group(d.CID_INTERVENTIONAL_RESULT)
        self.general_procedures = tuple(_code(t) for t in d.GENERAL_PROCEDURES)
        self.gyn_procedures = context_group(d.CID_GYNECOLOGICAL_PROCEDURE)
        findings = _cid(d.CID_BREAST_FINDING, d.BREAST_FINDING_EXCLUDED)
        self.breast_findings = {
            "F": findings,
            "M": tuple(c for c in findings if c.value not in d.BREAST_FINDING_FEMALE_ONLY),
        }
        self.breast_site = _code(d.BREAST_SITE)
        self.general_problems = tuple(_code(t) for t in d.GENERAL_PROBLEMS)
        self.family_breast_risks = tuple(
            c
            for c in context_group(d.CID_BREAST_RISK_FACTOR)
            if c.value in d.BREAST_FAMILY_RISK_FACTORS
        )
        general_risks = context_group(d.CID_GENERAL_RISK_FACTOR)
        self.general_risks = {
            "F": general_risks,
            "M": tuple(c for c in general_risks if c.value not in d.FEMALE_ONLY_RISK_FACTORS),
        }
        self.cardiac_risks = _cid(d.CID_CARDIAC_RISK_FACTOR, d.CARDIAC_RISK_EXCLUDED)
        members = context_group(d.CID_FAMILY_MEMBER)
        self.female_relatives = tuple(c for c in members if c.value in d.FEMALE_RELATIVES)
        self.male_relatives = tuple(c for c in members if c.value in d.MALE_RELATIVES)
        self.relatives = members
        self.cardiac_concerns = tuple(
            (_code(concern), () if cid is None else context_group(cid))
            for concern, cid in d.CARDIAC_CONCERNS
        )
        self.kidney_disease = _code(d.KIDNEY_DISEASE)
        self.stages = context_group(d.CID_STAGE)
        self.tobacco = _code(d.TOBACCO_SMOKING_BEHAVIOR)
        self.smoking = context_group(d.CID_SMOKING_HISTORY)
        self.drug_misuse = _code(d.DRUG_MISUSE_BEHAVIOR)
        self.drug_misuse_values = tuple(_code(t) for t, _ in d.DRUG_MISUSE_VALUES)
        self.drug_misuse_cum = tuple(accumulate(w for _, w in d.DRUG_MISUSE_VALUES))
        self.surgery = context_group(d.CID_CARDIOVASCULAR_SURGERY) + tuple(
            _code(t) for t in d.GENERAL_SURGERY
        )
        self.diagnostic_tests = context_group(d.CID_CARDIAC_DIAGNOSTIC_PROCEDURE)
        self.hdl, self.ldl = _code(d.HDL_CHOLESTEROL), _code(d.LDL_CHOLESTEROL)
        self.mg_per_dl = _code(d.MG_PER_DL)
        self.family_diseases = tuple(_code(t) for t in d.FAMILY_DISEASES)
        self.devices = context_group(d.CID_IMPLANTED_DEVICE)
        self.years, self.no_units = _code(d.YEARS), _code(d.NO_UNITS)
        self.menarche = _code(d.AGE_AT_MENARCHE)
        self.first_pregnancy = _code(d.AGE_AT_FIRST_FULL_TERM_PREGNANCY)
        self.menopause = _code(d.AGE_AT_MENOPAUSE)
        self.gravida, self.para, self.aborta = (
            _code(d.GRAVIDA),
            _code(d.PARA),
            _code(d.ABORTA),
        )
        self.last_period = _code(d.LAST_MENSTRUAL_PERIOD)

    def sex_key(self, sex: str) -> str:
        return "F" if sex == "F" else "M"


@functools.cache
def vocabulary() -> Vocabulary:
    return Vocabulary()


_REF = d.REFERENCE_DATE.toordinal()
_DAY_STRINGS: dict[int, str] = {}


def _da(ordinal: int) -> str:
    text = _DAY_STRINGS.get(ordinal)
    if text is None:
        day = date.fromordinal(ordinal)
        text = _DAY_STRINGS[ordinal] = f"{day.year:04d}{day.month:02d}{day.day:02d}"
    return text


class _Draw:
    """Draws from one ``random.Random`` stream using only ``random()``.

    ``Random.randint`` and ``sample`` cost several Python calls each; a population of a
    million patients makes tens of millions of draws, so these cheaper equivalents keep
    generation fast. Same seed, same sequence of draws, same population.
    """

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed).random

    def randint(self, lo: int, hi: int) -> int:
        return lo + int(self.random() * (hi - lo + 1))

    def pick(self, items: Sequence[T]) -> T:
        return items[int(self.random() * len(items))]

    def sample(self, items: Sequence[T], k: int) -> list[T]:
        chosen: list[int] = []
        while len(chosen) < k:
            i = int(self.random() * len(items))
            if i not in chosen:
                chosen.append(i)
        return [items[i] for i in chosen]

    def weighted(self, items: Sequence[T], cum: Sequence[int]) -> T:
        return items[bisect.bisect_right(cum, self.random() * cum[-1])]


_GRAVIDA = (0, 1, 2, 3, 4, 5)
_GRAVIDA_CUM = tuple(accumulate((20, 20, 30, 18, 8, 4)))


class _Maker:
    """Draws one patient at a time from a shared random stream."""

    def __init__(self, rng: _Draw, vocab: Vocabulary) -> None:
        self.rng = rng
        self.v = vocab
        self.sexes = tuple(s for s, _ in d.SEX_WEIGHTS)
        self.sex_cum = tuple(accumulate(w for _, w in d.SEX_WEIGHTS))
        self.pick = rng.pick
        self.weighted = rng.weighted

    def patient(self, patient_id: str, issuer: str, sex: str | None = None) -> PatientRecord:
        rng = self.rng
        sex = sex or self.weighted(self.sexes, self.sex_cum)
        if sex == "F":
            given = self.pick(d.FEMALE_GIVEN_NAMES)
        elif sex == "M":
            given = self.pick(d.MALE_GIVEN_NAMES)
        else:
            given = self.pick(d.FEMALE_GIVEN_NAMES + d.MALE_GIVEN_NAMES)
        name = f"{self.pick(d.FAMILY_NAMES)}^{given}"
        if rng.random() < 0.15:
            name += f"^{self.pick(d.MALE_GIVEN_NAMES if sex == 'M' else d.FEMALE_GIVEN_NAMES)}"
        birth = rng.randint(_REF - int((d.MAX_AGE + 0.99) * 365.25), _REF - d.MIN_AGE * 366)
        others: tuple[OtherPatientId, ...] = ()
        if rng.random() < 0.25:
            others = (OtherPatientId(f"MRN{rng.randint(0, 10**7 - 1):07d}", d.OTHER_ID_ISSUER),)
        facts: list[Fact] = []
        history = _History(self, sex, birth, facts)
        history.build()
        return PatientRecord(
            patient_id=patient_id,
            issuer=issuer,
            name=name,
            birth_date=_da(birth),
            sex=sex,
            other_ids=others,
            facts=tuple(facts),
        )


class _History:
    """The clinical facts of one patient, section by section in Section order."""

    def __init__(self, maker: _Maker, sex: str, birth: int, facts: list[Fact]) -> None:
        self.m = maker
        self.rng = maker.rng
        self.v = maker.v
        self.sex = sex
        self.key = maker.v.sex_key(sex)
        self.birth = birth
        # Histories reach back at most HISTORY_YEARS, and never before the age of 18.
        self.adult = max(birth + 18 * 365, _REF - d.HISTORY_YEARS * 365)
        self.age = (_REF - birth) // 365
        self.facts = facts

    def one_or_two(self) -> int:
        return 2 if self.rng.random() < 0.25 else 1

    def day(self, earliest: int | None = None) -> int:
        lo = max(earliest or self.adult, self.adult)
        return self.rng.randint(lo, _REF - 1)

    def side_of(self, procedure: Code) -> Code:
        """The laterality a procedure's name implies ("breast - left mr"), else any side."""
        words = procedure.meaning.lower()
        for word, side in self.v.named_sides:
            if word in words:
                return side
        return self.m.pick(self.v.sides)

    def date_time(self, ordinal: int) -> str:
        return f"{_da(ordinal)}{self.rng.randint(8, 17):02d}{5 * self.rng.randint(0, 11):02d}00"

    def relative(self, risk: Code) -> Code:
        if risk.value in d.MALE_RELATIVE_RISK_FACTORS:
            return self.m.pick(self.v.male_relatives)
        if risk.value in d.BREAST_FAMILY_RISK_FACTORS:
            return self.m.pick(self.v.female_relatives)
        return self.m.pick(self.v.relatives)

    def build(self) -> None:
        self.medication()
        if self.sex == "F":
            self.hormone()
        self.substance()
        self.environment()
        self.procedure()
        self.problem()
        self.risk_factor()
        if self.sex == "F":
            self.gynecological()
        self.cardiac_concern()
        self.social()
        self.simple(Section.SURGICAL, self.v.surgery + self.gyn(), with_time=True)
        self.simple(Section.DIAGNOSTIC_TEST, self.v.diagnostic_tests, with_time=True)
        self.lab()
        self.family_history()
        self.simple(Section.DEVICE, self.v.devices)

    def gyn(self) -> tuple[Code, ...]:
        return self.v.gyn_procedures if self.sex == "F" else ()

    def add(self, section: Section, **kw: object) -> None:
        self.facts.append(Fact(section, **kw))  # type: ignore[arg-type]

    def medication(self) -> None:
        rng = self.rng
        for med, brand in rng.sample(self.v.medications, rng.randint(1, 3)):
            start = self.day()
            if rng.random() < 0.75:
                self.add(Section.MEDICATION, code=med, start=_da(start), ongoing=True,
                         text=brand, modifier=self.v.active)  # fmt: skip
            else:
                end = _da(self.day(start))
                self.add(Section.MEDICATION, code=med, start=_da(start), end=end,
                         ongoing=False, text=brand, modifier=self.v.inactive)  # fmt: skip

    def hormone(self) -> None:
        rng = self.rng
        for hormone in rng.sample(self.v.hormones, self.one_or_two()):
            ongoing = rng.random() < 0.5
            start = self.day()
            end = None if ongoing else _da(self.day(start))
            self.add(Section.HORMONE, code=hormone, start=_da(start), end=end, ongoing=ongoing)

    def substance(self) -> None:
        v, seen = self.v, set()
        for _ in range(self.one_or_two()):
            item = self.m.weighted(v.substances, v.substance_cum)
            if item.value not in seen:
                seen.add(item.value)
                ongoing = self.rng.random() < 0.6
                self.add(Section.SUBSTANCE, code=item, start=_da(self.day()), ongoing=ongoing)

    def environment(self) -> None:
        self.add(Section.ENVIRONMENT, code=self.m.pick(self.v.environment), start=_da(self.day()))

    def procedure(self) -> None:
        v, m = self.v, self.m
        breast = m.pick(v.breast_procedures[self.key])
        result = (
            m.pick(v.procedure_results) if breast.value in d.BREAST_PROCEDURE_WITH_RESULT else None
        )
        self.add(Section.PROCEDURE, code=breast, laterality=self.side_of(breast),
                 start=self.date_time(self.day()), result=result)  # fmt: skip
        general = m.pick(v.general_procedures + self.gyn())
        self.add(Section.PROCEDURE, code=general, start=self.date_time(self.day()))

    def problem(self) -> None:
        v, m, rng = self.v, self.m, self.rng
        self.add(Section.PROBLEM, code=m.pick(v.breast_findings[self.key]),
                 laterality=m.pick(v.sides), site=v.breast_site, start=_da(self.day()))  # fmt: skip
        for problem in rng.sample(v.general_problems, self.one_or_two()):
            onset = self.day()
            end = _da(self.day(onset)) if rng.random() < 0.2 else None
            self.add(Section.PROBLEM, code=problem, start=_da(onset), end=end)

    def risk_factor(self) -> None:
        v, m = self.v, self.m
        breast = m.pick(v.family_breast_risks)
        self.add(Section.RISK_FACTOR, code=breast, modifier=self.relative(breast))
        general = m.pick(v.general_risks[self.key])
        family = general.value in d.FAMILY_RISK_FACTORS
        self.add(Section.RISK_FACTOR, code=general,
                 modifier=self.relative(general) if family else None)  # fmt: skip
        self.add(Section.RISK_FACTOR, code=m.pick(v.cardiac_risks), start=_da(self.day()))

    def gynecological(self) -> None:
        v, rng = self.v, self.rng
        sec = Section.GYNECOLOGICAL
        self.add(sec, concept=v.menarche, number=float(rng.randint(10, 16)), unit=v.years)
        gravida = rng.weighted(_GRAVIDA, _GRAVIDA_CUM)
        para = rng.randint(max(0, gravida - 2), gravida)
        self.add(sec, concept=v.gravida, number=float(gravida), unit=v.no_units)
        self.add(sec, concept=v.para, number=float(para), unit=v.no_units)
        self.add(sec, concept=v.aborta, number=float(gravida - para), unit=v.no_units)
        if para:
            first = rng.randint(17, min(42, self.age))
            self.add(sec, concept=v.first_pregnancy, number=float(first), unit=v.years)
        menopause = rng.randint(45, 56)
        if self.age > menopause:
            self.add(sec, concept=v.menopause, number=float(menopause), unit=v.years)
        else:
            self.add(sec, concept=v.last_period, start=_da(_REF - rng.randint(1, 40)))

    def cardiac_concern(self) -> None:
        v, m, rng = self.v, self.m, self.rng
        for concern, therapies in rng.sample(v.cardiac_concerns, self.one_or_two()):
            onset = _da(self.day())
            if concern == v.kidney_disease:
                self.add(Section.CARDIAC_CONCERN, code=concern, start=onset,
                         result=m.pick(v.stages))  # fmt: skip
            else:
                self.add(Section.CARDIAC_CONCERN, code=concern, start=onset,
                         modifier=m.pick(therapies))  # fmt: skip

    def social(self) -> None:
        v, m = self.v, self.m
        self.add(Section.SOCIAL, concept=v.tobacco, code=m.pick(v.smoking))
        misuse = m.weighted(v.drug_misuse_values, v.drug_misuse_cum)
        self.add(Section.SOCIAL, concept=v.drug_misuse, code=misuse)

    def simple(self, section: Section, items: Sequence[Code], *, with_time: bool = False) -> None:
        day = self.day()
        start = self.date_time(day) if with_time else _da(day)
        self.add(section, code=self.m.pick(items), start=start)

    def lab(self) -> None:
        v, rng = self.v, self.rng
        day = _da(self.day(_REF - 3 * 365))
        hdl, ldl = float(rng.randint(28, 95)), float(rng.randint(55, 200))
        self.add(Section.LAB, concept=v.hdl, number=hdl, unit=v.mg_per_dl, start=day)
        self.add(Section.LAB, concept=v.ldl, number=ldl, unit=v.mg_per_dl, start=day)

    def family_history(self) -> None:
        v, m, rng = self.v, self.m, self.rng
        for disease in rng.sample(v.family_diseases, self.one_or_two()):
            if "breast" in disease.meaning:
                relative = m.pick(v.female_relatives)
            else:
                relative = m.pick(v.relatives)
            self.add(Section.FAMILY_HISTORY, code=disease, modifier=relative)


def generate(count: int, seed: int = 0) -> Iterator[PatientRecord]:
    """``DEMO000001`` ... in the DEMO domain, then the two ``DEMO-DUP`` patients."""
    rng = _Draw(seed)
    maker = _Maker(rng, vocabulary())
    for n in range(1, count + 1):
        yield maker.patient(demo_patient_id(n), d.DEMO_ISSUER)
    dup = _Maker(_Draw(seed * 7919 + 1), vocabulary())
    for issuer, sex in zip(d.DUPLICATE_ISSUERS, ("F", "M"), strict=True):
        yield dup.patient(d.DUPLICATE_ID, issuer, sex)


def populate(
    conn: sqlite3.Connection,
    count: int,
    seed: int = 0,
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write ``count`` demo patients plus the DEMO-DUP pair in one transaction."""
    return writer.write_patients(
        conn, generate(count, seed), progress=progress, timestamp=d.TIMESTAMP
    )


def create_demo_database(
    path: Path,
    *,
    patients: int,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Create the database at ``path`` if needed and write the demo population into it."""
    new_database = not path.exists()
    conn = schema.connect_writer(path, create=True)
    try:
        with bulk.first_load(conn, new_database=new_database):
            return populate(conn, patients, seed, progress=progress)
    finally:
        conn.close()
