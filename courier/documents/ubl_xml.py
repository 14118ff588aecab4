"""UBL 2.1 e-invoice (EN 16931 core) for an ``Invoice`` from a seller outside Thailand.

Saudi ZATCA and Peppol BIS both build on UBL 2.1 + EN 16931, so the European norm's core
(``CustomizationID`` ``urn:cen.eu:en16931:2017``) is the common ground this profile aims at;
national extras (ZATCA's QR/hash/signature, Peppol's ``ProfileID`` and endpoint ids) would be
layered on top. Like ``etda_xml``, the document is built with lxml, never from a template,
and every amount comes from the domain's own ``Decimal`` totals.

EN 16931 rules that shape the builder (ids as in the CEN Schematron):

* BR-CO-10/13/15/16: ``LineExtensionAmount`` is the sum of the lines' net amounts,
  ``TaxExclusiveAmount`` equals it (no document-level allowances or charges),
  ``TaxInclusiveAmount`` = exclusive + VAT, ``PayableAmount`` = inclusive (no prepaid amount:
  ``payment_status`` is ledger state, not part of the tax document). All of them are the
  domain's ``line_total``/``vat_amount``/``grand_total``, so XML and PDF cannot disagree.
* BR-CO-14/17, BR-S-08/09: one VAT breakdown per category; the tax is
  ``round(basis x rate / 100)`` half-up, which is exactly ``Invoice.vat_amount``
  (there is a single category and rate per invoice). A 0 % rate becomes category ``Z``
  (zero rated) since ``S`` must have a rate above zero (BR-S-05).
* BR-DEC-*, UBL-DT-01: amounts carry at most two decimals; ``PriceAmount`` is exempt and
  keeps the unit price as given (``33.335``), BR-27 forbids a negative price (a negative
  line is written as a negative quantity at a positive price, same net amount).
* BR-CO-09: VAT identifiers must start with an ISO 3166 country prefix, so a Saudi
  ``310457892600003`` is written ``SA310457892600003`` (ZATCA itself wants it bare - a
  ZATCA profile would differ here). BR-S-02/BR-CO-26: the seller needs a VAT identifier.
* BR-CL-23: unit codes are UN/ECE Rec 20 (+ Rec 21 with an ``X`` prefix): the domain's
  ``BX`` becomes ``XBX``; unknown codes fall back to ``C62`` ("one").
* UBL ``CreditNote`` has no ``cbc:DueDate``: there the due date (BT-9) is
  ``cac:PaymentMeans/cbc:PaymentDueDate`` with payment means code ``1`` (not defined).
  The preceding invoice (BG-3 ``cac:BillingReference``, BT-25/26) comes from
  ``referenced_document``, the reason (BT-22 ``cbc:Note``) from ``purpose_code``/``purpose``.
* Elements outside the EN 16931 core (``IssueTime``, ``BuildingNumber``...) are left out:
  the CEN Schematron warns about each (UBL-CR-*).

Seller or invoice data that cannot make a conformant document raises ``UblDataError``
listing every problem; buyer data only fails when a mandatory EN 16931 element (name,
country) would be missing. The builder is pure: it reads no files at run time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from lxml import etree

from courier.domain import Address, Invoice, InvoiceLine, Party, round_money

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

#: EN 16931 core specification identifier (BT-24).
CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017"

Profile = Literal["etda", "ubl"]
PROFILES: tuple[Profile, ...] = ("etda", "ubl")

#: Domain type codes (ETDA's, plus the UNTDID 1001 ones) -> UBL invoice type code (BT-3).
INVOICE_TYPE_CODES: dict[str, str] = {
    "388": "380",  # ETDA tax invoice -> commercial invoice
    "T02": "380",  # invoice/tax invoice
    "T03": "380",  # receipt/tax invoice
    "T04": "380",  # delivery order/tax invoice
    "380": "380",
    "80": "383",  # ETDA debit note -> debit note
    "383": "383",
}
#: Domain type codes that become a UBL ``CreditNote`` with type code 381.
CREDIT_NOTE_TYPE_CODES: frozenset[str] = frozenset({"81", "381"})

#: Domain unit codes that are not UN/ECE Rec 20 codes (or are common aliases) -> Rec 20/21.
UNIT_CODE_ALIASES: dict[str, str] = {
    "BX": "XBX",  # box (Rec 21, X-prefixed per EN 16931)
    "BOX": "XBX",
    "PCE": "H87",  # piece
    "PCS": "H87",
    "PC": "H87",
    "UNIT": "C62",
    "HR": "HUR",
    "HOUR": "HUR",
    "KG": "KGM",
    "M": "MTR",
    "MONTH": "MON",
}
#: Rec 20 codes passed through unchanged: the ones the domain and common ERPs use.
KNOWN_UNIT_CODES: frozenset[str] = frozenset(
    {"C62", "H87", "EA", "MON", "HUR", "DAY", "WEE", "ANN", "MIN", "KGM", "GRM", "TNE",
     "MTR", "CMT", "MMT", "KMT", "MTK", "MTQ", "LTR", "MLT", "RM", "SET", "PR", "DZN",
     "LS", "E48", "KWH", "XBX", "XPK", "XCT", "XPA", "XBG", "XBO", "XRO", "XPX", "ZZ"}
)  # fmt: skip
#: Fallback unit code: "one" (a unit-less count).
DEFAULT_UNIT_CODE = "C62"

# XML 1.0 Char production; anything else makes lxml raise and cannot be escaped.
_XML_INVALID_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_WHITESPACE = re.compile(r"\s+")
_COUNTRY = re.compile("[A-Z]{2}")
_CURRENCY = re.compile("[A-Z]{3}")


class UblError(ValueError):
    """An invoice that cannot become a conformant UBL 2.1 / EN 16931 document."""


class UblDataError(UblError):
    """Invoice data that cannot meet EN 16931; ``problems`` lists all of them."""

    def __init__(self, invoice_number: str, problems: list[str]) -> None:
        self.invoice_number = invoice_number
        self.problems = problems
        super().__init__(f"invoice {invoice_number}: " + "; ".join(problems))


# --- choosing the profile -------------------------------------------------------------------


def profile_for_seller_country(country: str, overrides: Mapping[str, str] | None = None) -> Profile:
    """The e-invoice profile for a seller in ``country`` (ISO 3166 alpha-2).

    Thailand -> ``"etda"``, every other country -> ``"ubl"``; ``overrides`` (country ->
    profile, e.g. from settings) win. Country keys are compared case-insensitively; an
    override naming an unknown profile, or a blank country, raises ``ValueError``.
    """
    code = country.strip().upper()
    if not code:
        raise ValueError("seller country is empty: no e-invoice profile can be chosen")
    for key, value in (overrides or {}).items():
        if key.strip().upper() != code:
            continue
        profile = value.strip().lower()
        if profile == "etda":
            return "etda"
        if profile == "ubl":
            return "ubl"
        raise ValueError(
            f"unknown e-invoice profile {value!r} for country {code} "
            f"(expected one of {', '.join(PROFILES)})"
        )
    return "etda" if code == "TH" else "ubl"


def ubl_applicable(invoice: Invoice) -> bool:
    """Whether the default rule picks UBL: a seller outside Thailand and a known type code.

    ``build_ubl_invoice`` itself accepts Thai sellers too (a settings override may ask for
    UBL); this only answers "is UBL the default profile for this invoice".
    """
    country = invoice.seller.country.strip().upper()
    return bool(country) and country != "TH" and _document_kind(invoice.type_code) is not None


# --- the document ---------------------------------------------------------------------------


def build_ubl_invoice(invoice: Invoice) -> bytes:
    """Return the UBL 2.1 ``Invoice`` (``CreditNote`` for type code 81/381) as UTF-8 bytes.

    Raises ``UblError`` for an unknown type code and ``UblDataError`` for data that
    cannot make an EN 16931 document (listing every problem at once).
    """
    kind = _document_kind(invoice.type_code)
    if kind is None:
        known = sorted({*INVOICE_TYPE_CODES, *CREDIT_NOTE_TYPE_CODES})
        raise UblError(
            f"invoice {invoice.number}: type code {invoice.type_code!r} has no UBL "
            f"equivalent (known: {', '.join(known)})"
        )
    root_name, type_code = kind
    credit_note = root_name == "CreditNote"
    problems = _problems(invoice)
    if problems:
        raise UblDataError(invoice.number, problems)
    currency = invoice.currency.strip().upper()
    category = _vat_category(invoice.vat_rate)

    namespace = CREDIT_NOTE_NS if credit_note else INVOICE_NS
    root = etree.Element(
        f"{{{namespace}}}{root_name}", nsmap={None: namespace, "cac": CAC_NS, "cbc": CBC_NS}
    )
    _cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    _cbc(root, "ID", _text(invoice.number))
    _cbc(root, "IssueDate", invoice.issued_at.date().isoformat())
    if not credit_note:
        _cbc(root, "DueDate", invoice.due_date.isoformat())
    _cbc(root, f"{root_name}TypeCode", type_code)
    _add_note(root, invoice)
    _cbc(root, "DocumentCurrencyCode", currency)
    _add_billing_reference(root, invoice)

    _add_party(_cac(root, "AccountingSupplierParty"), invoice.seller)
    _add_party(_cac(root, "AccountingCustomerParty"), invoice.buyer)
    if credit_note:
        _add_credit_note_due_date(root, invoice.due_date)

    tax_total = _cac(root, "TaxTotal")
    _amount(tax_total, "TaxAmount", invoice.vat_amount, currency)
    subtotal = _cac(tax_total, "TaxSubtotal")
    _amount(subtotal, "TaxableAmount", invoice.line_total, currency)
    _amount(subtotal, "TaxAmount", invoice.vat_amount, currency)
    _add_tax_category(subtotal, "TaxCategory", category, invoice.vat_rate)

    totals = _cac(root, "LegalMonetaryTotal")
    _amount(totals, "LineExtensionAmount", invoice.line_total, currency)
    _amount(totals, "TaxExclusiveAmount", invoice.line_total, currency)
    _amount(totals, "TaxInclusiveAmount", invoice.grand_total, currency)
    _amount(totals, "PayableAmount", invoice.grand_total, currency)

    for line in invoice.lines:
        _add_line(root, line, credit_note, currency, category, invoice.vat_rate)

    result: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return result


def _document_kind(type_code: str) -> tuple[str, str] | None:
    """(root element name, UBL type code) or None when there is no UBL equivalent."""
    code = type_code.strip().upper()
    if code in CREDIT_NOTE_TYPE_CODES:
        return "CreditNote", "381"
    if code in INVOICE_TYPE_CODES:
        return "Invoice", INVOICE_TYPE_CODES[code]
    return None


def _problems(invoice: Invoice) -> list[str]:
    problems: list[str] = []
    if not _text(invoice.number):
        problems.append("invoice number is empty (BR-02)")
    if not _CURRENCY.fullmatch(invoice.currency.strip().upper()):
        problems.append(f"currency {invoice.currency!r} is not an ISO 4217 code (BR-05)")
    if not invoice.lines:
        problems.append("an invoice needs at least one line (BR-16)")
    if invoice.vat_rate < 0:
        problems.append(f"VAT rate {invoice.vat_rate} is negative")
    for role, party in (("seller", invoice.seller), ("buyer", invoice.buyer)):
        if not _text(party.name):
            problems.append(f"{role} name is empty (BR-06/BR-07)")
        if not _COUNTRY.fullmatch(party.country.strip().upper()):
            problems.append(f"{role} country {party.country!r} is not ISO 3166 alpha-2")
    if not _vat_identifier(invoice.seller):
        problems.append("seller has no VAT identifier (BR-S-02, BR-CO-26)")
    for line in invoice.lines:
        if not _item_name(line):
            problems.append(f"line {line.line_id}: no description or product id (BR-25)")
    return problems


# --- parties --------------------------------------------------------------------------------


def _add_party(parent: Any, party: Party) -> None:
    element = _cac(parent, "Party")
    other_id = "" if _vat_identifier(party) else _text(party.tax_id)
    if other_id:
        # A national id / passport / non-VAT number: the party identifier (BT-29/BT-46),
        # without schemeID (that would have to be an ISO 6523 ICD code).
        _cbc(_cac(element, "PartyIdentification"), "ID", other_id)
    _add_address(element, party.address)
    vat_id = _vat_identifier(party)
    if vat_id:
        tax_scheme = _cac(element, "PartyTaxScheme")
        _cbc(tax_scheme, "CompanyID", vat_id)
        _cbc(_cac(tax_scheme, "TaxScheme"), "ID", "VAT")
    _cbc(_cac(element, "PartyLegalEntity"), "RegistrationName", _text(party.name))
    email = _text(party.email)
    if email:
        _cbc(_cac(element, "Contact"), "ElectronicMail", email)


def _add_address(party: Any, address: Address) -> None:
    """BG-5/BG-8 in UBL order: street, additional street, city, postcode, subdivision, country."""
    element = _cac(party, "PostalAddress")
    for name, value in (
        ("StreetName", address.line1),
        ("AdditionalStreetName", address.line2),
        ("CityName", address.city),
        ("PostalZone", address.postcode),
        ("CountrySubentity", address.province),
    ):
        text = _text(value)
        if text:
            _cbc(element, name, text)
    _cbc(_cac(element, "Country"), "IdentificationCode", address.country.strip().upper())


def _vat_identifier(party: Party) -> str:
    """The party's VAT identifier with its ISO 3166 prefix (BR-CO-09), or '' if it has none.

    Only ``TXID`` registrations are VAT/tax numbers; national ids and passports are not.
    """
    if party.tax_id_scheme.strip().upper() not in ("TXID", ""):
        return ""
    digits = re.sub(r"[\s\-.]", "", _text(party.tax_id)).upper()
    if not digits:
        return ""
    if re.match("[A-Z]{2}", digits):  # already prefixed (e.g. "GB123456789", "EL...")
        return digits
    return party.country.strip().upper() + digits


# --- lines and tax --------------------------------------------------------------------------


def _vat_category(rate: Decimal) -> str:
    """``S`` (standard rated) needs a rate above zero (BR-S-05); 0 % is ``Z`` (zero rated)."""
    return "S" if rate > 0 else "Z"


def _add_tax_category(parent: Any, name: str, category: str, rate: Decimal) -> None:
    element = _cac(parent, name)
    _cbc(element, "ID", category)
    _cbc(element, "Percent", _decimal(rate))
    _cbc(_cac(element, "TaxScheme"), "ID", "VAT")


def _add_line(
    root: Any, line: InvoiceLine, credit_note: bool, currency: str, category: str, rate: Decimal
) -> None:
    element = _cac(root, "CreditNoteLine" if credit_note else "InvoiceLine")
    _cbc(element, "ID", str(line.line_id))
    quantity, price = line.quantity, line.unit_price
    if price < 0:  # BR-27: the price is never negative; the quantity carries the sign
        quantity, price = -quantity, -price
    _cbc(
        element,
        "CreditedQuantity" if credit_note else "InvoicedQuantity",
        _decimal(quantity),
        unitCode=ubl_unit_code(line.unit_code),
    )
    _amount(element, "LineExtensionAmount", line.net_amount, currency)
    item = _cac(element, "Item")
    _cbc(item, "Name", _item_name(line))  # BT-153; the domain has one text per line
    product_id = _text(line.product_id)
    if product_id:
        _cbc(_cac(item, "SellersItemIdentification"), "ID", product_id)  # BT-155
    _add_tax_category(item, "ClassifiedTaxCategory", category, rate)
    _cbc(_cac(element, "Price"), "PriceAmount", _decimal(price), currencyID=currency)


def _item_name(line: InvoiceLine) -> str:
    return _text(line.description) or _text(line.product_id)


def ubl_unit_code(unit_code: str) -> str:
    """The domain's unit code as a UN/ECE Rec 20 (or X-prefixed Rec 21) code (BR-CL-23)."""
    code = _text(unit_code).upper()
    code = UNIT_CODE_ALIASES.get(code, code)
    return code if code in KNOWN_UNIT_CODES else DEFAULT_UNIT_CODE


