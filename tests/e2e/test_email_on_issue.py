"""The invoice by e-mail on issue, through the nightly flow, the one outbox and the sandbox
mail relay: one e-mail per buyer with an address, its parts and its PDF/A-3 (the ETDA XML
inside, valid), Thai intact, the time-stamp copy for a seller in the e-Tax scheme, and
nothing sent twice."""

from __future__ import annotations

import email
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from email import policy
from email.message import EmailMessage

import duckdb
import pikepdf
import pytest
from prefect.settings import PREFECT_API_URL

from courier.sample_data import SELLERS
from flows.nightly import nightly_send
from tests.support.browser import live_stack
from tests.support.etda_validation import validate_etda

TH1_TAX_ID = SELLERS[0].party.tax_id  # บริษัท สยามคลาวด์: in the e-Tax by e-mail scheme
TIMESTAMP = "csemail@etax.teda.th"


def rows(path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def embedded_files(pdf: bytes) -> dict[str, bytes]:
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        return {name: spec.get_file().read_bytes() for name, spec in doc.attachments.items()}


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.fixture
def stack(tmp_path, monkeypatch):
    with live_stack(tmp_path, monkeypatch, 40, email=True) as live:
        monkeypatch.setenv("COURIER_ETAX_EMAIL_SELLERS", TH1_TAX_ID)
        yield live


@pytest.mark.timeout(600)
def test_each_buyer_with_an_address_gets_one_email_with_its_invoice_attached(stack):
    summary = nightly_send()
    expected = rows(
        stack.ledger_path,
        "SELECT invoice_number, buyer_email, buyer_country, record_json::JSON->'seller'->>'tax_id' "
        "FROM invoices WHERE email_status = 'ok' ORDER BY 1",
    )
    assert 5 < len(expected) < 40, "the sample has buyers with and without addresses"
    kept = stack.smtp.messages()
    assert len(kept) == len(expected)
    assert summary["email_outcomes"] == {"accepted": len(expected)}

    ledger_ids = dict(
        rows(
            stack.ledger_path,
            "SELECT invoice_number, message_id FROM messages WHERE channel = 'email'",
        )
    )
    by_number = {}
    for n, summary_row in enumerate(kept):
        message = parsed(stack.smtp.raw(n))
        number = next(num for num, mid in ledger_ids.items() if mid == message["Message-ID"])
        by_number[number] = (summary_row, message)
    assert sorted(by_number) == [row[0] for row in expected]

    for number, address, country, seller_tax_id in expected:
        summary_row, message = by_number[number]
        assert summary_row["rcpt_tos"][0] == address
        body = message.get_body(("plain",))
        html = message.get_body(("html",))
        assert body is not None and html is not None
        assert number in body.get_content() and number in message["Subject"]
        (attachment,) = list(message.iter_attachments())
        assert attachment.get_filename() == f"{number}.pdf"
        pdf = attachment.get_payload(decode=True)
        assert pdf.startswith(b"%PDF-")
        if country == "TH":  # Thai decoded back intact
            assert body.get_content().startswith("เรียน ")
            assert "ใบกำกับภาษี" in html.get_content()
        if seller_tax_id == TH1_TAX_ID:
            assert TIMESTAMP in summary_row["rcpt_tos"], "the time-stamp copy"
            assert message["Cc"] == TIMESTAMP
            assert "billing@siamcloud.example" in message["From"]
            assert re.fullmatch(rf"\[\d\d/\d\d/25\d\d\]\[INV\]\[{number}\]", message["Subject"])
        elif country == "TH":
            assert message["Subject"].startswith("ใบกำกับภาษี")
        else:
            assert TIMESTAMP not in summary_row["rcpt_tos"]
            assert "billing@courier.example" in message["From"]
        if number.startswith("TH"):
            (xml,) = embedded_files(pdf).values()
            assert validate_etda(xml) == [], number

    shown = rows(
        stack.ledger_path,
        "SELECT count(*) FROM invoice_status WHERE email_send_status = 'sent'",
    )
    assert shown == [(len(expected),)]
    channels = rows(stack.ledger_path, "SELECT channel, count(*) FROM deliveries GROUP BY 1")
    assert dict(channels)["email"] == len(expected)

    again = nightly_send()
    assert len(stack.smtp.messages()) == len(expected), "a second run sends no e-mail again"
    assert again["email_outcomes"] == {}

    # A person's resend by e-mail: a new e-mail (its own Message-ID); the same request
    # twice sends once; the time-stamp copy is not sent again for a document already copied.
    from flows.resend import resend

    number = next(n for n, *_, tax_id in expected if tax_id == TH1_TAX_ID)
    for _ in range(2):
        resend(numbers=[number], request_id="req-1", requested_by="ops", channels=["email"])
    resent = stack.smtp.messages()[len(expected) :]
    assert len(resent) == 1 and resent[0]["message_id"] != ledger_ids[number]
    assert TIMESTAMP not in resent[0]["rcpt_tos"]


def wait_for_emails(stack, process, at_least: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        if len(stack.smtp.messages()) >= at_least:
            return
        time.sleep(0.05)


@pytest.mark.timeout(600)
def test_a_run_killed_mid_email_batch_then_run_again_sends_each_email_once(stack, tmp_path):
    """SIGKILL while e-mails are being handed over, then a new run: every e-mail went
    once; the one the kill caught mid-handover (if any) is ``unknown`` — it may have gone,
    and SMTP cannot be asked — never sent a second time."""
    stack.smtp.configure(latency_ms=250)  # widen the handing-over phase
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "COURIER_EMAIL_CONCURRENCY": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "courier", "run", "--json"]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_emails(stack, process, 3)
    assert process.poll() is None, "the run ended before the kill"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    stack.smtp.configure(latency_ms=0)
    subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, timeout=600, check=True)

    ids = Counter(m["message_id"] for m in stack.smtp.messages())
    assert ids and max(ids.values()) == 1, "an e-mail went twice"
    outcomes = rows(
        stack.ledger_path,
        "SELECT message_id, status FROM messages WHERE channel = 'email'",
    )
    by_status = Counter(status for _, status in outcomes)
    assert set(by_status) <= {"accepted", "unknown"}, by_status
    assert by_status["unknown"] <= 1, "only the e-mail in the relay's hands may be unknown"
    accepted = {mid for mid, status in outcomes if status == "accepted"}
    assert accepted <= set(ids), "an e-mail recorded as sent never reached the relay"
    emails = rows(stack.ledger_path, "SELECT count(*) FROM invoices WHERE email_status = 'ok'")
    assert len(outcomes) == emails[0][0], "every buyer with an address has its one e-mail"


