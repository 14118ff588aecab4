"""Reading mail that comes back: a bounce as a relay writes it (RFC 3464), ETDA's stamped
reply, and anything else left alone."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage

import pytest

from courier.inbound_mail import InboundMailError, read_inbound

TIMESTAMP = "csemail@etax.teda.th"

POSTFIX_BOUNCE = b"""\
Return-Path: <>
From: MAILER-DAEMON@mx.example (Mail Delivery System)
To: billing@courier.example
Subject: Undelivered Mail Returned to Sender
Message-ID: <20261203101010.ABC@mx.example>
Date: Thu, 03 Dec 2026 10:10:10 +0000
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not be delivered.

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example
Arrival-Date: Thu, 03 Dec 2026 10:10:09 +0000

Final-Recipient: rfc822; AP101@Buyer.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <ap101@buyer.example>: Recipient address
    rejected: User unknown

Final-Recipient: rfc822; cc@buyer.example
Action: delayed
Status: 4.4.1

--B1
Content-Type: text/rfc822-headers

From: Courier Billing <billing@courier.example>
To: AP101@Buyer.example
Subject: Invoice TH1-2026-000001
Message-ID: <0123abcd@courier.example>

--B1--
"""


def test_a_relays_bounce_names_each_recipient_and_the_email_it_answers():
    mail = read_inbound(POSTFIX_BOUNCE, TIMESTAMP)
    assert mail.kind == "bounce"
    assert mail.answers == "<0123abcd@courier.example>"
    assert mail.message_id == "<20261203101010.ABC@mx.example>"
    assert [(r.address, r.action, r.status) for r in mail.recipients] == [
        ("ap101@buyer.example", "failed", "5.1.1"),
        ("cc@buyer.example", "delayed", "4.4.1"),
    ]
    assert mail.failed_addresses == ["ap101@buyer.example"]
    assert "User unknown" in mail.recipients[0].diagnostic


def stamped_reply(sender: str = TIMESTAMP) -> EmailMessage:
    reply = EmailMessage()
    reply["From"] = f"ETDA e-Tax Timestamp <{sender}>"
    reply["To"] = "billing@siamcloud.example"
    reply["Subject"] = "ใบกำกับภาษี TH1-2026-001201"
    reply["Message-ID"] = "<stamp-1@etax.teda.th>"
    reply["In-Reply-To"] = "<0123abcd@siamcloud.example>"
    reply["References"] = "<0123abcd@siamcloud.example>"
    reply["Date"] = "Thu, 03 Dec 2026 10:11:00 +0700"
    reply.set_content("stamped")
    reply.add_attachment(
        b"%PDF-stamped", maintype="application", subtype="pdf", filename="TH1-2026-001201.pdf"
    )
    return reply


def test_the_time_stamp_services_reply_is_tied_to_our_email_with_its_file():
    mail = read_inbound(stamped_reply().as_bytes(), TIMESTAMP)
    assert mail.kind == "timestamp"
    assert mail.answers == "<0123abcd@siamcloud.example>"
    assert mail.subject == "ใบกำกับภาษี TH1-2026-001201"
    (stamped,) = mail.files
    assert stamped.filename == "TH1-2026-001201.pdf"
    assert stamped.sha256 == hashlib.sha256(b"%PDF-stamped").hexdigest()
    assert mail.received_date is not None and mail.received_date.utcoffset().seconds == 7 * 3600


def test_a_reply_from_anyone_else_is_not_a_time_stamp():
    mail = read_inbound(stamped_reply("someone@else.example").as_bytes(), TIMESTAMP)
    assert mail.kind == "other" and mail.files == ()


def test_a_message_without_its_own_id_gets_a_stable_one_from_its_bytes():
    raw = POSTFIX_BOUNCE.replace(b"Message-ID: <20261203101010.ABC@mx.example>\n", b"")
    first, second = read_inbound(raw, TIMESTAMP), read_inbound(raw, TIMESTAMP)
    assert first.message_id == second.message_id and first.message_id.startswith("<sha256:")


@pytest.mark.parametrize("raw", [b"", b"just some text without headers"])
def test_what_is_not_mail_is_refused_with_a_reason(raw):
    with pytest.raises(InboundMailError):
        read_inbound(raw, TIMESTAMP)