# --- references -----------------------------------------------------------------------------


def _add_note(root: Any, invoice: Invoice) -> None:
    """BT-22: why the document is issued (a note's reason), as ``CODE: words``.

    The domain's purpose codes are ETDA's, not UNTDID 4451 subject codes, so they stay in
    the text instead of the ``#CODE#`` subject prefix EN 16931 reserves for 4451.
    """
    code = _text(str(getattr(invoice, "purpose_code", "") or ""))
    words = _text(str(getattr(invoice, "purpose", "") or ""))
    note = ": ".join(part for part in (code, words) if part)
    if note:
        _cbc(root, "Note", note)


def _add_billing_reference(root: Any, invoice: Invoice) -> None:
    """BG-3 preceding invoice (BT-25/BT-26), when the domain carries ``referenced_document``."""
    reference = getattr(invoice, "referenced_document", None)
    if reference is None:
        return
    number = _text(str(getattr(reference, "number", "") or ""))
    if not number:
        return
    document = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
    _cbc(document, "ID", number)
    issued: object = getattr(reference, "issue_date", None)
    if isinstance(issued, datetime):
        issued = issued.date()
    if isinstance(issued, date):
        _cbc(document, "IssueDate", issued.isoformat())


def _add_credit_note_due_date(root: Any, due_date: date) -> None:
    """BT-9 of a credit note: UBL's CreditNote has no ``cbc:DueDate``."""
    means = _cac(root, "PaymentMeans")
    _cbc(means, "PaymentMeansCode", "1")  # UNCL 4461: instrument not defined
    _cbc(means, "PaymentDueDate", due_date.isoformat())


