"""The nightly flow, under Prefect, against the sandboxes: the issue's "done when" in a test."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import duckdb
import httpx
import pytest

from courier.documents.pdfa import extract_invoice_xml
from courier.sample_data import generate_invoices
from flows.nightly import nightly_send
from tests.e2e.conftest import download
from tests.support.etda_validation import validate_etda
from tests.support.ubl_validation import validate_ubl


def rows(path, sql):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.mark.timeout(600)
def test_nightly_send_end_to_end_and_the_second_run_sends_nothing(stack, tmp_path):
    invoices = generate_invoices(count=60)
    summary = nightly_send()

    # One row per invoice, phone problems read as a person expects.
    status = {
        r[0]: r[1:]
        for r in rows(
            stack.ledger_path,
            "SELECT invoice_number, phone_status, reason, sms_status, total_charges, "
            "phone_masked FROM invoice_status",
        )
    }
    assert set(status) == {i.number for i in invoices}
    example = next(i for i in invoices if i.buyer_phone_raw == "66236578901")
    assert status[example.number][1] == "Invalid telephone number"
    assert status[example.number][3] == Decimal(0)
    blank = next(i for i in invoices if not i.buyer_phone_raw.strip())
    assert status[blank.number][1] == "No telephone number"
    landline = next(i for i in invoices if i.buyer_phone_raw.startswith("02"))
    assert status[landline.number][1] == "Not a mobile number"
    assert all("812345678" not in r[4] for r in status.values())  # masked everywhere

    # Every SMS the gateway accepted has exactly one charge row, and nothing else is charged.
    accepted = stack.accepted_messages()
    charges = rows(stack.ledger_path, "SELECT provider_sid, amount, segments FROM charges")
    assert sorted(c[0] for c in charges) == sorted(m["sid"] for m in accepted)
    assert len(accepted) == summary["run_sms_sent"] > 0
    ok_phones = sum(1 for s in status.values() if s[0] == "ok")
    assert len(accepted) == ok_phones  # every textable buyer got exactly one SMS
    assert summary["charges_total"] == sum((c[1] for c in charges), Decimal(0))

    # Every texted link downloads that invoice's PDF.
    links = rows(
        stack.ledger_path,
        "SELECT m.invoice_number, m.body, s.pdf_url FROM messages m "
        "JOIN invoice_status s USING (invoice_number) WHERE m.status = 'accepted'",
    )
    for number, body, pdf_url in links:
        assert pdf_url in body
        response = download(pdf_url)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/pdf")
        pdf = tmp_path / "doc.pdf"
        pdf.write_bytes(response.content)
        text = subprocess.run(
            ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout
        assert number in text

    # Every generated XML passes its standard: ETDA e-Tax (XSD + Schematron) for Thai
    # sellers, UBL 2.1 XSD + CEN EN 16931 Schematron for the others; and the buyer's PDF
    # carries exactly that XML inside (PDF/A-3).
    documents = rows(
        stack.ledger_path,
        "SELECT invoice_number, kind, url, sha256 FROM documents "
        "WHERE status = 'uploaded' ORDER BY invoice_number, kind",
    )
    by_invoice: dict[str, dict[str, tuple[str, str]]] = {}
    for number, kind, url, digest in documents:
        by_invoice.setdefault(number, {})[kind] = (url, digest)
    assert set(by_invoice) == {i.number for i in invoices}
    sellers = {i.number: i.seller.country for i in invoices}
    for number, docs in by_invoice.items():
        xml = download(docs["xml"][0]).content
        pdf = download(docs["pdf"][0]).content
        assert hashlib.sha256(xml).hexdigest() == docs["xml"][1]
        assert hashlib.sha256(pdf).hexdigest() == docs["pdf"][1]
        problems = validate_etda(xml) if sellers[number] == "TH" else validate_ubl(xml)
        assert problems == [], (number, problems[:3])
        assert extract_invoice_xml(pdf)[1] == xml

    # Delivery receipts were polled: every sent SMS has a final status and the provider's
    # price, which matches the agreed one (the sandbox prices like our table).
    receipts = rows(
        stack.ledger_path,
        "SELECT delivery_status, count(*) FROM invoice_status WHERE sms_status = 'sent' GROUP BY 1",
    )
    assert dict(receipts) == {"delivered": len(accepted)}
    states = rows(stack.ledger_path, "SELECT state, count(*) FROM charge_reconciliation GROUP BY 1")
    assert dict(states) == {"matches": len(accepted)}

    # A second run pulls nothing new and sends nothing new.
    again = nightly_send()
    assert again["run_sms_sent"] == 0
    assert again["run_charges"] == Decimal(0)
    assert again["pulled_new"] == 0
    assert len(stack.accepted_messages()) == len(accepted)
    assert rows(stack.ledger_path, "SELECT count(*) FROM charges")[0][0] == len(charges)


@pytest.mark.timeout(600)
def test_resend_is_a_new_charged_sms_with_a_fresh_link_and_a_double_click_sends_once(stack):
    from flows.resend import resend

    nightly_send()
    sent = rows(
        stack.ledger_path,
        "SELECT invoice_number, pdf_url FROM invoice_status WHERE sms_status = 'sent' "
        "ORDER BY invoice_number LIMIT 2",
    )
    numbers = [n for n, _ in sent]
    before = len(stack.accepted_messages())

    first = resend(numbers=numbers, request_id="press-1", requested_by="finance@example.com")
    again = resend(numbers=numbers, request_id="press-1", requested_by="finance@example.com")

    assert first["result"]["accepted"] == 2
    assert again["result"].get("accepted", 0) == 0
    assert len(stack.accepted_messages()) == before + 2
    manual = rows(
        stack.ledger_path,
        "SELECT m.invoice_number, m.body, m.requested_by, c.amount FROM messages m "
        "JOIN charges c USING (idempotency_key) WHERE m.purpose = 'manual:press-1' "
        "ORDER BY 1",
    )
    assert [m[0] for m in manual] == numbers
    old_links = dict(sent)
    for number, body, who, amount in manual:
        assert who == "finance@example.com" and amount > 0
        assert old_links[number] not in body  # a fresh link
        link = body.split()[-1]
        assert download(link).status_code == 200
        assert download(old_links[number]).status_code == 200  # the old one still works


@pytest.mark.timeout(600)
def test_document_store_down_means_no_sms_and_the_next_run_completes(stack):
    httpx.post(f"{stack.docstore_url}/_sandbox/config", json={"fail_uploads": True})
    down = nightly_send()
    assert down["run_sms_sent"] == 0
    assert stack.accepted_messages() == []
    flagged = rows(
        stack.ledger_path, "SELECT document_status, count(*) FROM invoice_status GROUP BY 1"
    )
    assert dict(flagged) == {"failed": 60}
    reasons = rows(stack.ledger_path, "SELECT DISTINCT document_error FROM invoice_status")
    assert all("Upload failed" in r[0] for r in reasons)

    httpx.post(f"{stack.docstore_url}/_sandbox/config", json={"fail_uploads": False})
    up = nightly_send()
    ok_phones = rows(
        stack.ledger_path, "SELECT count(*) FROM invoice_status WHERE phone_status = 'ok'"
    )[0][0]
    assert up["run_sms_sent"] == ok_phones == len(stack.accepted_messages())
    assert rows(
        stack.ledger_path, "SELECT count(*) FROM invoice_status WHERE document_status <> 'uploaded'"
    ) == [(0,)]


@pytest.mark.timeout(600)
def test_budget_and_sending_hours_hold_sends_and_say_why(stack, monkeypatch):
    monkeypatch.setenv("COURIER_RUN_BUDGET", "0.05")
    over = nightly_send()
    assert over["run_sms_sent"] == 0 and stack.accepted_messages() == []
    assert "Run budget 0.05" in over["refused"] and "Nothing was sent" in over["refused"]

    monkeypatch.delenv("COURIER_RUN_BUDGET")
    # A half-hour window starting an hour from now in Bangkok: closed for Thai numbers now.
    local = datetime.now(UTC).astimezone(ZoneInfo("Asia/Bangkok"))
    start = (local + timedelta(hours=1)).hour
    closed = f"{start:02d}:00-{start:02d}:30" if start < 23 else "00:00-00:30"
    monkeypatch.setenv("COURIER_SENDING_HOURS", closed)
    held = nightly_send()
    thai_ok = rows(
        stack.ledger_path,
        "SELECT count(*) FROM invoice_status s JOIN invoices i USING (invoice_number) "
        "WHERE s.phone_status = 'ok' AND i.phone_e164 LIKE '+66%'",
    )[0][0]
    assert sum(held["held"].values()) >= thai_ok > 0
    assert not any(m["to"].startswith("+66") for m in stack.accepted_messages())

    monkeypatch.setenv("COURIER_SENDING_HOURS", "off")
    done = nightly_send()
    ok = rows(stack.ledger_path, "SELECT count(*) FROM invoice_status WHERE phone_status = 'ok'")
    assert len(stack.accepted_messages()) == ok[0][0]
    assert done["refused"] is None
