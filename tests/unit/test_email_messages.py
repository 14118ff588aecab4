"""The e-invoice e-mail: template files rendered purely, parts and attachments as a mail
client reads them, Thai intact, HTML escaped, one-line headers, a stable Message-ID."""

from __future__ import annotations

import email
import re
from dataclasses import replace
from datetime import UTC, datetime
from email import policy

import pytest

from courier.email_messages import (
    EmailTemplateError,
    build_email,
    email_language,
    invoice_attachments,
    message_id_for,
    render_email,
)
from courier.messages import format_amount
from courier.sample_data import generate_invoices

LINK = "https://documents.example/d/" + "A" * 32
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
PDF = b"%PDF-1.7 fake but bytes"


def thai_invoice():
    return next(i for i in generate_invoices(count=30) if i.buyer.address.country == "TH")


def parsed(message) -> email.message.EmailMessage:
    """The message as a receiving client parses it from the wire."""
    return email.message_from_bytes(message.as_bytes(), policy=policy.default)


def test_a_thai_buyer_gets_thai_subject_and_body_intact_with_the_pdf_attached():
    invoice = thai_invoice()
    assert email_language(invoice.buyer.address.country) == "th"
    content = render_email(invoice, LINK, language="th", attached=True)
    message = build_email(
        content,
        sender="Siam Trading <invoices@siamtrading.example>",
        to="ap@buyer.example",
        message_id=message_id_for(f"{invoice.number}:on_issue_email", "courier.example"),
        date=NOW,
        attachments=invoice_attachments(invoice.number, PDF),
    )
    received = parsed(message)
    assert received["Subject"] == content.subject
    assert received["Subject"].startswith(f"ใบกำกับภาษี {invoice.number} จาก {invoice.seller.name}")
    assert b"\xe0\xb9" not in message.as_bytes().split(b"\n\n", 1)[0]  # header encoded (RFC 2047)
    plain = received.get_body(("plain",)).get_content()
    html = received.get_body(("html",)).get_content()
    assert f"ยอดเงิน: {format_amount(invoice.grand_total)} {invoice.currency}" in plain
    assert LINK in plain and f'href="{LINK}"' in html
    (pdf,) = list(received.iter_attachments())
    assert pdf.get_filename() == f"{invoice.number}.pdf"
    assert pdf.get_content_type() == "application/pdf" and pdf.get_content() == PDF


def test_html_is_escaped_and_headers_stay_on_one_line():
    invoice = thai_invoice()
    hostile = replace(
        invoice, seller=replace(invoice.seller, name="Evil <script>x</script>\nBcc: all@x")
    )
    content = render_email(hostile, LINK, language="en", attached=False)
    assert "<script>" not in content.html and "&lt;script&gt;" in content.html
    assert "\n" not in content.subject and "Bcc: all@x" in content.subject  # text, not a header
    received = parsed(
        build_email(content, sender="a@x.example", to="b@y.example", message_id="<1@x>", date=NOW)
    )
    assert received["Bcc"] is None
    assert "attached" not in received.get_body(("plain",)).get_content()  # link only


def test_a_large_pdf_is_not_attached_and_the_message_id_is_stable_per_intent():
    assert invoice_attachments("INV-1", b"x" * 11, max_bytes=10) == []
    both = invoice_attachments("INV-1", PDF, b"<xml/>")
    assert [a.filename for a in both] == ["INV-1.pdf", "INV-1.xml"]
    first = message_id_for("INV-1:on_issue_email", "courier.example")
    assert first == message_id_for("INV-1:on_issue_email", "courier.example")
    assert first != message_id_for("INV-1:manual_email:abc", "courier.example")
    assert "INV-1" not in first and first.endswith("@courier.example>")


def test_a_missing_template_is_named():
    with pytest.raises(EmailTemplateError, match=re.escape("on_issue.ar.subject.j2")):
        render_email(thai_invoice(), LINK, language="ar", attached=True)
