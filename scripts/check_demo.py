"""Checks a finished `make demo` against the running sandbox and prints what it found.

Usage: .venv/bin/python scripts/check_demo.py   (from the checkout, services running)
Needs ../shared/etda beside the checkout for the XML check (skipped, and said, otherwise).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import duckdb
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
LEDGER = REPO / "data/ledger.duckdb"
SMS = "http://127.0.0.1:8701"


def main() -> int:
    with duckdb.connect(str(LEDGER), read_only=True) as con:
        status = con.execute(
            "SELECT invoice_number, phone_status, reason, total_charges FROM invoice_status"
        ).fetchall()
        charges = con.execute(
            "SELECT provider_sid, invoice_number FROM charges WHERE channel = 'sms'"
        ).fetchall()
        sent = con.execute(
            "SELECT s.invoice_number, s.pdf_url FROM invoice_status s WHERE sms_status = 'sent'"
        ).fetchall()
        xml_urls = con.execute(
            "SELECT d.url, i.seller_country FROM documents d JOIN invoices i "
            "USING (invoice_number) WHERE d.kind = 'xml' AND d.status = 'uploaded'"
        ).fetchall()
        raw = dict(con.execute("SELECT invoice_number, phone_raw FROM invoices").fetchall())
    problems: list[str] = []
    print(f"invoice_status rows: {len(status)}")
    print("reasons:", dict(Counter(r[2] for r in status)))
    example = [r for r in status if raw[r[0]] == "66236578901"]
    print("66236578901:", [(r[2], str(r[3])) for r in example])
    if not example or any(r[2] != "Invalid telephone number" or r[3] != 0 for r in example):
        problems.append("66236578901 is not shown as invalid with no charge")

    accepted = httpx.get(f"{SMS}/_sandbox/messages", timeout=30).json()["messages"]
    sids = Counter(c[0] for c in charges)
    print(f"sandbox accepted: {len(accepted)}; charge rows: {len(charges)}")
    if sorted(m["sid"] for m in accepted) != sorted(sids) or max(sids.values(), default=1) != 1:
        problems.append("accepted messages and charge rows differ")

    # Reminders: each step once per invoice; the gateway never got the same text twice.
    with duckdb.connect(str(LEDGER), read_only=True) as con:
        reminders = con.execute(
            "SELECT invoice_number, purpose FROM messages "
            "WHERE purpose LIKE 'reminder:%' AND status = 'accepted'"
        ).fetchall()
        skipped_paid = con.execute(
            "SELECT count(*) FROM reminder_skips WHERE reason_code = 'paid'"
        ).fetchall()[0][0]
    steps = Counter((r[0], r[1]) for r in reminders)
    print(
        f"reminders sent: {len(reminders)} ({len(set(r[0] for r in reminders))} invoices); "
        f"steps skipped as paid: {skipped_paid}"
    )
    if steps and max(steps.values()) != 1:
        problems.append("a reminder step went to an invoice twice")
    bodies = Counter(m["body"] for m in accepted)
    if bodies and max(bodies.values()) != 1:
        problems.append("the gateway received the same text twice")

    # E-mail: each buyer with a usable address got one on-issue e-mail, no Message-ID
    # twice at the relay, the e-Tax seller's copies were stamped, the bounces recorded.
    mail = httpx.get("http://127.0.0.1:8704/_sandbox/messages", timeout=30).json()["messages"]
    with duckdb.connect(str(LEDGER), read_only=True) as con:
        emailed = con.execute(
            "SELECT count(*) FROM messages WHERE channel = 'email' AND purpose = 'on_issue' "
            "AND status = 'accepted'"
        ).fetchall()[0][0]
        addressed = con.execute(
            "SELECT count(*) FROM invoice_status WHERE email_status = 'ok'"
        ).fetchall()[0][0]
        copies, stamped, bounced = con.execute(
            "SELECT (SELECT count(*) FROM messages WHERE cc_address IS NOT NULL "
            "AND status = 'accepted'), (SELECT count(*) FROM etax_timestamps), "
            "(SELECT count(*) FROM invoice_status WHERE email_send_status = 'bounced')"
        ).fetchall()[0]
    ids = Counter(m["message_id"] for m in mail)
    print(
        f"e-mails at the relay: {len(mail)}; on-issue e-mails sent: {emailed} of {addressed} "
        f"buyers with an address; e-Tax copies {copies}, stamped back {stamped}; "
        f"bounced {bounced}"
    )
    if ids and max(ids.values()) != 1:
        problems.append("the relay received the same e-mail twice")
    if emailed != addressed:
        problems.append("not every buyer with an address got its on-issue e-mail")
    if stamped != copies:
        problems.append("not every e-Tax copy was stamped back")

    pdf_ok = 0
    with tempfile.TemporaryDirectory() as tmp:
        for number, url in sent:
            response = httpx.get(url, timeout=30)
            path = Path(tmp) / "doc.pdf"
            path.write_bytes(response.content)
            text = subprocess.run(
                ["pdftotext", str(path), "-"], capture_output=True, text=True, check=False
            ).stdout
            if response.headers.get("content-type", "").startswith("application/pdf") and (
                number in text
            ):
                pdf_ok += 1
    print(f"sent links that download their invoice's PDF: {pdf_ok}/{len(sent)}")
    if pdf_ok != len(sent):
        problems.append("some sent links do not download their PDF")

    try:
        from tests.support.etda_validation import validate_etda
        from tests.support.ubl_validation import validate_ubl
    except Exception as error:
        print(f"XML check skipped: {error}")
    else:
        etda = [u for u, country in xml_urls if country == "TH"]
        ubl = [u for u, country in xml_urls if country != "TH"]
        bad_etda = [u for u in etda if validate_etda(httpx.get(u, timeout=30).content)]
        bad_ubl = [u for u in ubl if validate_ubl(httpx.get(u, timeout=30).content)]
        print(
            "XML passing ETDA XSD + Schematron (Thai sellers): "
            f"{len(etda) - len(bad_etda)}/{len(etda)}"
        )
        print(
            "XML passing UBL 2.1 XSD + CEN EN 16931 Schematron (other sellers): "
            f"{len(ubl) - len(bad_ubl)}/{len(ubl)}"
        )
        if bad_etda or bad_ubl:
            problems.append(f"{len(bad_etda) + len(bad_ubl)} XML documents fail validation")

    print("OK" if not problems else "PROBLEMS: " + "; ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
