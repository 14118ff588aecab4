"""The outbox checks again, when it claims an intent right before sending, what may have
changed since planning: a payment (reminders), a pause of reminders, a STOP."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from courier.ledger import Ledger
from courier.ledger.reminders import UnknownPauseTarget
from courier.pulling import invoice_rows, parse_records
from tests.support.factories import on_issue_intents


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(tmp_path / "ledger.duckdb")
    ledger.migrate()
    records = [
        {
            "number": f"INV-{n}",
            "issued_at": "2026-11-20T10:00:00+07:00",
            "due_date": "2026-12-20",
            "currency": "THB",
            "vat_rate": "7",
            "payment_status": "paid" if n == 0 else "unpaid",
            "seller": {"name": "Seller", "address": {"line1": "1 Road", "country": "TH"}},
            "buyer": {
                "name": "Same Buyer Co" if n in (1, 2) else f"Buyer {n}",
                "tax_id": "0105550000019" if n in (1, 2) else "",
                "phone": "081-234-5678",
                "address": {"line1": "2 Road", "country": "TH"},
            },
            "lines": [{"description": "x", "quantity": "1", "unit_price": "100.00"}],
        }
        for n in range(5)
    ]
    ledger.insert_invoices(invoice_rows(parse_records(records).invoices, "t", datetime.now(UTC)))
    return ledger


def reminder_intents(count: int) -> list[dict]:
    return [
        replace(
            intent,
            idempotency_key=f"INV-{n}:reminder:chase:7-days-after",
            purpose="reminder:chase:7-days-after",
            stop_when_paid=True,
            pausable=True,
        ).as_row()
        for n, intent in enumerate(on_issue_intents(count))
    ]


def test_a_reminder_is_not_claimed_for_a_paid_or_paused_invoice_or_a_stopped_number(ledger):
    ledger.pause_reminders("buyer", "INV-1", "Disputed; agreed a payment plan", "ops@example.com")
    ledger.add_opt_out(on_issue_intents(4)[3].to_e164, "inbound_stop")

    claim = ledger.claim_intents_guarded(reminder_intents(5))

    assert claim.refused == {
        "INV-0:reminder:chase:7-days-after": "paid",
        "INV-1:reminder:chase:7-days-after": "paused",
        "INV-2:reminder:chase:7-days-after": "paused",  # the same buyer (tax id)
        "INV-3:reminder:chase:7-days-after": "opted_out",
    }
    assert claim.claimed == {"INV-4:reminder:chase:7-days-after"}
    # On-issue intents have no payment or pause guard: the invoice itself is still sent.
    on_issue = [i.as_row() for i in on_issue_intents(3)]
    assert ledger.claim_intents_guarded(on_issue).claimed == {"INV-0:on_issue", "INV-1:on_issue",
                                                              "INV-2:on_issue"}  # fmt: skip


def test_a_resumed_buyer_is_chased_again_and_the_pause_stays_on_record(ledger):
    ledger.pause_reminders("buyer", "INV-1", "Disputed", "ops@example.com")
    assert ledger.resume_reminders("buyer", "INV-2", "lead@example.com", "Resolved") == 1
    claim = ledger.claim_intents_guarded(reminder_intents(3)[1:])
    assert claim.refused == {}
    with ledger.connect(read_only=True) as con:
        audit = con.execute(
            "SELECT scope, target_label, reason, paused_by, resumed_by, resume_reason "
            "FROM reminder_pauses"
        ).fetchall()
    assert audit == [
        ("buyer", "Same Buyer Co", "Disputed", "ops@example.com", "lead@example.com", "Resolved")
    ]


def test_a_pause_needs_a_reason_and_a_known_target(ledger):
    with pytest.raises(ValueError, match="reason"):
        ledger.pause_reminders("invoice", "INV-1", "  ", "ops@example.com")
    with pytest.raises(UnknownPauseTarget):
        ledger.pause_reminders("invoice", "INV-404", "typo?", "ops@example.com")
