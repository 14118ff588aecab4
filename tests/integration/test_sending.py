"""The outbox protocol against the sandbox gateway over loopback: never twice, always charged."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from courier.adapters.sms import TwilioSmsGateway
from courier.ledger import Ledger
from courier.planning import Intent
from courier.retry import RetryPolicy
from courier.sending import Sender
from tests.support.factories import on_issue_intents
from tests.support.sandbox_fixtures import ACCOUNT_SID, AUTH_TOKEN, SmsSandbox

FAST = RetryPolicy(attempts=6, total_timeout_s=20, wait_initial_s=0.01, wait_max_s=0.05)


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(tmp_path / "ledger.duckdb")
    ledger.migrate()
    return ledger


def send(
    sms: SmsSandbox,
    ledger: Ledger,
    batch: list[Intent],
    reconcile: bool = False,
    read_timeout_s: float = 5.0,
):
    async def go():
        async with httpx.AsyncClient() as client:
            gateway = TwilioSmsGateway(
                client, sms.url, ACCOUNT_SID, AUTH_TOKEN, "Courier", timeout_s=read_timeout_s
            )
            sender = Sender(gateway, ledger, FAST, concurrency=4, settle_s=0.01)
            if reconcile:
                return await sender.reconcile_pending("r2")
            return await sender.send_all(batch)

    return asyncio.run(go())


def charged_sids(ledger: Ledger) -> list[str]:
    with ledger.connect() as con:
        return sorted(r[0] for r in con.execute("SELECT provider_sid FROM charges").fetchall())


def test_sending_twice_sends_once(tmp_path, ledger):
    with SmsSandbox.started(tmp_path / "sms") as sms:
        first = send(sms, ledger, on_issue_intents(10, run_id="r1"))
        second = send(sms, ledger, on_issue_intents(10, run_id="r1"))
        accepted = sms.recorded()
    assert first.outcomes["accepted"] == 10
    assert second.outcomes == {"skipped_already_in_outbox": 10}
    assert len(accepted) == 10
    assert charged_sids(ledger) == sorted(m["sid"] for m in accepted)


def test_lost_responses_are_looked_up_not_resent(tmp_path, ledger):
    knobs = {"lost_response_rate": 0.5, "seed": 7}
    with SmsSandbox.started(tmp_path / "sms", knobs=knobs) as sms:
        report = send(sms, ledger, on_issue_intents(20, run_id="r1"))
        accepted = sms.recorded()
    assert report.outcomes["accepted"] == 20
    bodies = [m["body"] for m in accepted]
    assert len(bodies) == len(set(bodies)) == 20  # nobody texted twice
    assert charged_sids(ledger) == sorted(m["sid"] for m in accepted)


def test_server_errors_are_retried_until_accepted(tmp_path, ledger):
    with SmsSandbox.started(tmp_path / "sms", knobs={"fail_rate": 0.3, "seed": 3}) as sms:
        report = send(sms, ledger, on_issue_intents(20, run_id="r1"))
        accepted = sms.recorded()
    assert report.outcomes["accepted"] == 20
    assert len(accepted) == 20
    assert charged_sids(ledger) == sorted(m["sid"] for m in accepted)


def test_invalid_and_landline_numbers_fail_permanently_without_charge(tmp_path, ledger):
    bad = on_issue_intents(2, run_id="r1")
    bad = [
        Intent(**{**bad[0].as_row(), "to_e164": "+66236578901"}),
        Intent(**{**bad[1].as_row(), "to_e164": "+6621234567"}),
    ]
    with SmsSandbox.started(tmp_path / "sms") as sms:
        report = send(sms, ledger, bad)
    assert report.outcomes == {"failed": 2}
    with ledger.connect() as con:
        reasons = sorted(r[0] for r in con.execute("SELECT error_reason FROM messages").fetchall())
    assert reasons == ["Invalid telephone number", "Not a mobile number"]
    assert charged_sids(ledger) == []


def test_a_crash_between_claim_and_record_is_reconciled_without_a_second_sms(tmp_path, ledger):
    batch = on_issue_intents(3, run_id="r1")
    with SmsSandbox.started(tmp_path / "sms") as sms:
        # The gateway took INV-0, but the process died before recording it.
        for intent in batch:
            ledger.claim_intent(intent.as_row())
        sms.send(to=batch[0].to_e164, body=batch[0].body)
        report = send(sms, ledger, [], reconcile=True)
        accepted = sms.recorded()
    assert report.outcomes["accepted"] == 3
    assert sorted(m["body"] for m in accepted) == sorted(i.body for i in batch)
    assert charged_sids(ledger) == sorted(m["sid"] for m in accepted)
