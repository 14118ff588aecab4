"""Choosing what to send is a pure function of the ledger's rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd

from courier.invoice_io import invoice_to_dict
from courier.messages import load_price_table
from courier.planning import SendingHours, build_intent, over_budget, plan_on_issue
from courier.sample_data import generate_invoices

PRICES = load_price_table(Path(__file__).resolve().parents[2] / "data/pricing.csv")


NO_MESSAGES = pd.DataFrame({"invoice_number": [], "purpose": [], "status": []})


def candidates() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "invoice_number": ["A", "B", "C", "D", "E"],
            "phone_status": ["ok", "invalid", "ok", "ok", "ok"],
            "phone_e164": ["+66811111111", None, "+66822222222", "+966501234567", "+201001234567"],
            "uploaded_documents": [2, 2, 1, 2, 2],
            "pdf_url": ["u1", "u2", None, "u4", "u5"],
        }
    )


def test_only_textable_fully_stored_never_tried_invoices_are_due():
    messages = pd.DataFrame(
        {
            "invoice_number": ["D", "E", "A"],
            "purpose": ["on_issue", "manual:1", "manual:2"],
            "status": ["accepted", "accepted", "failed"],
        }
    )
    plan = plan_on_issue(candidates(), messages)
    # B: invalid phone; C: a document missing; D: already in the outbox; E: a person
    # already sent it (an accepted manual send stands for the on-issue SMS).
    assert list(plan.due["invoice_number"]) == ["A"]
    assert plan.held == {}


def test_a_send_left_to_retry_is_planned_again_and_a_final_one_is_not():
    # A transient failure that outlasted one run's retries: the next run plans it again
    # (the claim re-opens the same outbox row); failed and pending ones stay out.
    messages = pd.DataFrame(
        {
            "invoice_number": ["A", "D", "E"],
            "purpose": ["on_issue", "on_issue", "on_issue"],
            "status": ["retry", "failed", "pending"],
        }
    )
    plan = plan_on_issue(candidates(), messages)
    assert list(plan.due["invoice_number"]) == ["A"]


def test_opted_out_numbers_are_held_with_the_reason():
    plan = plan_on_issue(candidates(), NO_MESSAGES, opted_out={"+66811111111"})
    assert list(plan.due["invoice_number"]) == ["D", "E"]
    assert plan.held == {"A": "Buyer opted out (STOP)"}


def test_sending_hours_follow_each_recipients_own_clock():
    hours = SendingHours.parse("09:00-21:00")
    # 03:00 UTC = 10:00 Bangkok, 06:00 Riyadh, 05:00 Cairo: only the Thai buyer is awake.
    plan = plan_on_issue(
        candidates(), NO_MESSAGES, now=datetime(2026, 11, 21, 3, tzinfo=UTC), hours=hours
    )
    assert list(plan.due["invoice_number"]) == ["A"]
    assert set(plan.held) == {"D", "E"}
    assert "09:00–21:00" in plan.held["D"]
    # 16:00 UTC = 23:00 Bangkok, 19:00 Riyadh, 18:00 Cairo.
    plan = plan_on_issue(
        candidates(), NO_MESSAGES, now=datetime(2026, 11, 21, 16, tzinfo=UTC), hours=hours
    )
    assert list(plan.due["invoice_number"]) == ["D", "E"]
    assert SendingHours.parse("off") is None


def test_a_run_over_budget_sends_nothing_and_says_why():
    invoice = next(i for i in generate_invoices(count=30) if i.buyer.country == "TH")
    record = invoice_to_dict(invoice)
    intents = [
        build_intent(record, "+66812345678", f"https://d.example/{n}", PRICES) for n in range(3)
    ]
    total = sum(i.amount for i in intents)
    assert over_budget(intents, total) is None
    assert over_budget(intents, None) is None
    reason = over_budget(intents, total - Decimal("0.01"))
    assert reason is not None and "Nothing was sent" in reason and str(total) in reason


def test_an_intent_carries_the_link_its_segments_and_its_exact_price():
    invoice = next(i for i in generate_invoices(count=30) if i.buyer.country == "TH")
    record = json.loads(json.dumps(invoice_to_dict(invoice)))
    intent = build_intent(record, "+66812345678", "https://docs.example/d/abc", PRICES)
    assert intent.idempotency_key == f"{invoice.number}:on_issue"
    assert "https://docs.example/d/abc" in intent.body
    assert intent.encoding == "UCS-2"  # Thai text
    assert intent.destination_country == "TH"
    assert intent.amount == intent.segments * Decimal("0.0300")
    again = build_intent(record, "+66812345678", "https://docs.example/d/abc", PRICES)
    assert again == intent  # same invoice, same purpose: same key, same text, same price
