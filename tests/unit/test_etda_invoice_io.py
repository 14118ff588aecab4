"""The canonical record carries what the e-tax document types need: the referenced document
of a debit/credit note, the purpose code and text, the seller's house number."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from courier.domain import Address, DocumentReference, Invoice, InvoiceLine, Party
from courier.invoice_io import InvoiceRecordError, invoice_from_dict, invoice_to_dict

BANGKOK = timezone(timedelta(hours=7))
SELLER = Party(
    name="Stream I.T. Consulting Ltd.",
    address=Address(
        line1="Q.House Sathorn Bldg.",
        building_number="11",
        postcode="10120",
        country="TH",
        province_code="10",
        district_code="1028",
        subdistrict_code="102803",
    ),
    tax_id="0105541069237",
)
BUYER = Party(
    name="บริษัท ประเทศไทย จำกัด",
    address=Address(line1="15 ถนนนนทรี", postcode="10120", country="TH"),
    tax_id="0105551056901",
)
ORIGINAL = DocumentReference("IV2024110007", date(2024, 11, 24), "388", Decimal("10000.00"))


def make_note(type_code: str = "81", **overrides: Any) -> Invoice:
    values: dict[str, Any] = {
        "number": "CN2024120001",
        "seller": SELLER,
        "buyer": BUYER,
        "buyer_phone_raw": "081-234-5678",
        "issued_at": datetime(2024, 12, 2, 9, 30, tzinfo=BANGKOK),
        "due_date": date(2025, 1, 1),
        "currency": "THB",
        "vat_rate": Decimal("7"),
        "lines": (InvoiceLine(1, "HW-001", "Inkjet Printer", Decimal("2"), Decimal("1234.565")),),
        "type_code": type_code,
        "referenced_document": ORIGINAL,
        "purpose_code": "CDNG99" if type_code == "81" else "DBNS01",
        "purpose": "ส่วนลดพิเศษ",
    }
    values.update(overrides)
    return Invoice(**values)


def record_of(invoice: Invoice) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(invoice_to_dict(invoice), ensure_ascii=False))
    return result


@pytest.mark.parametrize(
    "invoice",
    [
        make_note("81"),
        make_note("80"),
        make_note("81", referenced_document=dataclasses.replace(ORIGINAL, net_amount=None)),
        make_note("T01", referenced_document=None, purpose_code="", purpose=""),
        make_note(
            "T03",
            referenced_document=DocumentReference("IV1", date(2024, 11, 1), "T03"),
            purpose_code="TIVC01",
            purpose="",
        ),
        make_note("T05", referenced_document=None, purpose_code="", purpose=""),
    ],
    ids=["credit", "debit", "credit-no-amount", "receipt", "replacement", "abbreviated"],
)
def test_round_trip(invoice: Invoice) -> None:
    record = record_of(invoice)
    assert invoice_from_dict(record) == invoice
    assert record["seller"]["address"]["building_number"] == "11"


def test_record_shape_of_a_credit_note() -> None:
    record = record_of(make_note("81"))
    assert record["referenced_document"] == {
        "number": "IV2024110007",
        "issue_date": "2024-11-24",
        "type_code": "388",
        "net_amount": "10000.00",
    }
    assert (record["purpose_code"], record["purpose"]) == ("CDNG99", "ส่วนลดพิเศษ")


def test_records_without_the_new_fields_still_read() -> None:
    record = record_of(make_note("388", referenced_document=None, purpose_code="", purpose=""))
    for key in ("referenced_document", "purpose_code", "purpose"):
        del record[key]
    del record["seller"]["address"]["building_number"]
    invoice = invoice_from_dict(record)
    assert invoice.referenced_document is None
    assert (invoice.purpose_code, invoice.purpose) == ("", "")
    assert invoice.seller.address.building_number == ""


@pytest.mark.parametrize("type_code", ["80", "81"])
@pytest.mark.parametrize("missing", [None, {}, ""])
def test_note_without_reference_is_rejected_naming_the_field(type_code: str, missing: Any) -> None:
    record = record_of(make_note(type_code))
    if missing is None:
        del record["referenced_document"]
    else:
        record["referenced_document"] = missing
    with pytest.raises(InvoiceRecordError) as caught:
        invoice_from_dict(record)
    assert caught.value.invoice_number == "CN2024120001"
    assert caught.value.field == "referenced_document"
    assert f"type code {type_code}" in str(caught.value)
    assert "field 'referenced_document'" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"number": ""}, "referenced_document.number"),
        ({"issue_date": "24/11/2024"}, "referenced_document.issue_date"),
        ({"issue_date": None}, "referenced_document.issue_date"),
        ({"net_amount": 10000.0}, "referenced_document.net_amount"),
        ({"net_amount": "ten"}, "referenced_document.net_amount"),
        ({"net_amount": "-1"}, "referenced_document.net_amount"),
    ],
)
def test_bad_reference_names_the_field(change: dict[str, Any], field: str) -> None:
    record = record_of(make_note("81"))
    record["referenced_document"].update(change)
    with pytest.raises(InvoiceRecordError) as caught:
        invoice_from_dict(record)
    assert caught.value.field == field


def test_reference_that_is_not_an_object() -> None:
    record = record_of(make_note("81"))
    record["referenced_document"] = "IV2024110007"
    with pytest.raises(InvoiceRecordError) as caught:
        invoice_from_dict(record)
    assert caught.value.field == "referenced_document"


def test_reference_details_are_normalised() -> None:
    record = record_of(make_note("81"))
    record["referenced_document"].update(
        issue_date="2024-11-24T12:00:00+07:00", type_code="", net_amount=""
    )
    record["purpose_code"] = " cdng99 "
    invoice = invoice_from_dict(record)
    assert invoice.referenced_document == DocumentReference(
        "IV2024110007", date(2024, 11, 24), "388", None
    )
    assert invoice.purpose_code == "CDNG99"


def test_corrected_net_amount() -> None:
    # 2 x 1234.565 = 2469.13 credited or charged on an original of 10000.00
    assert make_note("81").line_total == Decimal("2469.13")
    assert make_note("81").corrected_net_amount == Decimal("7530.87")
    assert make_note("80").corrected_net_amount == Decimal("12469.13")
    no_amount = dataclasses.replace(ORIGINAL, net_amount=None)
    assert make_note("81", referenced_document=no_amount).corrected_net_amount is None
    assert make_note("388").corrected_net_amount is None
    assert make_note("81").is_debit_or_credit_note and not make_note("T01").is_debit_or_credit_note
