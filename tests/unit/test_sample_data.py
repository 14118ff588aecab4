"""courier.sample_data: the seeded invoice generator."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from courier.domain import VAT_RATE_BY_COUNTRY, Invoice
from courier.invoice_io import invoice_from_dict, invoice_to_dict
from courier.phones import clean_phone
from courier.sample_data import (
    DEFAULT_START,
    INVALID_EXAMPLE_PHONE,
    MOBILE_FORMATS,
    PHONE_FORMATS,
    SELLERS,
    TRICKY_BUYER_NAMES,
    generate_invoices,
    generate_payments,
    is_valid_thai_tax_id,
    make_phone,
    thai_tax_id,
    write_jsonl,
    write_payments_jsonl,
)

THAI_SCRIPT = re.compile(r"[\u0E00-\u0E7F]")
ARABIC_SCRIPT = re.compile(r"[\u0600-\u06FF]")


@pytest.fixture(scope="module")
def invoices() -> list[Invoice]:
    return generate_invoices()


def test_default_is_500(invoices: list[Invoice]) -> None:
    assert len(invoices) == 500
    assert len({i.number for i in invoices}) == 500


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    assert write_jsonl(generate_invoices(), a) == 500
    write_jsonl(generate_invoices(), b)
    write_jsonl(generate_invoices(seed=7), c)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_jsonl_is_one_utf8_object_per_line(tmp_path: Path, invoices: list[Invoice]) -> None:
    path = tmp_path / "sub" / "invoices.jsonl"
    write_jsonl(invoices[:20], path)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) == 20 and text.endswith("\n")
    assert "\\u0e" not in text  # ensure_ascii=False: Thai is written as Thai
    assert THAI_SCRIPT.search(text)
    records = [json.loads(line) for line in lines]
    assert [invoice_from_dict(r) for r in records] == invoices[:20]


def test_round_trip(invoices: list[Invoice]) -> None:
    for invoice in invoices:
        assert invoice_from_dict(invoice_to_dict(invoice)) == invoice
        assert invoice_from_dict(json.loads(json.dumps(invoice_to_dict(invoice)))) == invoice


def test_money_is_decimal(invoices: list[Invoice]) -> None:
    for invoice in invoices:
        assert isinstance(invoice.grand_total, Decimal)
        assert isinstance(invoice.vat_amount, Decimal)
        assert invoice.grand_total == invoice.line_total + invoice.vat_amount
        assert invoice.grand_total > 0
        assert 1 <= len(invoice.lines) <= 6
        for line in invoice.lines:
            assert isinstance(line.quantity, Decimal) and isinstance(line.unit_price, Decimal)
            assert line.quantity.as_tuple().exponent == -2
            assert line.unit_price.as_tuple().exponent == -2
            assert line.quantity > 0 and line.unit_price > 0


def test_vat_currency_and_dates_by_seller(invoices: list[Invoice]) -> None:
    currency = {"TH": "THB", "SA": "SAR", "EG": "EGP"}
    offset = {"TH": 7, "SA": 3, "EG": 2}
    for invoice in invoices:
        country = invoice.seller.country
        assert invoice.vat_rate == VAT_RATE_BY_COUNTRY[country]
        assert invoice.currency == currency[country]
        assert invoice.issued_at.utcoffset() == timedelta(hours=offset[country])
        assert DEFAULT_START - timedelta(days=4) <= invoice.issued_at < DEFAULT_START
        assert invoice.due_date == invoice.issued_at.date() + timedelta(days=30)
        assert re.fullmatch(r"(TH1|TH2|SA1|EG1)-2026-\d{6}", invoice.number)
        assert invoice.number.startswith(
            next(s.prefix for s in SELLERS if s.party == invoice.seller)
        )


def test_numbers_run_in_issue_order(invoices: list[Invoice]) -> None:
    assert [i.issued_at for i in invoices] == sorted(i.issued_at for i in invoices)
    for prefix in ("TH1", "TH2", "SA1", "EG1"):
        numbers = [int(i.number[-6:]) for i in invoices if i.number.startswith(prefix)]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def test_mix_of_sellers_buyers_and_status(invoices: list[Invoice]) -> None:
    sellers = Counter(i.seller.country for i in invoices)
    assert sellers["TH"] > 0.6 * len(invoices) and sellers["SA"] > 0 and sellers["EG"] > 0
    buyers = Counter(i.buyer.country for i in invoices)
    assert buyers["TH"] > 0.6 * len(invoices) and buyers["SA"] > 0 and buyers["EG"] > 0
    status = Counter(i.payment_status for i in invoices)
    assert status["unpaid"] > 0.7 * len(invoices)
    for invoice in invoices:
        script = THAI_SCRIPT if invoice.buyer.country == "TH" else ARABIC_SCRIPT
        if invoice.buyer.name not in TRICKY_BUYER_NAMES:
            assert script.search(invoice.buyer.name), invoice.buyer.name
    thai_names = [i.buyer.name for i in invoices if i.buyer.country == "TH"]
    assert any(n.startswith("บริษัท ") and n.endswith("จำกัด") for n in thai_names)
    assert any(n.startswith("คุณ") for n in thai_names)
    assert set(TRICKY_BUYER_NAMES) <= {i.buyer.name for i in invoices}


def test_sellers_and_thai_codes(invoices: list[Invoice]) -> None:
    countries = Counter(s.party.country for s in SELLERS)
    assert countries == {"TH": 2, "SA": 1, "EG": 1}
    for invoice in invoices:
        for party in (invoice.seller, invoice.buyer):
            address = party.address
            if address.country == "TH":
                assert re.fullmatch(r"\d{2}", address.province_code)
                assert address.district_code.startswith(address.province_code)
                assert address.subdistrict_code.startswith(address.district_code)
                assert len(address.district_code) == 4 and len(address.subdistrict_code) == 6
                assert re.fullmatch(r"\d{5}", address.postcode)
            else:
                assert address.province_code == address.district_code == ""


def test_tax_ids(invoices: list[Invoice]) -> None:
    # published tax ids of two listed companies check out
    assert thai_tax_id("010754400010") == "0107544000108"
    assert is_valid_thai_tax_id("0107536000102") and not is_valid_thai_tax_id("0107536000103")
    schemes = Counter(i.buyer.tax_id_scheme for i in invoices)
    assert {"TXID", "NIDN", "OTHR"} <= set(schemes)
    for invoice in invoices:
        for party in (invoice.seller, invoice.buyer):
            if party.tax_id_scheme == "OTHR":
                assert party.tax_id == ""
            elif party.country == "TH":
                assert is_valid_thai_tax_id(party.tax_id), party
                assert party.tax_id.startswith("0") == (party.tax_id_scheme == "TXID")
            elif party.country == "SA":
                assert re.fullmatch(r"3\d{13}3", party.tax_id)
            else:
                assert re.fullmatch(r"\d{9}", party.tax_id)


PHONE_SHAPES = {
    "dashed": r"0\d{2}-\d{3}-\d{4}",
    "intl_spaced": r"\+66 \d{2} \d{3} \d{4}",
    "cc_no_plus": r"66\d{9}",
    "double_zero": r"0066\d{9}",
    "parens": r"\(0\d{2}\) \d{3} \d{4}",
    "landline": r"02-\d{3}-\d{4}",
    "blank": r"\s*|-|n/a|N/A",
    "two_numbers": r".*\d.*[,/].*\d.*",
    "letters": r".*[^\W\d_].*",
    "example": re.escape(INVALID_EXAMPLE_PHONE),
    "saudi_local": r"05\d{8}",
    "saudi_intl": r"\+9665\d{8}",
    "egypt_local": r"01\d{9}",
    "egypt_intl": r"\+201\d{9}",
}


def test_all_phone_formats_present(invoices: list[Invoice]) -> None:
    raws = [i.buyer_phone_raw for i in invoices]
    for shape, pattern in PHONE_SHAPES.items():
        assert any(re.fullmatch(pattern, raw) for raw in raws), shape
    assert any(re.fullmatch(r"66\d{9}", r) and r != INVALID_EXAMPLE_PHONE for r in raws)


def test_phone_outcomes_are_realistic(invoices: list[Invoice]) -> None:
    outcomes = Counter(clean_phone(i.buyer_phone_raw, i.buyer.country).status for i in invoices)
    assert set(outcomes) == {"ok", "missing", "invalid", "not_mobile"}
    assert outcomes["ok"] > 0.75 * len(invoices)
    example = [i for i in invoices if i.buyer_phone_raw == INVALID_EXAMPLE_PHONE]
    assert example and all(
        clean_phone(i.buyer_phone_raw, "TH").status == "invalid" for i in example
    )


@pytest.mark.parametrize("country", ["TH", "SA", "EG"])
def test_good_formats_are_valid_mobiles(country: str) -> None:
    import random

    rng = random.Random(1)
    for fmt, _ in PHONE_FORMATS[country]:
        if fmt in MOBILE_FORMATS:
            for _ in range(200):
                raw = make_phone(rng, fmt)
                result = clean_phone(raw, country)
                assert result.status == "ok", (fmt, raw, result)
                assert result.e164 is not None and result.e164.startswith(
                    {"TH": "+66", "SA": "+966", "EG": "+20"}[country]
                )


def test_repeat_buyer_same_name_and_phone(invoices: list[Invoice]) -> None:
    by_name: dict[str, set[tuple[str, str]]] = {}
    for invoice in invoices:
        by_name.setdefault(invoice.buyer.name, set()).add(
            (invoice.buyer.tax_id, invoice.buyer_phone_raw)
        )
    counts = Counter(i.buyer.name for i in invoices)
    assert counts["บริษัท ศรีสยาม ค้าวัสดุ จำกัด"] >= 3
    assert by_name["บริษัท ศรีสยาม ค้าวัสดุ จำกัด"] == {
        (next(iter(by_name["บริษัท ศรีสยาม ค้าวัสดุ จำกัด"]))[0], "081-234-5678")
    }
    # a name always means the same buyer
    assert all(len(v) == 1 for v in by_name.values())


def test_count_seed_and_start() -> None:
    assert generate_invoices(0) == []
    small = generate_invoices(40, seed=3)
    assert len(small) == 40
    assert generate_invoices(40, seed=3) == small
    start = datetime(2027, 1, 2, 3, 0, tzinfo=UTC)
    moved = generate_invoices(30, start=start)
    assert all(start - timedelta(days=4) <= i.issued_at < start for i in moved)
    # straddling new year: numbering restarts per year
    assert {i.number.split("-")[1] for i in moved} <= {"2026", "2027"}
    naive = generate_invoices(5, start=datetime(2026, 11, 21, 2, 0))
    assert naive == generate_invoices(5)


# -- payments ---------------------------------------------------------------------------

#: SHA-256 of the default 500 invoices' records without the payment fields, as the
#: generator wrote them before payments existed: the payments' own random streams must
#: not shift anything else.
RECORDS_WITHOUT_PAYMENTS_SHA256 = "276e5615509e883249790ea6d454cc874c4a668684fae2c09113b0366aa353b8"
AS_OF = datetime(2026, 12, 29, 9, 0, tzinfo=DEFAULT_START.tzinfo)


@pytest.fixture(scope="module")
def payments(invoices: list[Invoice]) -> list[dict[str, str]]:
    return generate_payments(invoices)


def test_payment_fields_leave_every_other_field_as_it_was(invoices: list[Invoice]) -> None:
    digest = hashlib.sha256()
    for invoice in invoices:
        record = invoice_to_dict(invoice)
        record.pop("amount_paid", None)
        record.pop("paid_at", None)
        digest.update((json.dumps(record, ensure_ascii=False) + "\n").encode())
    assert digest.hexdigest() == RECORDS_WITHOUT_PAYMENTS_SHA256


def test_paid_at_issue(invoices: list[Invoice]) -> None:
    status = Counter(i.payment_status for i in invoices)
    assert status["partial"] > 0 and status["paid"] > 0
    for invoice in invoices:
        if invoice.payment_status == "paid":
            assert invoice.amount_paid == invoice.grand_total
            assert invoice.paid_at == invoice.issued_at
            assert invoice.amount_due == 0
        elif invoice.payment_status == "partial":
            share = invoice.amount_paid / invoice.grand_total
            assert Decimal("0.299") < share < Decimal("0.701"), invoice.number
            assert invoice.amount_paid.as_tuple().exponent == -2
            assert invoice.paid_at is None
            assert invoice.amount_due == invoice.grand_total - invoice.amount_paid
        else:
            assert invoice.amount_paid == 0 and invoice.paid_at is None


def test_payments_are_deterministic_and_sorted(
    invoices: list[Invoice], payments: list[dict[str, str]]
) -> None:
    assert generate_payments(generate_invoices()) == payments
    assert generate_payments(invoices, seed=7) != payments
    keys = [(datetime.fromisoformat(e["paid_at"]), e["number"]) for e in payments]
    assert keys == sorted(keys)
    # an invoice's events do not depend on which other invoices are passed
    some = {i.number for i in invoices[:60]}
    assert generate_payments(invoices[:60]) == [e for e in payments if e["number"] in some]
    assert all(set(e) == {"number", "paid_at", "amount_paid", "payment_status"} for e in payments)


def test_payment_amounts_are_cumulative_and_exact(
    invoices: list[Invoice], payments: list[dict[str, str]]
) -> None:
    by_number = {i.number: i for i in invoices}
    history: dict[str, list[dict[str, str]]] = defaultdict(list)
    for event in payments:
        history[event["number"]].append(event)
    for number, events in history.items():
        invoice = by_number[number]
        assert invoice.payment_status in ("unpaid", "partial")  # paid at issue: no event
        previous = invoice.amount_paid
        for event in events:
            amount = Decimal(event["amount_paid"])
            assert re.fullmatch(r"\d+\.\d{2}", event["amount_paid"])
            assert previous < amount <= invoice.grand_total
            previous = amount
            if event["payment_status"] == "paid":
                assert amount == invoice.grand_total  # exactly, to the cent
            else:
                assert event["payment_status"] == "partial" and amount < invoice.grand_total
        assert [e["payment_status"] for e in events[:-1]] == ["partial"] * (len(events) - 1)


def test_payments_happen_in_business_hours_in_the_sellers_offset(
    invoices: list[Invoice], payments: list[dict[str, str]]
) -> None:
    by_number = {i.number: i for i in invoices}
    for event in payments:
        invoice = by_number[event["number"]]
        moment = datetime.fromisoformat(event["paid_at"])
        assert moment.utcoffset() == invoice.issued_at.utcoffset()
        assert 9 <= moment.hour < 17
        assert invoice.issued_at.date() + timedelta(days=2) <= moment.date()
        assert moment.date() <= invoice.due_date + timedelta(days=30)


def test_payment_mix_and_every_state_by_the_reminders_run(
    invoices: list[Invoice], payments: list[dict[str, str]]
) -> None:
    unpaid = {i.number: i for i in invoices if i.payment_status == "unpaid"}
    history: dict[str, list[dict[str, str]]] = defaultdict(list)
    for event in payments:
        history[event["number"]].append(event)
    habits: Counter[str] = Counter()
    for number, invoice in unpaid.items():
        events = history.get(number, [])
        if len(events) == 1 and events[0]["payment_status"] == "paid":
            habits["on time" if _day(events[0]) < invoice.due_date else "late"] += 1
        else:
            habits["part first" if events else "never"] += 1
    shares = {habit: count / len(unpaid) for habit, count in habits.items()}
    assert 0.2 < shares["on time"] < 0.4 and 0.08 < shares["late"] < 0.25
    assert 0.04 < shares["part first"] < 0.18 and 0.35 < shares["never"] < 0.55

    # As of the demo's reminders run: what each invoice's latest event so far says.
    states: Counter[str] = Counter()
    for invoice in invoices:
        so_far = [e for e in history.get(invoice.number, []) if _instant(e) <= AS_OF]
        if not so_far:
            states[invoice.payment_status] += 1
        elif so_far[-1]["payment_status"] == "partial":
            states["partial"] += 1
        else:
            late = _day(so_far[-1]) > invoice.due_date
            states["paid late" if late else "paid before due"] += 1
    for wanted in ("paid before due", "paid late", "partial", "unpaid"):
        assert states[wanted] >= 10, states
    assert any(_instant(e) > AS_OF for e in payments)  # and more is still to come


def _instant(event: dict[str, str]) -> datetime:
    return datetime.fromisoformat(event["paid_at"])


def _day(event: dict[str, str]) -> date:  # the seller's calendar day of a payment
    return _instant(event).date()


def test_write_payments_jsonl(tmp_path: Path, payments: list[dict[str, str]]) -> None:
    path = tmp_path / "sub" / "payments.jsonl"
    assert write_payments_jsonl(payments, path) == len(payments)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and len(text.splitlines()) == len(payments)
    assert [json.loads(line) for line in text.splitlines()] == payments
    write_payments_jsonl(generate_payments(generate_invoices()), tmp_path / "again.jsonl")
    assert (tmp_path / "again.jsonl").read_bytes() == path.read_bytes()
