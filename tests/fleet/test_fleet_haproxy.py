"""Two nodes behind HAProxy (deploy/haproxy.cfg, PROXY v2, health checks on /readyz):
under steady load, one node's replica is refreshed (rename + SIGHUP) and the other is
restarted (SIGTERM, start again) without a single failed association, and both nodes'
audit records name the client's address, not the balancer's."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.conftest import JANE, UNICODE, make_db
from tests.fleet.haproxy_support import HAProxy, Load, free_port, haproxy_binary
from tests.serve_process import ServeProcess

pytestmark = [pytest.mark.network, pytest.mark.slow]

CLIENT = "127.0.0.2"  # the modality's address; HAProxy connects to the nodes from 127.0.0.1


def node_args(db: Path, port: int, metrics: int, audit: Path, key: Path) -> list[str]:
    return [
        "--db", str(db), "--port", str(port), "--engine", "native",
        "--proxy-protocol", "--metrics-port", str(metrics), "--drain-delay", "3",
        "--audit-file", str(audit), "--audit-secret-file", str(key),
    ]  # fmt: skip


def audit_peers(path: Path) -> set[str]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["peer"] for r in records if r["event"] == "query"}


def test_refresh_and_restart_lose_nothing(tmp_path: Path) -> None:
    binary = haproxy_binary()
    if binary is None:
        pytest.skip("HAProxy is not installed (scripts/test installs it when run as root)")
    key = tmp_path / "audit.key"
    ports = {name: (free_port(), free_port()) for name in ("a", "b")}
    dbs = {name: make_db(tmp_path / f"{name}.sqlite3", (JANE,)) for name in ("a", "b")}
    audits = {name: tmp_path / f"{name}.audit.jsonl" for name in ("a", "b")}
    args = {n: node_args(dbs[n], *ports[n], audits[n], key) for n in ("a", "b")}
    nodes = {n: ServeProcess(args[n]) for n in ("a", "b")}
    front = free_port()
    proxy: HAProxy | None = None
    load: Load | None = None
    try:
        for node in nodes.values():
            node.wait_listening()
        proxy = HAProxy(
            binary,
            tmp_path,
            {
                "RPI_LISTEN": f"127.0.0.1:{front}",
                "RPI_NODE_A": f"127.0.0.1:{ports['a'][0]}",
                "RPI_NODE_A_CHECK": str(ports["a"][1]),
                "RPI_NODE_B": f"127.0.0.1:{ports['b'][0]}",
                "RPI_NODE_B_CHECK": str(ports["b"][1]),
            },
        )
        proxy.wait_state("a", "UP")
        proxy.wait_state("b", "UP")
        load = Load(front, JANE.patient_id, CLIENT)
        load.start()
        load.wait_ok(20)

        # Refresh node a's replica: a new file renamed over the live one, then SIGHUP.
        os.replace(make_db(tmp_path / "a.next.sqlite3", (JANE, UNICODE)), dbs["a"])
        nodes["a"].proc.send_signal(signal.SIGHUP)
        nodes["a"].wait_for("database reopened")
        load.wait_ok(20)

        # Restart node b: SIGTERM (drains), then the same command again.
        assert nodes["b"].stop() == 0
        proxy.wait_state("b", "DOWN")
        load.wait_ok(20)  # all on node a meanwhile
        nodes["b"] = ServeProcess(args["b"])
        nodes["b"].wait_listening()
        proxy.wait_state("b", "UP")
        load.wait_ok(40)
        load.stop()
        assert load.failures == []
        assert load.ok >= 100
    finally:
        if load is not None:
            load.stop()
        if proxy is not None:
            proxy.stop()
        for node in nodes.values():
            node.stop()
    for name in ("a", "b"):
        assert audit_peers(audits[name]) == {CLIENT}, name
