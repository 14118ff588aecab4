"""Building e-mail intents (pure): the parts, the attachment decision, the Message-ID, and
ETDA's e-Tax by e-mail rules for a seller in the scheme."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import pandas as pd
import pytest

from courier.domain import DocumentReference
from courier.email_planning import (
    REASON_BOUNCED,
    REASON_ETAX_NOT_COVERED,
    REASON_ETAX_SENDER,
    REASON_ETAX_TOO_LARGE,
    EmailOptions,
    EtaxByEmail,
    NotSendable,
    build_email_intent,
    email_guard_rails,
)
from courier.etax_email import etax_subject
from courier.invoice_io import invoice_to_dict
from courier.sample_data import generate_invoices

THAI = next(i for i in generate_invoices(count=50) if i.seller.country == "TH")
LINK = "https://docs.example/d/abc"
OPTIONS = EmailOptions(
    sender="Courier Billing <billing@courier.example>",
    price=Decimal("0"),
    currency="USD",
    max_attachment_bytes=5_000_000,
)
IN_SCHEME = dataclasses.replace(OPTIONS, etax=EtaxByEmail(frozenset({THAI.seller.tax_id})))


def build(invoice=THAI, size: int | None = 200_000, options=OPTIONS, **kwargs):
    return build_email_intent(invoice_to_dict(invoice), "ap@buyer.example", LINK, size, options,
                              **kwargs)  # fmt: skip


def test_an_email_intent_has_its_parts_the_pdf_to_attach_and_a_stable_message_id():
    intent = build()
    assert intent.channel == "email" and intent.to_e164 is None
    assert intent.idempotency_key == f"{THAI.number}:on_issue:email"
    assert THAI.number in intent.subject and LINK in intent.body and LINK in intent.body_html
    assert intent.attachment_url == LINK and intent.cc_address is None
    assert intent.message_id == build().message_id
    assert intent.message_id.endswith("@courier.example>")
    assert intent.from_address == OPTIONS.sender


def test_a_pdf_over_the_limit_is_linked_not_attached():
    english = dataclasses.replace(OPTIONS, language="en")
    linked, attached = build(size=6_000_000, options=english), build(options=english)
    assert linked.attachment_url is None and attached.attachment_url == LINK
    assert "is attached" in attached.body and "is attached" not in linked.body


def test_a_seller_in_the_e_tax_scheme_sends_from_its_own_address_with_the_copy():
    intent = build(options=IN_SCHEME)
    assert intent.cc_address == "csemail@etax.teda.th"
    assert THAI.seller.email in intent.from_address
    assert intent.subject == etax_subject(THAI)
    assert intent.message_id.endswith(f"@{THAI.seller.email.split('@')[1]}>")
    assert build(options=IN_SCHEME, etax_copy=False).cc_address is None  # a reminder


def test_the_e_tax_subject_is_date_in_buddhist_era_type_and_number():
    invoice = dataclasses.replace(THAI, issued_at=THAI.issued_at.replace(year=2026, month=8, day=1))
    assert etax_subject(invoice) == f"[01/08/2569][INV][{THAI.number}]"
    note = dataclasses.replace(
        invoice,
        type_code="81",
        referenced_document=DocumentReference("TH1-2026-000100", date(2026, 7, 1)),
    )
    assert etax_subject(note) == f"[01/08/2569][CRN][{THAI.number}][TH1-2026-000100]"


@pytest.mark.parametrize(
    ("change", "size", "reason"),
    [
        ({"type_code": "T05"}, 1000, REASON_ETAX_NOT_COVERED),  # abbreviated tax invoice
        ({"type_code": "T01"}, 1000, REASON_ETAX_NOT_COVERED),  # a receipt alone
        ({}, 4 * 1024 * 1024, REASON_ETAX_TOO_LARGE),  # over the scheme's 3 MB
        ({"seller": "no email"}, 1000, REASON_ETAX_SENDER),
    ],
)
def test_what_the_e_tax_scheme_forbids_is_not_sent_and_says_why(change, size, reason):
    if change.get("seller"):
        change = {"seller": dataclasses.replace(THAI.seller, email="")}
    with pytest.raises(NotSendable, match=reason[:30]):
        build(dataclasses.replace(THAI, **change), size=size, options=IN_SCHEME)


def test_email_guard_rails_need_an_address_and_documents_and_hold_bounced_ones():
    candidates = pd.DataFrame(
        {
            "invoice_number": ["A", "B", "C", "D"],
            "email_status": ["ok", "ok", "invalid", "ok"],
            "buyer_email": ["a@x.example", "Gone@x.example", None, "d@x.example"],
            "uploaded_documents": [2, 2, 2, 1],
            "pdf_url": [LINK] * 4,
            "buyer_country": ["TH"] * 4,
        }
    )
    plan = email_guard_rails(candidates, bounced={"gone@x.example"})
    assert list(plan.due["invoice_number"]) == ["A"]
    assert plan.held == {"B": REASON_BOUNCED}


def test_a_buyers_channel_choice_decides_which_channels_plan_its_invoices():
    from courier.planning import not_yet_sent

    candidates = pd.DataFrame(
        {
            "invoice_number": ["A", "B", "C", "D"],
            "channel_preference": ["sms", "email", "both", None],
        }
    )
    messages = pd.DataFrame(columns=["invoice_number", "purpose", "channel", "status"])
    by_sms = not_yet_sent(candidates, messages, "on_issue", "sms")["invoice_number"]
    by_email = not_yet_sent(candidates, messages, "on_issue", "email")["invoice_number"]
    assert list(by_sms) == ["A", "C", "D"] and list(by_email) == ["B", "C", "D"]
