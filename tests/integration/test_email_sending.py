"""E-mail through the one outbox, against the sandbox mail relay and document store over
loopback: 4xx retried, 5xx not, a line cut after DATA never resent blindly (``unknown``), a
crash mid-send settled without a second e-mail, a bounced address refused at the claim."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest

from courier.adapters.docstore import HttpDocumentStore, HttpStoredFiles
from courier.adapters.email import SmtpSender
from courier.channels import EmailChannel
from courier.email_planning import EmailOptions, build_email_intent
from courier.invoice_io import invoice_to_dict
from courier.ledger import Ledger, now_utc
from courier.planning import Intent
from courier.retry import RetryPolicy
from courier.sample_data import generate_invoices
from courier.sending import Sender
from tests.support.sandbox_fixtures import DOCS_TOKEN, docstore, smtp_sandbox

FAST = RetryPolicy(attempts=4, total_timeout_s=20, wait_initial_s=0.01, wait_max_s=0.05)
OPTIONS = EmailOptions(
    sender="Courier Billing <billing@courier.example>",
    price=Decimal("0"),
    currency="USD",
    max_attachment_bytes=7 * 1024 * 1024,
)


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(tmp_path / "ledger.duckdb")
    ledger.migrate()
    return ledger


@pytest.fixture
def relay(tmp_path):
    with smtp_sandbox(tmp_path / "smtp") as sandbox:
        yield sandbox


@pytest.fixture
def intents(tmp_path) -> list[Intent]:
    """Three e-mail intents whose PDFs are really stored (the e-mail reads them back)."""
    with docstore(tmp_path / "docs") as url, httpx.Client() as client:
        store = HttpDocumentStore(client, url, DOCS_TOKEN)
        built = []
        for n, invoice in enumerate(generate_invoices(count=3)):
            stored = store.put(f"{invoice.number}.pdf", b"%PDF-1.7 " + bytes(n), "application/pdf")
            built.append(
                build_email_intent(
                    invoice_to_dict(invoice),
                    f"ap{n}@buyer.example",
                    stored.url,
                    stored.size_bytes,
                    OPTIONS,
                    run_id="r1",
                )
            )
        yield built


def send(relay, ledger: Ledger, batch: list[Intent], reconcile: bool = False):
    async def go():
        async with httpx.AsyncClient() as client:
            channel = EmailChannel(
                SmtpSender(relay.host, relay.port, security="none", timeout_s=5),
                HttpStoredFiles(client),
                OPTIONS.sender,
            )
            sender = Sender(None, ledger, FAST, email=channel)
            if reconcile:
                return await sender.reconcile_pending("r2")
            return await sender.send_all(batch)

    return asyncio.run(go())


def statuses(ledger: Ledger) -> dict[str, tuple]:
    with ledger.connect() as con:
        rows = con.execute(
            "SELECT idempotency_key, status, attempts, error_reason FROM messages"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_each_email_goes_once_with_its_pdf_and_a_zero_charge(relay, ledger, intents):
    report = send(relay, ledger, intents)
    assert report.outcomes == {"email_accepted": 3}
    kept = relay.messages()
    assert sorted(m["message_id"] for m in kept) == sorted(i.message_id for i in intents)
    assert all(m["attachments"][0]["type"] == "application/pdf" for m in kept)
    assert send(relay, ledger, intents).outcomes == {"skipped_already_in_outbox": 3}
    assert len(relay.messages()) == 3
    with ledger.connect() as con:
        charges = con.execute("SELECT channel, amount, provider_sid FROM charges").fetchall()
    assert sorted(charges) == sorted(("email", Decimal("0"), i.message_id) for i in intents)


def test_a_4xx_is_tried_again_and_the_email_arrives_once(relay, ledger, intents):
    relay.configure(reply="4xx", reply_times=2)
    report = send(relay, ledger, intents[:1])
    assert report.outcomes == {"email_accepted": 1}
    assert len(relay.messages()) == 1
    assert statuses(ledger)[intents[0].idempotency_key][:2] == ("accepted", 3)


def test_a_5xx_is_not_tried_again_and_says_why(relay, ledger, intents):
    relay.configure(reply="5xx")
    report = send(relay, ledger, intents[:1])
    assert report.outcomes == {"email_failed": 1}
    status, attempts, reason = statuses(ledger)[intents[0].idempotency_key]
    assert (status, attempts) == ("failed", 1)
    assert "554" in reason and "refused" in reason
    relay.configure(reply="ok")
    assert send(relay, ledger, intents[:1]).outcomes == {"skipped_already_in_outbox": 1}
    assert relay.messages() == []


def test_a_line_cut_after_data_is_unknown_and_never_sent_again(relay, ledger, intents):
    relay.configure(reply="drop_after_data", reply_times=1)
    report = send(relay, ledger, intents[:1])
    assert report.outcomes == {"email_unknown": 1}
    status, _, reason = statuses(ledger)[intents[0].idempotency_key]
    assert status == "unknown" and "Unknown whether the e-mail was sent" in reason
    assert len(relay.messages()) == 1  # the relay did take it
    assert send(relay, ledger, intents[:1]).outcomes == {"skipped_already_in_outbox": 1}
    assert send(relay, ledger, [], reconcile=True).outcomes == {}
    assert len(relay.messages()) == 1


def test_a_crash_mid_send_is_settled_without_a_second_email(relay, ledger, intents):
    """As a process killed mid-batch leaves them: one row claimed but never handed over
    (``pending``), one being handed over (``sending``)."""
    never_tried, handing_over, _ = intents
    assert ledger.claim_intents([never_tried.as_row(), handing_over.as_row()])
    ledger.mark_sending([handing_over.idempotency_key])
    report = send(relay, ledger, [], reconcile=True)
    assert report.outcomes == {"email_accepted": 1, "email_unknown": 1}
    assert [m["message_id"] for m in relay.messages()] == [never_tried.message_id]
    assert statuses(ledger)[handing_over.idempotency_key][0] == "unknown"
    send(relay, ledger, intents)
    assert sorted(m["message_id"] for m in relay.messages()) == sorted(
        [never_tried.message_id, intents[2].message_id]
    )


def test_a_bounced_address_is_refused_at_the_claim(relay, ledger, intents):
    with ledger.connect() as con:
        con.execute(
            "INSERT INTO email_bounces (address, action, status_code, received_at) "
            "VALUES (?, 'failed', '5.1.1', ?)",
            [intents[0].to_address.upper(), now_utc()],
        )
    report = send(relay, ledger, intents[:2])
    assert report.outcomes == {"skipped_bounced_at_send": 1, "email_accepted": 1}
    assert [m["rcpt_tos"] for m in relay.messages()] == [[intents[1].to_address]]


def test_an_expired_pdf_link_fails_the_email_with_the_reason(relay, ledger, intents):
    gone = Intent(**{**intents[0].as_row(), "attachment_url": intents[0].attachment_url + "x"})
    report = send(relay, ledger, [gone])
    assert report.outcomes == {"email_failed": 1}
    assert "no longer available" in statuses(ledger)[gone.idempotency_key][2]
    assert relay.messages() == []


INBOUND_TOKEN = "inbound-test-token"


def bounce_for(intent: Intent) -> bytes:
    return (
        "From: Mail Delivery System <mailer-daemon@mx.example>\r\n"
        "To: billing@courier.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@mx.example>\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nUser unknown.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example\r\n\r\n"
        f"Final-Recipient: rfc822; {intent.to_address}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {intent.message_id}\r\n\r\n--B--\r\n"
    ).encode()


def test_a_bounce_posted_back_stops_email_to_the_address_and_marks_the_email(
    relay, ledger, intents
):
    from courier.receipts import EMAIL_INBOUND_PATH, create_receipts_app
    from sandbox.server import run_in_thread

    first, second, _ = intents
    send(relay, ledger, [first])
    app = create_receipts_app(ledger, "t", "http://x", inbound_email_token=INBOUND_TOKEN)
    url, stop = run_in_thread(app)
    try:
        target = url.rstrip("/") + EMAIL_INBOUND_PATH
        headers = {"Authorization": f"Bearer {INBOUND_TOKEN}", "Content-Type": "message/rfc822"}
        refused = httpx.post(target, content=bounce_for(first), timeout=10)
        assert refused.status_code == 403
        answer = httpx.post(target, content=bounce_for(first), headers=headers, timeout=10)
        assert answer.json() == {
            "kind": "bounce",
            "invoice_number": first.invoice_number,
            "duplicate": False,
        }
        again = httpx.post(target, content=bounce_for(first), headers=headers, timeout=10)
        assert again.json()["duplicate"] is True
    finally:
        stop()
    assert ledger.bounced_addresses() == {first.to_address}
    with ledger.connect() as con:
        assert con.execute("SELECT count(*) FROM email_bounces").fetchall() == [(1,)]
        assert con.execute(
            "SELECT provider_status, provider_error_code FROM messages WHERE message_id = ?",
            [first.message_id],
        ).fetchall() == [("bounced", "5.1.1")]
    # The next e-mail to that address is refused; another address still gets its own.
    to_same = Intent(**{**second.as_row(), "to_address": first.to_address})
    report = send(relay, ledger, [to_same])
    assert report.outcomes == {"skipped_bounced_at_send": 1}
    assert len(relay.messages()) == 1
