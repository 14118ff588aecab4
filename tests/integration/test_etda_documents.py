"""Every ETDA document type (tax invoice, receipt, debit/credit note, abbreviated tax invoice)
against ETDA's own XSD + Schematron for that type.

The validator picks the schema pair by root element; it is first shown to fail on a broken
document of each type (otherwise "zero problems" would prove nothing), then documents of every
type code, with buyers of every kind, must validate with zero problems, carry the exact Thai
document name and the domain's totals to the satang.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree

from courier.documents.etda_xml import (
    DOCUMENT_NAMES,
    DOCUMENT_TYPES,
    PURPOSE_CODES,
    EtdaDataError,
    EtdaNotApplicableError,
    build_etda_xml,
    build_tax_invoice_xml,
    is_etda_applicable,
)
from courier.domain import (
    ABBREVIATED_TAX_INVOICE_TYPE_CODES,
    NOTE_TYPE_CODES,
    RECEIPT_TYPE_CODE,
    TAX_INVOICE_TYPE_CODES,
    Address,
    DocumentReference,
    Invoice,
    InvoiceLine,
    Party,
)
from tests.support.etda_validation import SAMPLES_DIR, safe_parser, validate_etda

BANGKOK = timezone(timedelta(hours=7))

#: The exact names ETDA's Schematron gives per type code (TIV/RCT/DCN/ABB-Document-001).
EXPECTED_NAMES = {
    "388": "ใบกำกับภาษี",
    "T02": "ใบแจ้งหนี้/ใบกำกับภาษี",
    "T03": "ใบเสร็จรับเงิน/ใบกำกับภาษี",
    "T04": "ใบส่งของ/ใบกำกับภาษี",
    "T01": "ใบรับ (ใบเสร็จรับเงิน)",
    "80": "ใบเพิ่มหนี้",
    "81": "ใบลดหนี้",
    "T05": "ใบกำกับภาษีอย่างย่อ",
    "T06": "ใบเสร็จรับเงิน/ใบกำกับภาษีอย่างย่อ",
}
EXPECTED_ROOTS = {
    "388": "TaxInvoice",
    "T02": "TaxInvoice",
    "T03": "TaxInvoice",
    "T04": "TaxInvoice",
    "T01": "Receipt",
    "80": "DebitCreditNote",
    "81": "DebitCreditNote",
    "T05": "AbbreviatedTaxInvoice",
    "T06": "AbbreviatedTaxInvoice",
}

# --- a small factory -------------------------------------------------------------------------

SELLER = Party(
    name="Stream I.T. Consulting Ltd.",
    address=Address(
        line1="Q.House Sathorn Bldg. 7th floor, South Sathorn Rd.",
        building_number="11",  # the explicit field: line1 does not start with the number
        line2="Tungmahamek, Sathorn",
        city="Sathorn",
        province="Bangkok",
        postcode="10120",
        country="TH",
        province_code="10",
        district_code="1028",
        subdistrict_code="102803",
    ),
    tax_id="0105541069237",
    branch="00000",
    email="billing@stream.example",
)
BUYERS = {
    "thai-txid": Party(
        name="บริษัท ประเทศไทย จำกัด",
        address=Address(line1="15 ถนนนนทรี", city="ยานนาวา", postcode="10120", country="TH"),
        tax_id="0105551056901",
        branch="3",
        email="ap@thai-buyer.example",
    ),
    "thai-nidn": Party(
        name="สมชาย ใจดี",
        address=Address(
            line1="99/123 ถนนช้างคลาน",
            postcode="50100",
            country="TH",
            province_code="50",
            district_code="5001",
            subdistrict_code="500101",
        ),
        tax_id="1-5099-00123-45-6",
        tax_id_scheme="NIDN",
    ),
    "thai-no-id": Party(
        name="ร้านค้า ไม่มีเลข",
        address=Address(line1="7 ซอยสุขุมวิท 11", postcode="10110", country="TH"),
    ),
    "foreign": Party(
        name="شركة الرياض للتجارة",
        address=Address(line1="King Fahd Road 1234", city="Riyadh", postcode="12271", country="SA"),
        tax_id="300012345600003",
        email="finance@riyadh-trading.example",
    ),
}
ORIGINAL = DocumentReference(
    number="IV2024110007",
    issue_date=date(2024, 11, 24),
    type_code="388",
    net_amount=Decimal("10000.00"),
)


def line(line_id: int = 1, quantity: str = "1", unit_price: str = "2000", **kw: Any) -> InvoiceLine:
    values: dict[str, Any] = {"product_id": f"HW-{line_id:03d}", "description": "Inkjet Printer"}
    values.update(kw)
    return InvoiceLine(
        line_id=line_id, quantity=Decimal(quantity), unit_price=Decimal(unit_price), **values
    )


MULTI_LINES = (
    line(1, "3", "33.335", description="Toner ผงหมึก"),
    line(2, "0.5", "0.125", unit_code="KGM", description="Paper"),
    line(3, "7", "19.99", description="Cable"),
    line(4, "2", "1234.565", description="Service hours"),
)


def make_document(type_code: str, **overrides: Any) -> Invoice:
    values: dict[str, Any] = {
        "number": f"DOC-{type_code}-0001",
        "seller": SELLER,
        "buyer": BUYERS["thai-txid"],
        "buyer_phone_raw": "081-234-5678",
        "issued_at": datetime(2024, 12, 2, 9, 30, tzinfo=BANGKOK),
        "due_date": date(2025, 1, 1),
        "currency": "THB",
        "vat_rate": Decimal("7"),
        "lines": (line(),),
        "type_code": type_code,
    }
    if type_code == "81":
        values.update(purpose_code="CDNG02", referenced_document=ORIGINAL)
    elif type_code == "80":
        values.update(purpose_code="DBNG01", referenced_document=ORIGINAL)
    values.update(overrides)
    return Invoice(**values)


def parse(xml: bytes) -> Any:
    return etree.fromstring(xml, safe_parser())


def ns(type_code: str) -> dict[str, str]:
    kind = DOCUMENT_TYPES[type_code]
    return {"rsm": kind.rsm_ns, "ram": kind.ram_ns}


def amount(root: Any, path: str, type_code: str) -> Decimal:
    text = root.findtext(path, namespaces=ns(type_code))
    assert text is not None, path
    return Decimal(text)


HEADER = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
SUMMATION = f"{HEADER}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
AGREEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
ALL_TYPE_CODES = list(EXPECTED_NAMES)

# --- the validator picks the right schema and can fail for every type ------------------------


def test_every_supported_type_code_has_its_schema_and_name() -> None:
    assert DOCUMENT_NAMES == EXPECTED_NAMES
    assert {code: kind.schema for code, kind in DOCUMENT_TYPES.items()} == EXPECTED_ROOTS
    domain_codes = TAX_INVOICE_TYPE_CODES | NOTE_TYPE_CODES | ABBREVIATED_TAX_INVOICE_TYPE_CODES
    assert set(DOCUMENT_TYPES) == domain_codes | {RECEIPT_TYPE_CODE}


def _break(xml: bytes, type_code: str, mutate: Any) -> bytes:
    root = parse(xml)
    mutate(root, ns(type_code))
    result: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return result


def _set(path: str, value: str) -> Any:
    def mutate(root: Any, namespaces: dict[str, str]) -> None:
        root.find(path, namespaces).text = value

    return mutate


def _remove(path: str) -> Any:
    def mutate(root: Any, namespaces: dict[str, str]) -> None:
        element = root.find(path, namespaces)
        element.getparent().remove(element)

    return mutate


SELLER_PATH = f"{AGREEMENT}/ram:SellerTradeParty"
BROKEN = {
    # (type code, mutation, rule id expected in the problems; None: an XSD error)
    "tax-invoice-type-code": (
        "388",
        _set("rsm:ExchangedDocument/ram:TypeCode", "T01"),
        "TIV-Document-001",
    ),
    "tax-invoice-seller-abroad": (
        "T02",
        _set(f"{SELLER_PATH}/ram:PostalTradeAddress/ram:CountryID", "SA"),
        "TIV-SellerTradeParty-008",
    ),
    "receipt-type-code": (
        "T01",
        _set("rsm:ExchangedDocument/ram:TypeCode", "388"),
        "RCT-Document-001",
    ),
    "receipt-seller-no-house-number": (
        "T01",
        _remove(f"{SELLER_PATH}/ram:PostalTradeAddress/ram:BuildingNumber"),
        "RCT-SellerTradeParty-009",
    ),
    "credit-note-without-purpose-code": (
        "81",
        _remove("rsm:ExchangedDocument/ram:PurposeCode"),
        "DCN-Document-004",
    ),
    "credit-note-with-debit-purpose": (
        "81",
        _set("rsm:ExchangedDocument/ram:PurposeCode", "DBNG01"),
        "DCN-Document-006",
    ),
    "debit-note-with-credit-purpose": (
        "80",
        _set("rsm:ExchangedDocument/ram:PurposeCode", "CDNG01"),
        "DCN-Document-005",
    ),
    "debit-note-referencing-a-receipt": (
        "80",
        _set(f"{AGREEMENT}/ram:AdditionalReferencedDocument/ram:ReferenceTypeCode", "T01"),
        "DCN-AdditionalReferencedDocument-001",
    ),
    "credit-note-without-reference": (
        "81",
        _remove(f"{AGREEMENT}/ram:AdditionalReferencedDocument"),
        "DCN-AdditionalReferencedDocument-001",
    ),
    "abbreviated-seller-without-id": (
        "T05",
        _remove(f"{SELLER_PATH}/ram:ID"),
        "ABB-SellerTradeParty-001",
    ),
    "abbreviated-type-code": (
        "T06",
        _set("rsm:ExchangedDocument/ram:TypeCode", "388"),
        "ABB-Document-001",
    ),
    "abbreviated-product-without-name": (
        "T05",
        _remove(
            "rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem"
            "/ram:SpecifiedTradeProduct/ram:Name"
        ),
        None,
    ),
    "credit-note-without-original-amount": (
        "81",
        _remove(f"{SUMMATION}/ram:OriginalInformationAmount"),
        None,
    ),
    "receipt-negative-amount": ("T01", _set(f"{SUMMATION}/ram:GrandTotalAmount", "-1.00"), None),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_document_of_each_type_is_invalid(name: str) -> None:
    type_code, mutate, rule = BROKEN[name]
    xml = build_etda_xml(make_document(type_code))
    assert validate_etda(xml) == []
    problems = validate_etda(_break(xml, type_code, mutate))
    assert problems
    if rule is None:
        assert any(problem.startswith("XSD") for problem in problems), problems
    else:
        assert any(rule in problem for problem in problems), problems


def test_validator_uses_the_schema_of_the_root_element() -> None:
    receipt = build_etda_xml(make_document("T01"))
    # The same content under the tax invoice's root and namespaces is judged by that schema.
    as_tax_invoice = receipt.replace(b"Receipt_", b"TaxInvoice_")
    problems = validate_etda(as_tax_invoice)
    assert any("TIV-Document-001" in problem for problem in problems), problems
    assert validate_etda(b"<Invoice/>")[0].startswith("not an ETDA document")


def test_etda_credit_note_sample_fails_only_on_its_known_defect() -> None:
    sample = (SAMPLES_DIR / "CDN_CN2017110001_Sample.xml").read_bytes()
    problems = validate_etda(sample)
    assert len(problems) == 1
    assert "GuidelineSpecifiedDocumentContextParameter" in problems[0]
    fixed = sample.replace(
        b"<ram:GuidelineSpecifiedDocumentContextParameter/>",
        b"<ram:GuidelineSpecifiedDocumentContextParameter>"
        b'<ram:ID schemeAgencyID="ETDA" schemeVersionID="v2.0">ER3-2560</ram:ID>'
        b"</ram:GuidelineSpecifiedDocumentContextParameter>",
    )
    assert validate_etda(fixed) == []


# --- documents of every type validate --------------------------------------------------------

VARIANTS: dict[str, dict[str, Any]] = {
    **{f"buyer-{name}": {"buyer": buyer} for name, buyer in BUYERS.items()},
    "multi-line": {"lines": MULTI_LINES},
    "foreign-buyer-in-usd": {"buyer": BUYERS["foreign"], "currency": "USD"},
}
CASES = [(code, variant) for code in ALL_TYPE_CODES for variant in VARIANTS]


@pytest.mark.parametrize(("type_code", "variant"), CASES)
def test_every_type_and_buyer_validates(type_code: str, variant: str) -> None:
    invoice = make_document(type_code, **VARIANTS[variant])
    xml = build_etda_xml(invoice, buyer_phone_etda="+66-812345678")
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert validate_etda(xml) == []
    assert validate_etda(build_etda_xml(invoice)) == []  # and without a phone
    root = parse(xml)
    kind = DOCUMENT_TYPES[type_code]
    assert root.tag == f"{{{kind.rsm_ns}}}{EXPECTED_ROOTS[type_code]}_CrossIndustryInvoice"
    namespaces = ns(type_code)
    assert (
        root.findtext("rsm:ExchangedDocument/ram:Name", namespaces=namespaces)
        == (EXPECTED_NAMES[type_code])
    )
    assert root.findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=namespaces) == type_code


NOTE_VARIANTS: dict[str, dict[str, Any]] = {
    "credit-other-reason": {
        "type_code": "81",
        "purpose_code": "CDNS99",
        "purpose": "ลดค่าบริการตามข้อตกลง",
    },
    "credit-whole-original": {
        "type_code": "81",
        "referenced_document": dataclasses.replace(ORIGINAL, net_amount=Decimal("2000.00")),
        "purpose_code": "CDNG05",
    },
    "credit-on-a-t02-invoice": {
        "type_code": "81",
        "referenced_document": dataclasses.replace(ORIGINAL, type_code="T02"),
    },
    "credit-on-a-debit-note": {
        "type_code": "81",
        "referenced_document": dataclasses.replace(ORIGINAL, type_code="80"),
    },
    "debit-other-reason": {
        "type_code": "80",
        "purpose_code": "DBNG99",
        "purpose": "ค่าขนส่งเพิ่มเติม",
        "lines": MULTI_LINES,
    },
    "replacement-tax-invoice": {
        "type_code": "T03",
        "purpose_code": "TIVC02",
        "referenced_document": DocumentReference("IV2024110001", date(2024, 11, 1), "T03"),
    },
    "replacement-tax-invoice-other-reason": {
        "type_code": "388",
        "purpose_code": "TIVC99",
        "purpose": "ชื่อผู้ซื้อผิด",
        "referenced_document": DocumentReference("IV2024110001", date(2024, 11, 1), "388"),
    },
    "replacement-receipt": {
        "type_code": "T01",
        "purpose_code": "RCTC99",
        "purpose": "ยอดเงินผิด",
        "referenced_document": DocumentReference("RC2024110001", date(2024, 11, 1), "T01"),
    },
}


@pytest.mark.parametrize("variant", list(NOTE_VARIANTS))
def test_notes_and_replacements_validate(variant: str) -> None:
    overrides = dict(NOTE_VARIANTS[variant])
    type_code = overrides.pop("type_code")
    invoice = make_document(type_code, **overrides)
    xml = build_etda_xml(invoice, buyer_phone_etda="+66-812345678")
    assert validate_etda(xml) == []
    root = parse(xml)
    namespaces = ns(type_code)
    document = root.find("rsm:ExchangedDocument", namespaces)
    assert document.findtext("ram:PurposeCode", namespaces=namespaces) == invoice.purpose_code
    assert (document.findtext("ram:Purpose", namespaces=namespaces) or "") == invoice.purpose
    reference = root.find(f"{AGREEMENT}/ram:AdditionalReferencedDocument", namespaces)
    expected = invoice.referenced_document
    assert expected is not None
    assert reference.findtext("ram:IssuerAssignedID", namespaces=namespaces) == expected.number
    assert reference.findtext("ram:IssueDateTime", namespaces=namespaces) == (
        f"{expected.issue_date.isoformat()}T00:00:00"
    )
    assert reference.findtext("ram:ReferenceTypeCode", namespaces=namespaces) == expected.type_code


# --- totals ----------------------------------------------------------------------------------


def _check_lines_and_tax(root: Any, invoice: Invoice) -> None:
    code = invoice.type_code
    namespaces = ns(code)
    tax = f"{HEADER}/ram:ApplicableTradeTax"
    assert amount(root, f"{tax}/ram:BasisAmount", code) == invoice.line_total
    assert amount(root, f"{tax}/ram:CalculatedAmount", code) == invoice.vat_amount
    assert amount(root, f"{tax}/ram:CalculatedRate", code) == invoice.vat_rate
    items = root.findall(
        "rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem", namespaces
    )
    assert len(items) == len(invoice.lines)
    summation = "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation"
    nets = []
    for item, domain_line in zip(items, invoice.lines, strict=True):
        net = amount(item, f"{summation}/ram:NetLineTotalAmount", code)
        vat = amount(item, f"{summation}/ram:TaxTotalAmount", code)
        assert net == domain_line.net_amount
        assert vat == invoice.line_vat_amount(domain_line)
        assert amount(item, f"{summation}/ram:NetIncludingTaxesLineTotalAmount", code) == net + vat
        nets.append(net)
    assert sum(nets) == invoice.line_total
    ram = DOCUMENT_TYPES[code].ram_ns
    for element in root.iter(f"{{{ram}}}*"):
        if element.tag.endswith("Amount") and element.tag != f"{{{ram}}}ChargeAmount":
            assert re.fullmatch(r"[0-9]+\.[0-9]{2}", element.text), (element.tag, element.text)
            assert element.get("currencyID") == invoice.currency


@pytest.mark.parametrize("type_code", [c for c in ALL_TYPE_CODES if c not in ("80", "81")])
def test_totals_match_the_domain_to_the_satang(type_code: str) -> None:
    invoice = make_document(type_code, lines=MULTI_LINES)
    root = parse(build_etda_xml(invoice))
    assert amount(root, f"{SUMMATION}/ram:LineTotalAmount", type_code) == invoice.line_total
    assert amount(root, f"{SUMMATION}/ram:TaxBasisTotalAmount", type_code) == invoice.line_total
    assert amount(root, f"{SUMMATION}/ram:TaxTotalAmount", type_code) == invoice.vat_amount
    assert amount(root, f"{SUMMATION}/ram:GrandTotalAmount", type_code) == invoice.grand_total
    assert invoice.grand_total == invoice.line_total + invoice.vat_amount
    _check_lines_and_tax(root, invoice)


@pytest.mark.parametrize("type_code", ["80", "81"])
def test_note_amounts_are_original_corrected_and_difference(type_code: str) -> None:
    invoice = make_document(type_code, lines=MULTI_LINES)
    root = parse(build_etda_xml(invoice))
    original = amount(root, f"{SUMMATION}/ram:OriginalInformationAmount", type_code)
    corrected = amount(root, f"{SUMMATION}/ram:LineTotalAmount", type_code)
    difference = amount(root, f"{SUMMATION}/ram:DifferenceInformationAmount", type_code)
    tax = amount(root, f"{SUMMATION}/ram:TaxTotalAmount", type_code)
    grand = amount(root, f"{SUMMATION}/ram:GrandTotalAmount", type_code)
    assert original == ORIGINAL.net_amount == Decimal("10000.00")
    # The note's lines are the difference: 100.01 + 0.06 + 139.93 + 2469.13 = 2709.13
    assert difference == invoice.line_total == Decimal("2709.13")
    assert corrected == invoice.corrected_net_amount
    if type_code == "81":
        assert corrected == Decimal("7290.87") == original - difference
    else:
        assert corrected == Decimal("12709.13") == original + difference
    assert abs(original - corrected) == difference
    assert amount(root, f"{SUMMATION}/ram:TaxBasisTotalAmount", type_code) == difference
    assert tax == invoice.vat_amount == Decimal("189.64")  # 7 % of 2709.13 = 189.6391
    assert grand == invoice.grand_total == difference + tax == Decimal("2898.77")
    _check_lines_and_tax(root, invoice)


# --- per-type specifics ----------------------------------------------------------------------


@pytest.mark.parametrize("type_code", ["T05", "T06"])
def test_abbreviated_tax_invoice_has_no_buyer_and_a_seller_id(type_code: str) -> None:
    invoice = make_document(type_code, buyer=BUYERS["thai-nidn"])
    xml = build_etda_xml(invoice, buyer_phone_etda="+66-812345678")
    root = parse(xml)
    namespaces = ns(type_code)
    assert root.find(f"{AGREEMENT}/ram:BuyerTradeParty", namespaces) is None
    assert b"+66-812345678" not in xml and "สมชาย".encode() not in xml
    assert root.findtext(f"{SELLER_PATH}/ram:ID", namespaces=namespaces) == "010554106923700000"


def test_seller_building_number_field_wins_over_line1() -> None:
    root = parse(build_etda_xml(make_document("T01")))
    house = f"{SELLER_PATH}/ram:PostalTradeAddress/ram:BuildingNumber"
    assert root.findtext(house, namespaces=ns("T01")) == "11"
    seller = dataclasses.replace(
        SELLER, address=dataclasses.replace(SELLER.address, building_number="")
    )
    with pytest.raises(EtdaDataError, match="house number"):
        build_etda_xml(make_document("T01", seller=seller))  # line1 starts with "Q.House"


def test_buyer_registration_in_a_credit_note() -> None:
    for name, scheme, tax_id in [
        ("thai-txid", "TXID", "010555105690100003"),
        ("thai-nidn", "NIDN", "1509900123456"),
        ("thai-no-id", "OTHR", "N/A"),
        ("foreign", "OTHR", "N/A"),
    ]:
        root = parse(build_etda_xml(make_document("81", buyer=BUYERS[name])))
        registration = root.find(
            f"{AGREEMENT}/ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID", ns("81")
        )
        assert (registration.get("schemeID"), registration.text) == (scheme, tax_id), name


def test_applicability_and_the_compatibility_name() -> None:
    for code in ALL_TYPE_CODES:
        assert is_etda_applicable(make_document(code))
    saudi_seller = dataclasses.replace(BUYERS["foreign"], tax_id_scheme="TXID")
    assert not is_etda_applicable(make_document("81", seller=saudi_seller))
    with pytest.raises(EtdaNotApplicableError):
        build_etda_xml(make_document("81", seller=saudi_seller))
    with pytest.raises(EtdaNotApplicableError):
        build_etda_xml(make_document("380"))
    note = make_document("81")
    assert build_tax_invoice_xml(note) == build_etda_xml(note)


def test_output_is_deterministic() -> None:
    note = make_document("80", lines=MULTI_LINES)
    assert build_etda_xml(note) == build_etda_xml(note)


# --- data ETDA would reject is refused, naming the problem ----------------------------------

REJECTED: dict[str, tuple[str, dict[str, Any], str]] = {
    "credit-note-without-reference": ("81", {"referenced_document": None}, "referenced_document"),
    "debit-note-without-reference": ("80", {"referenced_document": None}, "referenced_document"),
    "credit-note-without-purpose-code": ("81", {"purpose_code": ""}, "needs a purpose code"),
    "credit-note-with-debit-purpose": ("81", {"purpose_code": "DBNG01"}, "does not fit"),
    "debit-note-with-tax-invoice-purpose": ("80", {"purpose_code": "TIVC01"}, "does not fit"),
    "other-reason-without-purpose": ("81", {"purpose_code": "CDNG99"}, "needs the reason"),
    "note-without-original-amount": (
        "81",
        {"referenced_document": dataclasses.replace(ORIGINAL, net_amount=None)},
        "referenced_document.net_amount",
    ),
    "credit-larger-than-original": (
        "81",
        {"lines": (line(unit_price="10000.01"),)},
        "exceeds the original",
    ),
    "note-referencing-a-receipt": (
        "81",
        {"referenced_document": dataclasses.replace(ORIGINAL, type_code="T01")},
        "cannot reference a type code 'T01'",
    ),
    "abbreviated-with-reference": ("T05", {"referenced_document": ORIGINAL}, "cannot reference"),
    "abbreviated-with-purpose-code": ("T06", {"purpose_code": "TIVC01"}, "takes no purpose code"),
    "replacement-without-reference": ("388", {"purpose_code": "TIVC01"}, "replaces"),
    "receipt-with-tax-invoice-purpose": (
        "T01",
        {"purpose_code": "TIVC01", "referenced_document": ORIGINAL},
        "does not fit",
    ),
    "tax-invoice-referencing-a-receipt": (
        "388",
        {
            "purpose_code": "TIVC01",
            "referenced_document": dataclasses.replace(ORIGINAL, type_code="T01"),
        },
        "cannot reference a type code 'T01'",
    ),
    "negative-line": ("T01", {"lines": (line(), line(2, "-1", "100"))}, "negative amount"),
    "negative-price": ("81", {"lines": (line(unit_price="-5"),)}, "negative amount"),
}


@pytest.mark.parametrize("name", list(REJECTED))
def test_data_etda_would_reject_is_refused(name: str) -> None:
    type_code, overrides, message = REJECTED[name]
    with pytest.raises(EtdaDataError) as caught:
        build_etda_xml(make_document(type_code, **overrides))
    assert any(message in problem for problem in caught.value.problems), caught.value.problems


def test_purpose_code_sets_match_the_code_list() -> None:
    code_list = (
        SAMPLES_DIR.parent / "schema/ETDA/codelist/standard/Thai_MessageFunctionCode_1p0.xsd"
    ).read_text(encoding="utf-8")
    active = code_list.split("<!--")[0] + "".join(
        part.split("-->", 1)[1] for part in code_list.split("<!--")[1:] if "-->" in part
    )
    listed = set(re.findall(r'enumeration value="([A-Z]{4}[0-9]{2})"', active))
    assert set().union(*PURPOSE_CODES.values()) == listed
