"""Which patients the generator asks for, in what proportions, pre-encoded before the run.

A query is a hit (a patient that exists: the demo population ``DEMO000001``... or IDs read
from a file), a miss (an ID that exists nowhere) or the duplicate ``DEMO-DUP``, which the
demo population holds under two issuers so that a query without issuer must be answered
C100 (more than one match). The plan samples a bounded pool of distinct IDs, encodes each
one once per transfer syntax as a complete P-DATA-TF, and fixes a cyclic schedule of pool
indices with a seeded generator, so two runs with the same seed send the same sequence.
"""

from __future__ import annotations

import enum
import random
from array import array
from dataclasses import dataclass
from pathlib import Path

from rpi_async.bench import pdu
from rpi_async.bench.identifier import IdentifierTemplate, QueryModel
from rpi_async.errors import ConfigError

DEMO_ID_FORMAT = "DEMO{:06d}"
DUP_ID = "DEMO-DUP"
MISS_ID_FORMAT = "NOSUCH{:06d}"
MISS_POOL = 1000
SCHEDULE_LENGTH = 1 << 16


class QueryKind(enum.StrEnum):
    HIT = "hit"
    MISS = "miss"
    DUP = "dup"


@dataclass(frozen=True, slots=True)
class Mix:
    """Proportions of hits, misses and duplicates; they need not add up to one."""

    hit: float = 0.9
    miss: float = 0.05
    dup: float = 0.05

    @classmethod
    def parse(cls, text: str) -> Mix:
        """``hit=0.9,miss=0.05,dup=0.05``; kinds left out are 0."""
        values = {k.value: 0.0 for k in QueryKind}
        for part in text.split(","):
            name, sep, number = part.partition("=")
            name = name.strip()
            if not sep or name not in values:
                raise ConfigError(
                    f"--mix: expected kind=weight with kinds hit, miss, dup: {part!r}"
                )
            try:
                weight = float(number)
            except ValueError:
                raise ConfigError(f"--mix: {number.strip()!r} is not a number") from None
            if not weight >= 0.0 or weight == float("inf"):
                raise ConfigError(f"--mix: weight of {name} must be finite and >= 0")
            values[name] = weight
        mix = cls(**values)
        if mix.total <= 0:
            raise ConfigError("--mix: at least one weight must be positive")
        return mix

    @property
    def total(self) -> float:
        return self.hit + self.miss + self.dup

    def weight(self, kind: QueryKind) -> float:
        return float(getattr(self, kind.value))


@dataclass(frozen=True, slots=True)
class QueryKey:
    patient_id: str
    issuer: str | None
    kind: QueryKind


def demo_hits(count: int) -> list[QueryKey]:
    """``DEMO000001`` ... the demo population's IDs."""
    if count < 1:
        raise ConfigError("--demo-ids must be at least 1")
    return [QueryKey(DEMO_ID_FORMAT.format(i), None, QueryKind.HIT) for i in range(1, count + 1)]


def read_patients_file(path: Path) -> list[QueryKey]:
    """One Patient ID per line, optionally followed by a TAB and the Issuer of Patient ID."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"patients file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"patients file {path} cannot be read: {exc}") from None
    keys: list[QueryKey] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        patient_id, _, issuer = line.partition("\t")
        patient_id, issuer = patient_id.strip(), issuer.strip()
        if not patient_id or len(patient_id) > 64 or len(issuer) > 64 or not _ascii(line):
            raise ConfigError(f"patients file {path} line {number}: not an ASCII ID of 1-64 chars")
        keys.append(QueryKey(patient_id, issuer or None, QueryKind.HIT))
    if not keys:
        raise ConfigError(f"patients file {path} holds no patient ID")
    return keys


def _ascii(text: str) -> bool:
    return text.isascii() and "\\" not in text


class QueryPlan:
    """The pool of pre-encoded C-FIND P-DATA-TF PDUs and the order they are sent in."""

    def __init__(
        self,
        hits: list[QueryKey],
        mix: Mix,
        *,
        sop_class: str,
        model: QueryModel,
        template_id: str,
        seed: int = 1,
        pool_size: int = 1_000_000,
    ) -> None:
        rng = random.Random(seed)
        self.sop_class = sop_class
        self.model = model
        self.template_id = template_id
        self.seed = seed
        pools: dict[QueryKind, list[QueryKey]] = {
            QueryKind.HIT: rng.sample(hits, min(pool_size, len(hits))) if mix.hit else [],
            QueryKind.MISS: [
                QueryKey(MISS_ID_FORMAT.format(i), None, QueryKind.MISS) for i in range(MISS_POOL)
            ]
            if mix.miss
            else [],
            QueryKind.DUP: [QueryKey(DUP_ID, None, QueryKind.DUP)] if mix.dup else [],
        }
        self.pool_sizes = {kind.value: len(pools[kind]) for kind in QueryKind}
        self.mix = mix
        self.keys: list[QueryKey] = [key for kind in QueryKind for key in pools[kind]]
        command = pdu.encode_find_command(sop_class)
        implicit = IdentifierTemplate(model, template_id, explicit=False)
        explicit = IdentifierTemplate(model, template_id, explicit=True)
        self.implicit_pdus: list[bytes] = [
            pdu.encode_find_pdata(command, implicit.encode(k.patient_id, k.issuer))
            for k in self.keys
        ]
        self.explicit_pdus: list[bytes] = [
            pdu.encode_find_pdata(command, explicit.encode(k.patient_id, k.issuer))
            for k in self.keys
        ]
        offsets: dict[QueryKind, int] = {}
        position = 0
        for kind in QueryKind:
            offsets[kind] = position
            position += len(pools[kind])
        kinds = [k for k in QueryKind if pools[k] and mix.weight(k) > 0]
        weights = [mix.weight(k) for k in kinds]
        self.schedule = array("I")
        for kind in rng.choices(kinds, weights, k=SCHEDULE_LENGTH):
            self.schedule.append(offsets[kind] + rng.randrange(len(pools[kind])))
        self._cursor = 0

    def next_index(self) -> int:
        """The pool index of the next query (the schedule repeats)."""
        index = self.schedule[self._cursor]
        self._cursor = (self._cursor + 1) % SCHEDULE_LENGTH
        return index

    def pdus(self, explicit: bool) -> list[bytes]:
        return self.explicit_pdus if explicit else self.implicit_pdus

    def describe(self) -> dict[str, object]:
        return {
            "model": self.model.value,
            "sop_class": self.sop_class,
            "template": self.template_id,
            "seed": self.seed,
            "mix": {k.value: self.mix.weight(k) for k in QueryKind},
            "pool": self.pool_sizes,
        }
