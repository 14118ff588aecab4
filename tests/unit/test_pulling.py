"""Bad source records become rejects naming the record and the field; the rest go through."""

from __future__ import annotations

from courier.pulling import parse_records

GOOD = {
    "number": "TH1-1",
    "issued_at": "2026-11-20T10:00:00+07:00",
    "due_date": "2026-12-20",
    "currency": "THB",
    "vat_rate": "7",
    "seller": {"name": "S", "address": {"line1": "1 Road", "country": "TH"}},
    "buyer": {"name": "B", "phone": "081-234-5678", "address": {"line1": "2", "country": "TH"}},
    "lines": [{"description": "x", "quantity": "2", "unit_price": "10.005"}],
}


def test_good_records_parse_and_bad_ones_are_rejected_with_field_names():
    bad_amount = {
        **GOOD,
        "number": "TH1-2",
        "lines": [{"description": "x", "quantity": "two", "unit_price": "1"}],
    }
    float_money = {
        **GOOD,
        "number": "TH1-3",
        "lines": [{"description": "x", "quantity": "1", "unit_price": 0.1}],
    }
    no_buyer = {**GOOD, "number": "TH1-4", "buyer": None}
    naive_time = {**GOOD, "number": "TH1-5", "issued_at": "2026-11-20T10:00:00"}
    broken_line = {"_error": "line 7: not valid JSON", "_raw": "{", "number": "f:7"}
    batch = parse_records([GOOD, bad_amount, float_money, no_buyer, naive_time, broken_line, GOOD])
    assert [i.number for i in batch.invoices] == ["TH1-1"]
    rejects = {(r["record_key"], r["field"]) for r in batch.rejects}
    assert rejects == {
        ("TH1-2", "lines[1].quantity"),
        ("TH1-3", "lines[1].unit_price"),
        ("TH1-4", "buyer"),
        ("TH1-5", "issued_at"),
        ("f:7", "record"),
        ("TH1-1", "number"),  # the duplicate in the same pull
    }


def test_amounts_stay_exact_decimals():
    invoice = parse_records([GOOD]).invoices[0]
    assert str(invoice.lines[0].net_amount) == "20.01"
    assert str(invoice.vat_amount) == "1.40"
    assert str(invoice.grand_total) == "21.41"


def test_invoice_rows_judge_and_mask_each_buyers_email_address():
    from dataclasses import replace
    from datetime import UTC, datetime

    from courier.pulling import invoice_rows
    from courier.sample_data import generate_invoices

    first, second, third = generate_invoices(count=3)
    invoices = [
        replace(first, buyer=replace(first.buyer, email="Somchai@Siam.CO.TH")),
        replace(second, buyer=replace(second.buyer, email="ask the driver")),
        replace(third, buyer=replace(third.buyer, email="")),
    ]
    frame = invoice_rows(invoices, "test", datetime.now(UTC))
    emails = frame["buyer_email"]
    assert emails.iloc[0] == "Somchai@siam.co.th" and emails.iloc[1:].isna().all()  # NULL
    rows = frame.set_index("invoice_number")
    ok, bad, blank = (rows.loc[i.number] for i in invoices)
    assert (ok.buyer_email, ok.email_status, ok.email_masked) == (
        "Somchai@siam.co.th",
        "ok",
        "S•••@•••.th",
    )
    assert (bad.email_status, bad.email_masked) == ("invalid", "•••")
    assert (blank.email_status, blank.email_reason, blank.email_masked) == (
        "missing",
        "No e-mail address",
        "",
    )
