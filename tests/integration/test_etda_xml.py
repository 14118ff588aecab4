"""The ETDA tax-invoice XML against ETDA's own XSD + Schematron.

First the validator is shown to accept ETDA's sample and to reject broken documents
(otherwise "zero problems" below would prove nothing); then documents built from a
spread of invoices must validate with zero problems and carry the domain's totals.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree

from courier.documents.etda_xml import (
    RAM_NS,
    EtdaDataError,
    EtdaNotApplicableError,
    build_tax_invoice_xml,
    is_etda_applicable,
    xml_safe_text,
)
from courier.domain import VAT_RATE_BY_COUNTRY, Address, Invoice, InvoiceLine, Party
from tests.support.etda_validation import SAMPLES_DIR, safe_parser, validate_etda

NS = {"ram": RAM_NS, "rsm": "urn:etda:uncefact:data:standard:TaxInvoice_CrossIndustryInvoice:2"}
BANGKOK = timezone(timedelta(hours=7))
SAMPLE = SAMPLES_DIR / "TIV_IV2017110007_Sample.xml"

# --- a small factory -------------------------------------------------------------------------

THAI_SELLER = Party(
    name="Stream I.T. Consulting Ltd.",
    address=Address(
        line1="11 South Sathorn Rd., Q.House Sathorn Bldg. 7th floor",
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
THAI_BUYER = Party(
    name="บริษัท ประเทศไทย จำกัด",
    address=Address(
        line1="15 ถนนนนทรี",
        line2="แขวงช่องนนทรี เขตยานนาวา",
        city="ยานนาวา",
        province="กรุงเทพมหานคร",
        postcode="10120",
        country="TH",
    ),
    tax_id="0105551056901",
    branch="00003",
    email="ap@thai-buyer.example",
)
CHIANG_MAI_PERSON = Party(
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
)
SAUDI_BUYER = Party(
    name="شركة الرياض للتجارة",
    address=Address(line1="King Fahd Road 1234", city="Riyadh", postcode="12271", country="SA"),
    tax_id="300012345600003",  # Saudi VAT number: 15 digits, no Thai scheme fits
    email="finance@riyadh-trading.example",
)
EGYPTIAN_BUYER = Party(
    name="شركة القاهرة",
    address=Address(line1="5 Tahrir Square", city="Cairo", postcode="11511", country="EG"),
    tax_id="123456789",
    tax_id_scheme="OTHR",
)


def line(
    line_id: int = 1, quantity: str = "1", unit_price: str = "2000", **overrides: Any
) -> InvoiceLine:
    values: dict[str, Any] = {
        "product_id": f"HW-{line_id:03d}",
        "description": "Inkjet Printer",
    }
    values.update(overrides)
    return InvoiceLine(
        line_id=line_id,
        quantity=Decimal(quantity),
        unit_price=Decimal(unit_price),
        **values,
    )


def make_invoice(**overrides: Any) -> Invoice:
    seller: Party = overrides.get("seller", THAI_SELLER)
    values: dict[str, Any] = {
        "number": "IV2024110007",
        "seller": seller,
        "buyer": THAI_BUYER,
        "buyer_phone_raw": "081-234-5678",
        "issued_at": datetime(2024, 11, 24, 12, 0, tzinfo=BANGKOK),
        "due_date": date(2024, 12, 24),
        "currency": {"TH": "THB", "SA": "SAR", "EG": "EGP"}[seller.country],
        "vat_rate": VAT_RATE_BY_COUNTRY[seller.country],
        "lines": (line(),),
    }
    values.update(overrides)
    return Invoice(**values)


def parse(xml: bytes) -> Any:
    return etree.fromstring(xml, safe_parser())


def amount(root: Any, path: str) -> Decimal:
    return Decimal(root.findtext(path, namespaces=NS))


HEADER = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
SUMMATION = f"{HEADER}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
BUYER = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty"

# --- the validator itself --------------------------------------------------------------------


def test_etda_sample_passes_the_validator() -> None:
    assert validate_etda(SAMPLE.read_bytes()) == []


def test_schematron_report_makes_a_document_invalid() -> None:
    # XSD-valid, but TIV-SellerTradeParty-008 (a sch:report) fires: seller must be in TH.
    broken = SAMPLE.read_bytes().replace(
        b'alpha-2">TH</ram:CountryID>\n<ram:CountrySubDivisionID>',
        b'alpha-2">SA</ram:CountryID>\n<ram:CountrySubDivisionID>',
        1,
    )
    problems = validate_etda(broken)
    assert len(problems) == 1
    assert "successful-report" in problems[0]
    assert "TIV-SellerTradeParty-008" in problems[0]


def test_xsd_error_makes_a_document_invalid() -> None:
    broken = SAMPLE.read_bytes().replace(b"<ram:Name>Inkjet Printer</ram:Name>", b"")
    problems = validate_etda(broken)
    assert problems
    assert all(problem.startswith("XSD") for problem in problems)


def test_malformed_xml_and_entities_are_reported_not_expanded() -> None:
    assert validate_etda(b"<not-closed>")[0].startswith("not well-formed")
    xxe = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    assert not any("root:" in problem for problem in validate_etda(xxe))


# --- documents built from invoices -----------------------------------------------------------

INVOICES = {
    "thai-seller-thai-buyer-txid": make_invoice(),
    "buyer-nidn-structured-address": make_invoice(buyer=CHIANG_MAI_PERSON),
    "buyer-without-tax-id": make_invoice(buyer=dataclasses.replace(THAI_BUYER, tax_id="")),
    "buyer-passport": make_invoice(
        buyer=dataclasses.replace(SAUDI_BUYER, tax_id="A12345678", tax_id_scheme="CCPT")
    ),
    "buyer-txid-with-bad-branch": make_invoice(buyer=dataclasses.replace(THAI_BUYER, branch="HQ")),
    "saudi-buyer-in-sar": make_invoice(buyer=SAUDI_BUYER, currency="SAR"),
    "egyptian-buyer-in-egp": make_invoice(buyer=EGYPTIAN_BUYER, currency="EGP"),
    "multi-line-rounding": make_invoice(
        lines=(
            line(1, "3", "33.335", description="Toner ผงหมึก"),
            line(2, "0.5", "0.125", unit_code="KGM", description="Paper"),
            line(3, "7", "19.99", description="Cable"),
            line(4, "1", "1000000.01", description="Server"),
        )
    ),
    "hostile-buyer-text": make_invoice(
        buyer=dataclasses.replace(
            THAI_BUYER,
            name="ACME <&>\"' \x00Co.\x0b Ltd\ufffe" + "x" * 300,
            address=dataclasses.replace(THAI_BUYER.address, line1="1 <b>Road</b>\x1f &amp;"),
            email="a\x00p@acme.example",
        ),
        lines=(line(description="Widget ]]> <!-- \x07 -->", product_id="W&1"),),
    ),
    "tax-invoice-receipt-t03": make_invoice(type_code="T03"),
}


@pytest.mark.parametrize("name", list(INVOICES))
def test_built_document_is_valid(name: str) -> None:
    invoice = INVOICES[name]
    xml = build_tax_invoice_xml(invoice, buyer_phone_etda="+66-812345678")
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert validate_etda(xml) == []
    assert validate_etda(build_tax_invoice_xml(invoice)) == []  # and without a phone


@pytest.mark.parametrize("name", list(INVOICES))
def test_totals_match_the_domain_to_the_satang(name: str) -> None:
    invoice = INVOICES[name]
    root = parse(build_tax_invoice_xml(invoice))
    assert amount(root, f"{SUMMATION}/ram:LineTotalAmount") == invoice.line_total
    assert amount(root, f"{SUMMATION}/ram:TaxBasisTotalAmount") == invoice.line_total
    assert amount(root, f"{SUMMATION}/ram:TaxTotalAmount") == invoice.vat_amount
    assert amount(root, f"{SUMMATION}/ram:GrandTotalAmount") == invoice.grand_total
    assert amount(root, f"{HEADER}/ram:ApplicableTradeTax/ram:BasisAmount") == invoice.line_total
    assert amount(root, f"{HEADER}/ram:ApplicableTradeTax/ram:CalculatedAmount") == (
        invoice.vat_amount
    )
    assert amount(root, f"{HEADER}/ram:ApplicableTradeTax/ram:CalculatedRate") == invoice.vat_rate
    items = root.findall("rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem", NS)
    assert len(items) == len(invoice.lines)
    summation = "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation"
    for item, domain_line in zip(items, invoice.lines, strict=True):
        net = amount(item, f"{summation}/ram:NetLineTotalAmount")
        vat = amount(item, f"{summation}/ram:TaxTotalAmount")
        assert net == domain_line.net_amount
        assert vat == invoice.line_vat_amount(domain_line)
        assert amount(item, f"{summation}/ram:NetIncludingTaxesLineTotalAmount") == net + vat
        price = "ram:SpecifiedLineTradeAgreement/ram:GrossPriceProductTradePrice/ram:ChargeAmount"
        assert amount(item, price) == domain_line.unit_price
    nets = [amount(item, f"{summation}/ram:NetLineTotalAmount") for item in items]
    assert sum(nets) == amount(root, f"{SUMMATION}/ram:LineTotalAmount")
    for element in root.iter(f"{{{RAM_NS}}}*"):
        if element.tag.endswith("Amount") and element.tag != f"{{{RAM_NS}}}ChargeAmount":
            assert re.fullmatch(r"-?[0-9]+\.[0-9]{2}", element.text), (element.tag, element.text)


def test_amounts_have_two_decimals_and_currency() -> None:
    root = parse(build_tax_invoice_xml(INVOICES["saudi-buyer-in-sar"]))
    grand = root.find(f"{SUMMATION}/ram:GrandTotalAmount", NS)
    assert grand.text == "2140.00"
    assert grand.get("currencyID") == "SAR"
    assert root.findtext(f"{HEADER}/ram:InvoiceCurrencyCode", namespaces=NS) == "SAR"


def test_document_header_and_seller() -> None:
    root = parse(build_tax_invoice_xml(make_invoice()))
    assert root.findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=NS) == "388"
    assert root.findtext("rsm:ExchangedDocument/ram:Name", namespaces=NS) == "ใบกำกับภาษี"
    assert root.findtext("rsm:ExchangedDocument/ram:IssueDateTime", namespaces=NS) == (
        "2024-11-24T12:00:00+07:00"
    )
    seller = root.find(
        "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty",
        NS,
    )
    registration = seller.find("ram:SpecifiedTaxRegistration/ram:ID", NS)
    assert (registration.get("schemeID"), registration.text) == ("TXID", "010554106923700000")
    address = seller.find("ram:PostalTradeAddress", NS)
    assert address.findtext("ram:CountrySubDivisionID", namespaces=NS) == "10"
    assert address.findtext("ram:CityName", namespaces=NS) == "1028"
    assert address.findtext("ram:CitySubDivisionName", namespaces=NS) == "102803"
    assert address.findtext("ram:BuildingNumber", namespaces=NS) == "11"
    due = f"{HEADER}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime"
    assert root.findtext(due, namespaces=NS) == "2024-12-24T00:00:00"


@pytest.mark.parametrize(
    ("buyer", "scheme", "tax_id"),
    [
        (THAI_BUYER, "TXID", "010555105690100003"),
        (CHIANG_MAI_PERSON, "NIDN", "1509900123456"),
        (dataclasses.replace(THAI_BUYER, tax_id=""), "OTHR", "N/A"),
        (SAUDI_BUYER, "OTHR", "N/A"),
        (EGYPTIAN_BUYER, "OTHR", "N/A"),
    ],
)
def test_buyer_tax_registration(buyer: Party, scheme: str, tax_id: str) -> None:
    root = parse(build_tax_invoice_xml(make_invoice(buyer=buyer)))
    registration = root.find(f"{BUYER}/ram:SpecifiedTaxRegistration/ram:ID", NS)
    assert (registration.get("schemeID"), registration.text) == (scheme, tax_id)


def test_foreign_buyer_keeps_its_own_tax_number_and_unstructured_address() -> None:
    root = parse(build_tax_invoice_xml(make_invoice(buyer=SAUDI_BUYER, currency="SAR")))
    buyer_id = root.find(f"{BUYER}/ram:ID", NS)
    assert (buyer_id.text, buyer_id.get("schemeAgencyID")) == ("300012345600003", "SA")
    address = root.find(f"{BUYER}/ram:PostalTradeAddress", NS)
    assert address.findtext("ram:LineOne", namespaces=NS) == "King Fahd Road 1234"
    assert address.findtext("ram:LineThree", namespaces=NS) == "Riyadh"
    assert address.findtext("ram:CountryID", namespaces=NS) == "SA"
    assert address.find("ram:CityName", NS) is None


def test_buyer_contact_carries_phone_and_email() -> None:
    root = parse(build_tax_invoice_xml(make_invoice(), buyer_phone_etda="+66-812345678"))
    contact = f"{BUYER}/ram:DefinedTradeContact"
    assert (
        root.findtext(
            f"{contact}/ram:TelephoneUniversalCommunication/ram:CompleteNumber", namespaces=NS
        )
        == "+66-812345678"
    )
    assert (
        root.findtext(f"{contact}/ram:EmailURIUniversalCommunication/ram:URIID", namespaces=NS)
        == "ap@thai-buyer.example"
    )


def test_phone_not_in_etda_form_is_refused() -> None:
    with pytest.raises(ValueError, match="ETDA form"):
        build_tax_invoice_xml(make_invoice(), buyer_phone_etda="+66812345678")


def test_hostile_buyer_text_survives_escaped_and_cleaned() -> None:
    root = parse(build_tax_invoice_xml(INVOICES["hostile-buyer-text"]))
    name = root.findtext(f"{BUYER}/ram:Name", namespaces=NS)
    assert name.startswith("ACME <&>\"' Co. Ltd" + "x")
    assert len(name) == 256  # cut to the schema's Max256
    assert root.findtext(f"{BUYER}/ram:PostalTradeAddress/ram:LineOne", namespaces=NS) == (
        "1 <b>Road</b> &amp;"
    )
    product = "rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem"
    product += "/ram:SpecifiedTradeProduct"
    assert root.findtext(f"{product}/ram:Name", namespaces=NS) == "Widget ]]> <!-- -->"


@pytest.mark.parametrize("country", ["SA", "EG"])
def test_non_thai_seller_is_not_an_etda_document(country: str) -> None:
    seller = dataclasses.replace(
        SAUDI_BUYER if country == "SA" else EGYPTIAN_BUYER, tax_id_scheme="TXID"
    )
    invoice = make_invoice(seller=seller, buyer=SAUDI_BUYER)
    assert not is_etda_applicable(invoice)
    with pytest.raises(EtdaNotApplicableError):
        build_tax_invoice_xml(invoice)


def test_non_tax_invoice_type_code_is_refused() -> None:
    with pytest.raises(EtdaNotApplicableError):
        build_tax_invoice_xml(make_invoice(type_code="380"))


def test_seller_data_etda_would_reject_is_reported_all_at_once() -> None:
    seller = dataclasses.replace(
        THAI_SELLER,
        tax_id="12345",
        address=dataclasses.replace(
            THAI_SELLER.address, line1="Sathorn Rd.", district_code="", postcode="101"
        ),
    )
    with pytest.raises(EtdaDataError) as caught:
        build_tax_invoice_xml(make_invoice(seller=seller))
    assert len(caught.value.problems) == 4


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain", "plain"),
        ("a\x00b\x0bc\x1fd", "abcd"),
        ("tab\tnl\ncr\r", "tab\tnl\ncr\r"),
        ("bad\ufffe\uffffend", "badend"),
        ("lone\ud800surrogate", "lonesurrogate"),
        ("ไทย عربي 😀", "ไทย عربي 😀"),
    ],
)
def test_xml_safe_text(raw: str, clean: str) -> None:
    assert xml_safe_text(raw) == clean
    etree.Element("x").text = xml_safe_text(raw)  # lxml accepts it


def test_output_is_deterministic_and_keeps_the_time_zone() -> None:
    invoice = make_invoice(issued_at=datetime(2024, 11, 24, 5, 0, tzinfo=UTC))
    xml = build_tax_invoice_xml(invoice)
    assert xml == build_tax_invoice_xml(invoice)
    issued = parse(xml).findtext("rsm:ExchangedDocument/ram:IssueDateTime", namespaces=NS)
    assert issued == "2024-11-24T05:00:00+00:00"
