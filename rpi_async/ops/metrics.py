"""Prometheus metrics: counters read from ServerStats at scrape time, latency histograms.

Theory of operation. The engines and the QueryService already count associations and
queries in ``ServerStats``; ``StatsCollector`` turns those counters into metric
families only when Prometheus scrapes, so counting costs nothing extra per event.
Latency needs a histogram per observation; ``Timings`` holds the two histograms the
QueryService feeds through its hook (``ops.hooks``). Each Server has its own
``CollectorRegistry`` (never the process-global one), so several servers in one
process (the tests) do not mix their numbers. Every name starts with ``rpi_``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rpi_async import __version__
from rpi_async.ops.audit import AuditTrail
from rpi_async.ops.shedding import InFlightLimiter
from rpi_async.ops.store_info import StoreIdentity
from rpi_async.service.stats import ServerStats

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Timings:
    """Query and store latency histograms."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._query = Histogram(
            "rpi_query_duration_seconds",
            "Time to answer one C-FIND in the query service, by SOP class",
            ["sop"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._store = Histogram(
            "rpi_store_lookup_duration_seconds",
            "Time of one patient lookup in the database",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._by_sop: dict[str, Histogram] = {}

    def query(self, sop: str, seconds: float) -> None:
        child = self._by_sop.get(sop)
        if child is None:
            child = self._by_sop[sop] = self._query.labels(sop)
        child.observe(seconds)

    def store(self, seconds: float) -> None:
        self._store.observe(seconds)


class StatsCollector(Collector):
    """ServerStats, the in-flight limiter and the audit trail, read at scrape time."""

    def __init__(
        self,
        stats: ServerStats,
        limiter: InFlightLimiter,
        *,
        engine: str,
        audit: AuditTrail | None = None,
        store: Callable[[], StoreIdentity | None] = lambda: None,
    ) -> None:
        self.stats = stats
        self.limiter = limiter
        self.engine = engine
        self.audit = audit
        self.store = store

    def collect(self) -> Iterator[Metric]:
        snap = self.stats.snapshot()
        accepted, active, aborted = (
            snap.associations_accepted,
            snap.associations_active,
            snap.associations_aborted,
        )
        rejected, queries, echoes = snap.associations_rejected, snap.queries, snap.echoes
        info = GaugeMetricFamily(
            "rpi_info", "rpi-async build and engine", labels=["version", "engine"]
        )
        info.add_metric([__version__, self.engine], 1)
        yield info
        yield GaugeMetricFamily("rpi_associations_active", "Associations open now", value=active)
        yield CounterMetricFamily(
            "rpi_associations", "Associations accepted since start", value=accepted
        )
        rej = CounterMetricFamily(
            "rpi_associations_rejected", "Associations rejected, by reason", labels=["reason"]
        )
        for reason, count in sorted(rejected.items()):
            rej.add_metric([reason], count)
        yield rej
        yield CounterMetricFamily(
            "rpi_associations_aborted", "Associations that ended without a release", value=aborted
        )
        q = CounterMetricFamily(
            "rpi_queries",
            "C-FIND queries answered, by SOP class and status",
            labels=["sop", "status"],
        )
        for (sop, status), count in sorted(queries.items()):
            q.add_metric([sop, f"{status:04X}"], count)
        yield q
        yield CounterMetricFamily("rpi_echoes", "C-ECHO requests answered", value=echoes)
        yield GaugeMetricFamily(
            "rpi_queries_in_flight", "Queries being served now", value=self.limiter.in_flight
        )
        yield CounterMetricFamily(
            "rpi_queries_shed",
            "Queries answered A700 at once because max_in_flight were in flight",
            value=self.limiter.shed,
        )
        yield from self._store_families()
        if self.audit is not None:
            yield CounterMetricFamily(
                "rpi_audit_records",
                "Audit records delivered by every sink",
                value=self.audit.written,
            )
            yield CounterMetricFamily(
                "rpi_audit_records_dropped",
                "Audit records dropped: the audit queue or the spool was full",
                value=self.audit.dropped_total,
            )
            yield GaugeMetricFamily(
                "rpi_audit_records_spooled",
                "Audit records waiting in the spool for the syslog repository",
                value=self.audit.spooled,
            )
            yield CounterMetricFamily(
                "rpi_audit_records_failed",
                "Audit records a sink failed to write",
                value=self.audit.failed,
            )

    def _store_families(self) -> Iterator[Metric]:
        identity = self.store()
        if identity is None:
            return
        info = GaugeMetricFamily(
            "rpi_store_info",
            "The database served: content digest, generation, schema version",
            labels=["content", "generation", "schema"],
        )
        info.add_metric([identity.content, str(identity.generation), str(identity.schema)], 1)
        yield info
        yield GaugeMetricFamily(
            "rpi_store_patients", "Patients in the database served", value=identity.patients
        )
        yield GaugeMetricFamily(
            "rpi_store_loaded_timestamp_seconds",
            "When the database served was opened (Unix time)",
            value=identity.loaded,
        )


class Metrics:
    """One server's registry: its counters, its histograms, and the exposition text."""

    def __init__(
        self,
        stats: ServerStats,
        limiter: InFlightLimiter,
        *,
        engine: str,
        audit: AuditTrail | None = None,
        store: Callable[[], StoreIdentity | None] = lambda: None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(
            StatsCollector(stats, limiter, engine=engine, audit=audit, store=store)
        )
        self.timings = Timings(self.registry)

    def render(self) -> bytes:
        """The Prometheus text exposition format (version 0.0.4)."""
        return generate_latest(self.registry)
