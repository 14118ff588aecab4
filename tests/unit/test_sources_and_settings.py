"""File sources (JSON Lines, CSV), settings that fail fast, and a core free of Prefect."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from courier.adapters.source import FileInvoiceSource
from courier.pulling import parse_records
from courier.settings import load_settings

CSV = """number,issued_at,due_date,currency,vat_rate,seller.name,seller.address.line1,\
seller.address.country,buyer.name,buyer.phone,buyer.address.line1,buyer.address.country,\
lines.description,lines.quantity,lines.unit_price
TH1-9,2026-11-20T10:00:00+07:00,2026-12-20,THB,7,Seller,1 Road,TH,บริษัท ก จำกัด,081-234-5678,\
2 Road,TH,Coffee,2,100.00
TH1-9,,,,,,,,,,,,Tea,1,50.50
TH1-10,2026-11-20T11:00:00+07:00,2026-12-20,THB,7,Seller,1 Road,TH,Buyer B,,2 Road,TH,Milk,x,1
"""


def test_csv_rows_group_into_invoices_and_bad_rows_are_named(tmp_path):
    path = tmp_path / "drop.csv"
    path.write_text(CSV, encoding="utf-8")
    batch = parse_records(FileInvoiceSource(path).fetch_records(None))
    assert [i.number for i in batch.invoices] == ["TH1-9"]
    invoice = batch.invoices[0]
    assert [line.description for line in invoice.lines] == ["Coffee", "Tea"]
    assert str(invoice.line_total) == "250.50"
    assert invoice.buyer.name == "บริษัท ก จำกัด"
    assert [(r["record_key"], r["field"]) for r in batch.rejects] == [
        ("TH1-10", "lines[1].quantity")
    ]


def test_a_broken_json_line_is_rejected_and_the_rest_still_read(tmp_path):
    good = {
        "number": "A-1",
        "issued_at": "2026-11-20T10:00:00+07:00",
        "due_date": "2026-12-20",
        "currency": "THB",
        "vat_rate": "7",
        "seller": {"name": "S", "address": {"line1": "1", "country": "TH"}},
        "buyer": {"name": "B", "address": {"line1": "2", "country": "TH"}},
        "lines": [{"description": "x", "quantity": "1", "unit_price": "1"}],
    }
    path = tmp_path / "drop.jsonl"
    path.write_text(json.dumps(good) + "\n{not json\n[1, 2]\n", encoding="utf-8")
    batch = parse_records(FileInvoiceSource(path).fetch_records(None))
    assert [i.number for i in batch.invoices] == ["A-1"]
    assert [r["record_key"] for r in batch.rejects] == ["drop.jsonl:2", "drop.jsonl:3"]


def test_settings_refuse_missing_and_placeholder_secrets(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("COURIER_SMS_ACCOUNT_SID", "COURIER_SMS_AUTH_TOKEN", "COURIER_DOCSTORE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match="COURIER_SMS_AUTH_TOKEN"):
        load_settings()
    monkeypatch.setenv("COURIER_SMS_ACCOUNT_SID", "AC" + "1" * 32)
    monkeypatch.setenv("COURIER_SMS_AUTH_TOKEN", "change-me")
    monkeypatch.setenv("COURIER_DOCSTORE_TOKEN", "a-real-looking-token")
    with pytest.raises(ValidationError, match="placeholder"):
        load_settings()
    monkeypatch.setenv("COURIER_SMS_AUTH_TOKEN", "s3cr3t-value")
    settings = load_settings()
    assert "s3cr3t-value" not in repr(settings)
    assert settings.ledger_path.as_posix() == "data/ledger.duckdb"


def test_the_core_library_imports_neither_prefect_nor_streamlit():
    code = (
        "import sys, pkgutil, importlib, courier\n"
        "for m in pkgutil.walk_packages(courier.__path__, 'courier.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "bad = [n for n in ('prefect', 'streamlit') if n in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_email_is_off_without_a_relay_and_refuses_a_relay_without_its_sender(monkeypatch, tmp_path):
    from courier.wiring import email_transport

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COURIER_SMS_ACCOUNT_SID", "AC" + "1" * 32)
    monkeypatch.setenv("COURIER_SMS_AUTH_TOKEN", "s3cr3t-value")
    monkeypatch.setenv("COURIER_DOCSTORE_TOKEN", "a-real-looking-token")
    for name in ("COURIER_SMTP_HOST", "COURIER_SMTP_USERNAME", "COURIER_EMAIL_FROM"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert not settings.email_enabled and email_transport(settings) is None
    monkeypatch.setenv("COURIER_SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("COURIER_SMTP_USERNAME", "courier")
    monkeypatch.setenv("COURIER_SMTP_PASSWORD", "change-me")
    with pytest.raises(ValidationError) as refused:
        load_settings()
    assert "COURIER_SMTP_PASSWORD" in str(refused.value)
    assert "COURIER_EMAIL_FROM" in str(refused.value)
    monkeypatch.setenv("COURIER_SMTP_PASSWORD", "relay-s3cret")
    monkeypatch.setenv("COURIER_EMAIL_FROM", "Siam Trading <billing@siamtrading.example>")
    settings = load_settings()
    assert settings.email_enabled and email_transport(settings) is not None
    assert "relay-s3cret" not in repr(settings)
