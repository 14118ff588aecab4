"""Pulls keep known invoices current: a payment (or a moved due date) the ERP reports is
written to the invoice, with its history; a pull that finds nothing new changes nothing."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

from courier import jobs
from courier.adapters.source import FileInvoiceSource
from courier.ledger import Ledger


def record(number: str, **extra: object) -> dict:
    return {
        "number": number,
        "issued_at": "2026-11-20T10:00:00+07:00",
        "due_date": "2026-12-20",
        "currency": "THB",
        "vat_rate": "7",
        "payment_status": "unpaid",
        "seller": {"name": "Seller", "address": {"line1": "1 Road", "country": "TH"}},
        "buyer": {
            "name": "บริษัท ทดสอบ จำกัด",
            "phone": "081-234-5678",
            "address": {"line1": "2 Road", "country": "TH"},
        },
        "lines": [{"description": "x", "quantity": "1", "unit_price": "1000.00"}],
        **extra,
    }


def export(path: Path, *records: dict) -> None:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )


def test_a_payment_in_a_later_export_updates_the_invoice_and_keeps_its_history(tmp_path):
    source_path = tmp_path / "invoices.jsonl"
    ledger = Ledger(tmp_path / "ledger.duckdb")
    ledger.migrate()
    services = SimpleNamespace(ledger=ledger, source=FileInvoiceSource(source_path))

    export(source_path, record("INV-1"), record("INV-2"), record("INV-3"))
    first = jobs.pull(services)
    assert (first["new"], first["updated"]) == (3, 0)

    export(
        source_path,
        record("INV-1", payment_status="partial", amount_paid="400.00"),
        record("INV-2", payment_status="paid", amount_paid="1070.00",
               paid_at="2026-12-01T15:00:00+07:00"),
        record("INV-3", due_date="2027-01-05"),
    )  # fmt: skip
    second = jobs.pull(services)
    assert (second["new"], second["updated"], second["paid_since_last_pull"]) == (0, 3, 1)
    assert jobs.pull(services)["updated"] == 0  # the same export again: nothing changed

    with ledger.connect(read_only=True) as con:
        status = con.execute(
            "SELECT invoice_number, payment_status, amount_paid, amount_due, due_date "
            "FROM invoice_status ORDER BY 1"
        ).fetchall()
        changes = con.execute(
            "SELECT invoice_number, field, old_value, new_value, source, changed_by "
            "FROM invoice_changes ORDER BY 1, 2"
        ).fetchall()
        paid_at, record_json = con.execute(
            "SELECT paid_at, record_json FROM invoices WHERE invoice_number = 'INV-2'"
        ).fetchall()[0]
    assert [(n, s, a, d) for n, s, a, d, _ in status] == [
        ("INV-1", "partial", Decimal("400.00"), Decimal("670.00")),
        ("INV-2", "paid", Decimal("1070.00"), Decimal("0.00")),
        ("INV-3", "unpaid", Decimal("0.00"), Decimal("1070.00")),
    ]
    assert str(status[2][4]) == "2027-01-05"
    source = f"file:{source_path.name}"
    assert changes == [
        ("INV-1", "amount_paid", "0.00", "400.00", source, "pull"),
        ("INV-1", "payment_status", "unpaid", "partial", source, "pull"),
        ("INV-2", "amount_paid", "0.00", "1070.00", source, "pull"),
        ("INV-2", "payment_status", "unpaid", "paid", source, "pull"),
        ("INV-3", "due_date", "2026-12-20", "2027-01-05", source, "pull"),
    ]
    assert paid_at.isoformat().startswith("2026-12-01T08:00:00")  # the ERP's paid_at, in UTC
    assert json.loads(record_json)["payment_status"] == "paid"


def test_a_record_with_an_unknown_payment_status_is_rejected_naming_the_field(tmp_path):
    source_path = tmp_path / "invoices.jsonl"
    ledger = Ledger(tmp_path / "ledger.duckdb")
    ledger.migrate()
    export(source_path, record("INV-1"), record("INV-2", payment_status="payed"))
    pulled = jobs.pull(SimpleNamespace(ledger=ledger, source=FileInvoiceSource(source_path)))
    assert (pulled["new"], pulled["rejected"]) == (1, 1)
    with ledger.connect(read_only=True) as con:
        rejects = con.execute("SELECT record_key, field, problem FROM invoice_rejects").fetchall()
    assert rejects[0][:2] == ("INV-2", "payment_status")
    assert "payed" in rejects[0][2]