EMAIL_RULES = """
version: 1
rules:
  - id: courtesy
    name: Courtesy by e-mail
    anchor: due_date
    payment_status: [unpaid, partially_paid]
    steps:
      - when: 3 days before
        channel: email
        template:
          en: "{seller}: invoice {number}, {amount_due} {currency} is due {due_date}."
          th: "{seller}: แจ้งเตือน ยอด {amount_due} {currency} ครบกำหนด {due_date}"
"""


@pytest.mark.timeout(600)
def test_an_email_reminder_step_goes_once_and_not_when_paid_or_bounced(tmp_path, monkeypatch):
    import dataclasses
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    from courier.ledger import Ledger, now_utc
    from courier.sample_data import generate_invoices
    from flows.reminders import reminders
    from tests.e2e.test_reminders_flow import due_on, pay, set_erp_clock

    bangkok = ZoneInfo("Asia/Bangkok")
    thai = [i for i in generate_invoices(count=120) if i.buyer.address.country == "TH"][:3]
    due = date(2026, 12, 10)
    invoices = [
        dataclasses.replace(
            due_on(invoice, due),
            buyer=dataclasses.replace(invoice.buyer, email=f"ap{n}@buyer{n}.example"),
        )
        for n, invoice in enumerate(thai)
    ]
    reminded, paid, bounced = (i.number for i in invoices)
    rules = tmp_path / "rules.yaml"
    rules.write_text(EMAIL_RULES, encoding="utf-8")
    with live_stack(tmp_path, monkeypatch, 0, invoices=invoices, email=True) as stack:
        monkeypatch.setenv("COURIER_REMINDER_RULES_PATH", str(rules))
        nightly_send()
        on_issue = len(stack.smtp.messages())
        assert on_issue == 3
        with Ledger(stack.ledger_path).connect() as con:  # as a bounce posted back records it
            con.execute(
                "INSERT INTO email_bounces (address, action, status_code, received_at) "
                "VALUES ('ap2@buyer2.example', 'failed', '5.1.1', ?)",
                [now_utc()],
            )
        pay(stack, paid, invoices[1].grand_total, datetime(2026, 12, 5, 12, tzinfo=bangkok))
        as_of = datetime(2026, 12, 7, 10, tzinfo=bangkok)
        set_erp_clock(stack, as_of)
        first = reminders(as_of=as_of)
        set_erp_clock(stack, as_of.replace(hour=16))
        second = reminders(as_of=as_of.replace(hour=16))

        new = stack.smtp.messages()[on_issue:]
        assert [m["rcpt_tos"] for m in new] == [["ap0@buyer0.example"]]
        assert new[0]["subject"].startswith("แจ้งเตือนการชำระเงิน") and reminded in new[0]["subject"]
        assert first["reminders_sent"] == 1 and second["reminders_sent"] == 0
        assert first["reminders_skipped"] == {"paid": 1}
        assert first["reminders_held"] == {"E-mail address bounced": 1}
        history = rows(
            stack.ledger_path,
            "SELECT invoice_number, channel, status FROM reminder_history ORDER BY 1",
        )
        assert (reminded, "email", "sent") in history
        assert not any(h[0] == bounced and h[2] == "sent" for h in history)


