"""Due reminder steps become outbox intents through the same guard rails as every SMS."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd

from courier.invoice_io import invoice_to_dict
from courier.messages import format_amount, load_price_table
from courier.phones import clean_phone
from courier.reminders.intents import (
    REASON_CHANNEL_UNAVAILABLE,
    REASON_NO_DOCUMENTS,
    REASON_NO_NUMBER,
    reminder_intents,
)
from courier.reminders.planning import DueStep
from courier.reminders.rules_file import parse_rules
from courier.sample_data import generate_invoices

PRICES = load_price_table(Path(__file__).resolve().parents[2] / "data/pricing.csv")
NOW = datetime(2026, 12, 27, 3, tzinfo=UTC)  # 10:00 Bangkok
RULES = parse_rules(
    """
version: 1
rules:
  - id: chase
    name: Chase
    anchor: due_date
    steps:
      - when: 7 days after
        template:
          en: "{number}: {amount_due} {currency} owed, {days_overdue} days late. {link}"
          th: "{number}: ค้าง {amount_due} {currency} เกิน {days_overdue} วัน {link}"
      - {when: 14 days after, channel: email, template: "{number} {link}"}
"""
)


def thai_invoices(count: int = 4) -> list:
    found = []
    for invoice in generate_invoices(count=200):
        phone = clean_phone(invoice.buyer_phone_raw, invoice.buyer.address.country)
        if invoice.buyer.address.country == "TH" and phone.status == "ok":
            found.append((invoice, phone.e164))
        if len(found) == count:
            return found
    raise AssertionError("not enough Thai sample invoices")


def frames(pairs, **per_number):
    candidates, facts = [], []
    for invoice, e164 in pairs:
        extra = per_number.get(invoice.number, {})
        candidates.append(
            {
                "invoice_number": invoice.number,
                "phone_status": extra.get("phone_status", "ok"),
                "phone_e164": e164,
                "record_json": json.dumps(invoice_to_dict(invoice)),
                "pdf_url": f"https://d.example/{invoice.number}",
                "uploaded_documents": extra.get("uploaded_documents", 2),
            }
        )
        facts.append(
            {
                "invoice_number": invoice.number,
                "buyer_country": "TH",
                "due_date": pd.Timestamp("2026-12-20"),
                "amount_due": extra.get("amount_due", str(invoice.grand_total)),
                "amount_paid": extra.get("amount_paid", "0"),
            }
        )
    return pd.DataFrame(facts), pd.DataFrame(candidates)


def step(number: str, step_id: str = "7-days-after") -> DueStep:
    return DueStep(number, "chase", step_id, NOW, "Asia/Bangkok")


def test_a_due_step_is_an_intent_with_its_key_text_guards_and_price():
    pairs = thai_invoices(1)
    invoice = pairs[0][0]
    paid = (invoice.grand_total / 4).quantize(Decimal("0.01"))
    owed = invoice.grand_total - paid
    facts, candidates = frames(
        pairs, **{invoice.number: {"amount_due": str(owed), "amount_paid": str(paid)}}
    )
    built = reminder_intents([step(invoice.number)], facts, candidates, RULES, PRICES, now=NOW)
    (intent,) = built.intents
    assert intent.idempotency_key == f"{invoice.number}:reminder:chase:7-days-after"
    assert intent.body.startswith(f"{invoice.number}: ค้าง {format_amount(owed)} THB เกิน 7 วัน")
    assert intent.stop_when_paid and intent.pausable
    assert intent.amount == PRICES.charge("TH", intent.segments) > 0
    assert built.held == {}


def test_steps_that_cannot_go_are_held_with_the_reason():
    pairs = thai_invoices(4)
    stopped, no_number, no_docs, mailed = (p[0].number for p in pairs)
    facts, candidates = frames(
        pairs,
        **{
            no_number: {"phone_status": "invalid"},
            no_docs: {"uploaded_documents": 1},
        },
    )
    built = reminder_intents(
        [step(stopped), step(no_number), step(no_docs), step(mailed, "14-days-after")],
        facts,
        candidates,
        RULES,
        PRICES,
        now=NOW,
        opted_out={pairs[0][1]},
    )
    assert built.intents == []
    assert built.held == {
        f"{stopped}:reminder:chase:7-days-after": "Buyer opted out (STOP)",
        f"{no_number}:reminder:chase:7-days-after": REASON_NO_NUMBER,
        f"{no_docs}:reminder:chase:7-days-after": REASON_NO_DOCUMENTS,
        f"{mailed}:reminder:chase:14-days-after": REASON_CHANNEL_UNAVAILABLE.format(
            channel="email"
        ),
    }


def test_an_email_step_is_an_email_with_the_steps_text_and_never_a_time_stamp_copy():
    from courier.email_planning import REASON_BOUNCED, EmailOptions, EtaxByEmail
    from courier.reminders.intents import REASON_NO_ADDRESS

    pairs = thai_invoices(3)
    mailed, bounced, no_address = (p[0] for p in pairs)
    facts, candidates = frames(pairs)
    candidates["buyer_country"] = "TH"
    candidates["email_status"] = ["ok", "ok", "missing"]
    candidates["buyer_email"] = ["ap1@buyer.example", "Gone@buyer.example", None]
    options = EmailOptions(
        sender="Courier <billing@courier.example>",
        price=Decimal("0.001"),
        currency="USD",
        max_attachment_bytes=10_000_000,
        etax=EtaxByEmail(frozenset({mailed.seller.tax_id})),  # in the scheme: still no copy
    )
    built = reminder_intents(
        [step(n.number, "14-days-after") for n in (mailed, bounced, no_address)],
        facts,
        candidates,
        RULES,
        PRICES,
        now=NOW,
        email=options,
        bounced={"gone@buyer.example"},
    )
    (intent,) = built.intents
    assert intent.idempotency_key == f"{mailed.number}:reminder:chase:14-days-after:email"
    assert intent.channel == "email" and intent.to_address == "ap1@buyer.example"
    assert intent.cc_address is None and intent.from_address == options.sender
    assert intent.subject.startswith("แจ้งเตือนการชำระเงิน")
    assert f"{mailed.number} https://d.example/{mailed.number}" in intent.body  # the step's text
    assert intent.amount == Decimal("0.001") and intent.stop_when_paid and intent.pausable
    assert built.held == {
        f"{bounced.number}:reminder:chase:14-days-after:email": REASON_BOUNCED,
        f"{no_address.number}:reminder:chase:14-days-after:email": REASON_NO_ADDRESS,
    }
