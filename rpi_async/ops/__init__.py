"""Operations: what lets an operator run, watch and trust the service.

- ``shedding``: the bound on queries in flight (A700 at once beyond it);
- ``hooks``: the per-query hook the QueryService calls (shedding, latency, audit);
- ``metrics`` / ``http``: Prometheus metrics, ``/healthz`` and ``/readyz``;
- ``audit`` / ``atna`` / ``syslog``: the audit trail (JSON lines, DICOM audit messages);
- ``tls``: the server's TLS context (DICOM TLS, PS3.15 Annex B);
- ``setup``: builds the audit trail from Settings.

Who may associate, and how many at once, is the engines' (``engines.access``).
"""
