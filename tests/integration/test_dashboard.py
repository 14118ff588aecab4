"""The Send to Buyer page renders the ledger's invoice_status (Streamlit AppTest, real DuckDB)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from streamlit.testing.v1 import AppTest

from courier.invoice_io import invoice_to_dict
from courier.ledger import Ledger
from courier.pulling import invoice_rows, parse_records
from courier.sample_data import generate_invoices

APP = str(Path(__file__).resolve().parents[2] / "dashboard/app.py")


def test_the_table_shows_one_row_per_invoice_with_masked_phones(tmp_path, monkeypatch):
    ledger = Ledger(tmp_path / "ledger.duckdb")
    ledger.migrate()
    invoices = generate_invoices(count=25)
    batch = parse_records([invoice_to_dict(i) for i in invoices])
    ledger.insert_invoices(invoice_rows(batch.invoices, "test", datetime.now(UTC)))
    monkeypatch.setenv("COURIER_LEDGER_PATH", str(ledger.path))

    app = AppTest.from_file(APP, default_timeout=30).run()
    assert not app.exception
    table = app.dataframe[0].value
    assert len(table) == 25
    assert set(table["Invoice"]) == {i.number for i in invoices}
    raw_digits = {"".join(c for c in i.buyer_phone_raw if c.isdigit()) for i in invoices}
    shown = " ".join(table["Phone"])
    assert not any(len(d) >= 9 and d in shown for d in raw_digits)
    assert "Invalid telephone number" in set(table["Reason"])
    assert app.metric[0].value == "25"


def test_without_a_ledger_the_page_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("COURIER_LEDGER_PATH", str(tmp_path / "missing.duckdb"))
    app = AppTest.from_file(APP, default_timeout=30).run()
    assert not app.exception
    assert "make demo" in app.info[0].value