@pytest.mark.timeout(600)
def test_mail_back_a_bounce_stops_email_and_a_time_stamp_is_recorded(stack):
    """The sandbox relay bounces one buyer's address and stands in for ETDA's time-stamp
    mailbox; both post back to the receiver's inbound webhook, as a mail provider would."""
    from courier.ledger import Ledger
    from courier.receipts import EMAIL_INBOUND_PATH, create_receipts_app
    from courier.sample_data import generate_invoices
    from flows.resend import resend
    from sandbox.server import run_in_thread

    victim = next(
        i for i in generate_invoices(count=40) if i.buyer.email and i.seller.tax_id != TH1_TAX_ID
    )
    token = "inbound-e2e-token"
    app = create_receipts_app(Ledger(stack.ledger_path), "t", "http://x", inbound_email_token=token)
    url, stop = run_in_thread(app)
    try:
        stack.smtp.configure(
            bounce=[victim.buyer.email],
            inbound_url=url.rstrip("/") + EMAIL_INBOUND_PATH,
            inbound_token=token,
        )
        nightly_send()
        copied = rows(
            stack.ledger_path,
            "SELECT count(*) FROM messages WHERE cc_address IS NOT NULL AND status = 'accepted'",
        )[0][0]
        assert copied > 0
        outbound = stack.smtp.wait_for_outbound(copied + 1, timeout=30)
        assert all(entry["delivered"] for entry in outbound), outbound
    finally:
        stop()

    stamps = rows(
        stack.ledger_path,
        "SELECT count(*), count(DISTINCT invoice_number) FROM etax_timestamps",
    )
    assert stamps == [(copied, copied)]
    shown = rows(
        stack.ledger_path,
        "SELECT email_send_status, email_send_reason FROM invoice_status "
        f"WHERE invoice_number = '{victim.number}'",
    )
    assert shown == [("bounced", "Bounced (5.1.1)")]
    assert rows(stack.ledger_path, "SELECT address FROM bounced_addresses") == [
        (victim.buyer.email.lower(),)
    ]
    summary = resend(
        numbers=[victim.number], request_id="after-bounce", requested_by="ops", channels=["email"]
    )
    assert summary["result"]["held"] == {f"{victim.number} (e-mail)": "E-mail address bounced"}
