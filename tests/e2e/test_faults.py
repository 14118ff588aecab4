"""Proof under faults (short versions; bench/ has the longer runs).

- a gateway failing ~30% of calls (429 + Retry-After, 5xx, read timeouts, accepted-but-lost
  responses) -> every valid number gets exactly one SMS; charges = accepted;
- the flow process SIGKILLed at random points, then re-run, repeatedly -> zero duplicates,
  zero lost outcomes, charges equal the gateway's own record.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from prefect.settings import PREFECT_API_URL

from flows.nightly import nightly_send

REPO = Path(__file__).resolve().parents[2]


def rows(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def assert_ledger_equals_gateway(stack) -> None:
    """Each textable invoice texted exactly once; the ledger's charges are the gateway's."""
    accepted = stack.accepted_messages()
    per_body = Counter(m["body"] for m in accepted)
    assert max(per_body.values()) == 1, "a buyer was texted twice"
    charges = rows(stack.ledger_path, "SELECT provider_sid, invoice_number FROM charges")
    assert sorted(c[0] for c in charges) == sorted(m["sid"] for m in accepted)
    assert len({c[1] for c in charges}) == len(charges)  # one charge per invoice
    ok = rows(stack.ledger_path, "SELECT count(*) FROM invoice_status WHERE phone_status = 'ok'")
    assert len(accepted) == ok[0][0]
    left = rows(
        stack.ledger_path,
        "SELECT status, count(*) FROM messages WHERE status <> 'accepted' GROUP BY 1",
    )
    assert left == []


@pytest.mark.timeout(900)
def test_thirty_percent_gateway_faults_still_send_each_sms_exactly_once(stack, monkeypatch):
    stack.sms.configure(
        seed=11,
        fail_rate=0.10,  # 500/503, not accepted
        lost_response_rate=0.10,  # accepted, answered 504
        lost_response_delay_ms=1500,  # ... after our read timeout: a real read timeout
        rate_limit_per_s=15,  # bursts above this get 429 + Retry-After
    )
    monkeypatch.setenv("COURIER_HTTP_TIMEOUT_S", "1")
    monkeypatch.setenv("COURIER_SMS_CONCURRENCY", "12")
    summaries = [nightly_send()]
    # Transient errors that outlast one run's retries are sent by the next run, never twice.
    while rows(stack.ledger_path, "SELECT count(*) FROM messages WHERE status = 'retry'")[0][0]:
        assert len(summaries) < 4, summaries[-1]
        summaries.append(nightly_send())
    stats = stack.sms.client.get("/_sandbox/stats").json()
    assert_ledger_equals_gateway(stack)
    assert sum(s["run_charges"] for s in summaries) == sum(
        (c[0] for c in rows(stack.ledger_path, "SELECT amount FROM charges")), Decimal(0)
    )
    assert stats, "the sandbox reports what it injected"


def wait_for_sends(stack, process, at_least: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        if len(stack.accepted_messages()) >= at_least:
            return
        time.sleep(0.05)


@pytest.mark.timeout(900)
def test_sigkill_at_random_points_then_rerun_never_duplicates(stack, tmp_path):
    stack.sms.configure(seed=5, latency_ms=150)  # widen the sending phase
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "COURIER_SMS_CONCURRENCY": "2",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    rng = random.Random(20261121)
    killed_mid_send = 0

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "courier", "run"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    # Once early (pulling or rendering), then three times in the middle of sending.
    process = start()
    time.sleep(rng.uniform(3.0, 6.0))
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    for _ in range(3):
        before = len(stack.accepted_messages())
        process = start()
        wait_for_sends(stack, process, before + rng.randint(1, 6))
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            killed_mid_send += 1
        process.wait(timeout=60)
    assert killed_mid_send >= 2, "the kills did not land while sending"
    final = subprocess.run(
        [sys.executable, "-m", "courier", "run", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert '"sends_unknown": 0' in final.stdout
    assert_ledger_equals_gateway(stack)


@pytest.mark.timeout(600)
def test_two_runs_sending_at_once_text_each_buyer_once(stack):
    from concurrent.futures import ThreadPoolExecutor

    from courier import jobs
    from courier.settings import load_settings
    from courier.wiring import build_services

    stack.sms.configure(latency_ms=100)  # keep both senders busy at the same time
    services = build_services(load_settings())
    jobs.pull(services)
    jobs.publish(services, jobs.documents_due(services))
    numbers = jobs.plan_sends(services).numbers
    assert numbers

    def one_run(run_id: str) -> dict:
        own = build_services(load_settings())  # as a second process would
        try:
            return jobs.send_on_issue(own, numbers, run_id)
        finally:
            own.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(one_run, ["run-a", "run-b"])
    services.close()
    assert first.get("accepted", 0) + second.get("accepted", 0) == len(numbers)
    assert_ledger_equals_gateway(stack)
