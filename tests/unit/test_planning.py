"""Choosing what to send is a pure function of the ledger's rows."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pandas as pd

from courier.invoice_io import invoice_to_dict
from courier.messages import load_price_table
from courier.planning import build_intent, plan_on_issue
from courier.sample_data import generate_invoices

PRICES = load_price_table(Path(__file__).resolve().parents[2] / "data/pricing.csv")


def candidates() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "invoice_number": ["A", "B", "C", "D", "E"],
            "phone_status": ["ok", "invalid", "ok", "ok", "ok"],
            "uploaded_documents": [2, 2, 1, 2, 2],
            "pdf_url": ["u1", "u2", None, "u4", "u5"],
        }
    )


def test_only_textable_fully_stored_never_tried_invoices_are_due():
    messages = pd.DataFrame(
        {"invoice_number": ["D", "E"], "purpose": ["on_issue", "manual:1"],
         "status": ["accepted", "accepted"]}
    )
    due = plan_on_issue(candidates(), messages)
    # B: invalid phone; C: a document missing; D: already in the outbox. E's manual send
    # does not stand for its on-issue SMS.
    assert list(due["invoice_number"]) == ["A", "E"]


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