# --- values ---------------------------------------------------------------------------------


def xml_safe_text(value: str) -> str:
    """Drop characters XML 1.0 cannot carry (NUL, other C0 controls, lone surrogates...)."""
    return _XML_INVALID_CHARS.sub("", value)


def _text(value: str) -> str:
    """XML-safe, whitespace runs collapsed to one space, trimmed."""
    return _WHITESPACE.sub(" ", xml_safe_text(value)).strip()


def _decimal(value: Decimal) -> str:
    """Plain notation (never ``1E+2``), no negative zero."""
    if value == 0:
        value = abs(value)
    return format(value, "f")


def _amount(parent: Any, name: str, value: Decimal, currency: str) -> Any:
    """An amount: two decimals, half-up (BR-DEC-*, UBL-DT-01), with its currency."""
    return _cbc(parent, name, _decimal(round_money(value)), currencyID=currency)


def _cac(parent: Any, name: str) -> Any:
    return etree.SubElement(parent, f"{{{CAC_NS}}}{name}")


def _cbc(parent: Any, name: str, text: str, **attributes: str) -> Any:
    element = etree.SubElement(
        parent,
        f"{{{CBC_NS}}}{name}",
        {key: xml_safe_text(value) for key, value in attributes.items()},
    )
    element.text = xml_safe_text(text)
    return element
