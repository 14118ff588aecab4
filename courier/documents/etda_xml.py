"""Thai ETDA e-Tax Invoice & e-Receipt 2.0 (ขมธอ. 3-2560) XML for an ``Invoice``.

Why a builder and not a template: every value goes through lxml, so buyer-controlled text
can never break the markup, and every rule of ETDA's XSD and Schematron that the data
can meet is handled here, in one place, from the domain's own totals (no floats).

``Invoice.type_code`` picks the ETDA schema (root element ``rsm:<Schema>_CrossIndustryInvoice``
and the schema's own ``rsm``/``ram`` namespaces) and its rules, see ``DOCUMENT_TYPES``:

* ``TaxInvoice``: 388 ใบกำกับภาษี, T02 ใบแจ้งหนี้/ใบกำกับภาษี, T03 ใบเสร็จรับเงิน/ใบกำกับภาษี,
  T04 ใบส่งของ/ใบกำกับภาษี
* ``Receipt``: T01 ใบรับ (ใบเสร็จรับเงิน)
* ``DebitCreditNote``: 80 ใบเพิ่มหนี้, 81 ใบลดหนี้
* ``AbbreviatedTaxInvoice``: T05 ใบกำกับภาษีอย่างย่อ, T06 ใบเสร็จรับเงิน/ใบกำกับภาษีอย่างย่อ

The names are the ones ETDA's Schematron messages give per type code (``DOCUMENT_NAMES``;
the code list ``ThaiDocumentNameCode_Invoice_1p0.xsd`` itself has the codes only, and the
Schematron's name checks are commented out, so the name is ours to get right).

What the ETDA rules imply (``*_Schematron_2p0.sch``, ``*_2p0.xsd``):

* An ETDA document is issued by a *Thai* VAT registrant: the seller's address must say
  ``TH`` and carry house number + TISI province/district/sub-district codes, and its tax
  registration must be a Thai TXID (13-digit tax id + 5-digit branch) or NIDN. Invoices
  from Saudi or Egyptian sellers therefore cannot be ETDA documents at all: they raise
  ``EtdaNotApplicableError`` (check first with ``is_etda_applicable``) instead of becoming
  a document that pretends the seller is Thai. The house number is ``Address.building_number``
  or, when that is empty, the number heading ``line1``.
* Seller and document data that cannot meet the rules (missing TISI codes, bad tax id,
  a note without purpose code...) raises ``EtdaDataError`` listing every problem: it is the
  issuer's own data, and a document the Revenue Department would reject is worse than none.
  ETDA amounts are never negative (``qdt:Amount`` has ``minInclusive 0``): a negative unit
  price or line is such a problem too.
* Buyer data never raises: the buyer must carry a tax registration, so a buyer without a
  usable Thai id gets ETDA's ``OTHR``/``N/A`` (a foreign tax number is kept in the buyer's
  ``ram:ID``); non-Thai addresses go unstructured (``LineOne``...), since ``CityName`` and
  ``CitySubDivisionName`` only accept TISI codes. Only a Thai buyer address without a
  5-digit postcode, a buyer address without ``line1``, or a country that is not an ISO
  3166 code can still fail validation.
* Debit/credit notes (80/81): ``ram:PurposeCode`` is mandatory (XSD 1..1, DCN-Document-004)
  and must be of the note's family (DCN-Document-005/006: ``DBNG01/02/99``, ``DBNS01/02/99``
  for 80; ``CDNG01-05/99``, ``CDNS01-04/99`` for 81); the "other reason" codes ``*99`` need
  the reason in ``ram:Purpose`` (DCN-Document-007). ``ram:AdditionalReferencedDocument`` is
  mandatory (XSD 1..n) and must point at a 388/T02/T03/T04/80/81 document
  (DCN-AdditionalReferencedDocument-001). The header summation carries, as the Revenue Code
  (s. 86/9-10) wants on a note: ``OriginalInformationAmount`` = the original document's net
  value (``referenced_document.net_amount``), ``LineTotalAmount`` = the corrected net value
  (``Invoice.corrected_net_amount``), ``DifferenceInformationAmount`` = the difference = the
  note's own lines (``line_total``); VAT basis, VAT and grand total are those of the
  difference, so ``GrandTotalAmount`` = difference + VAT. A credit note larger than the
  original value is refused (the corrected value would be negative).
* Tax invoice / receipt replacing an earlier one: a purpose code (``TIVC01/02/99`` resp.
  ``RCTC01-04/99``, TIV-Document-004, RCT-Document-002) comes with the referenced document
  it replaces, of type 388/T02/T03/T04 resp. T01 (TIV/RCT-AdditionalReferencedDocument-001).
* Abbreviated tax invoice (T05/T06): the schema has *no* buyer at all (and no referenced
  document), so the buyer and ``buyer_phone_etda`` are left out; ABB-SellerTradeParty-001
  tests the seller's ``ram:ID`` (its message says "name"), so the seller carries its tax
  registration id there too.

The builder is pure: it reads nothing at run time (in particular not the schemas).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lxml import etree

from courier.domain import (
    CREDIT_NOTE_TYPE_CODE,
    Address,
    DocumentReference,
    Invoice,
    Party,
    round_money,
)

_ETDA_DATA = "urn:etda:uncefact:data:standard:"


@dataclass(frozen=True)
class EtdaDocumentType:
    """One ETDA document schema and what it takes."""

    schema: str  # "TaxInvoice" -> rsm:TaxInvoice_CrossIndustryInvoice
    names: Mapping[str, str]  # type code -> Thai document name
    reference_type_codes: frozenset[str] = frozenset()  # empty: no AdditionalReferencedDocument
    has_buyer: bool = True
    is_note: bool = False  # debit/credit note: purpose code, reference and amounts mandatory

    @property
    def root(self) -> str:
        return f"{self.schema}_CrossIndustryInvoice"

    @property
    def rsm_ns(self) -> str:
        return f"{_ETDA_DATA}{self.schema}_CrossIndustryInvoice:2"

    @property
    def ram_ns(self) -> str:
        return f"{_ETDA_DATA}{self.schema}_ReusableAggregateBusinessInformationEntity:2"


TAX_INVOICE = EtdaDocumentType(
    "TaxInvoice",
    {
        "388": "ใบกำกับภาษี",
        "T02": "ใบแจ้งหนี้/ใบกำกับภาษี",
        "T03": "ใบเสร็จรับเงิน/ใบกำกับภาษี",
        "T04": "ใบส่งของ/ใบกำกับภาษี",
    },
    reference_type_codes=frozenset({"388", "T02", "T03", "T04"}),
)
RECEIPT = EtdaDocumentType(
    "Receipt", {"T01": "ใบรับ (ใบเสร็จรับเงิน)"}, reference_type_codes=frozenset({"T01"})
)
DEBIT_CREDIT_NOTE = EtdaDocumentType(
    "DebitCreditNote",
    {"80": "ใบเพิ่มหนี้", "81": "ใบลดหนี้"},
    reference_type_codes=frozenset({"388", "T02", "T03", "T04", "80", "81"}),
    is_note=True,
)
ABBREVIATED_TAX_INVOICE = EtdaDocumentType(
    "AbbreviatedTaxInvoice",
    {"T05": "ใบกำกับภาษีอย่างย่อ", "T06": "ใบเสร็จรับเงิน/ใบกำกับภาษีอย่างย่อ"},
    has_buyer=False,
)

#: The ETDA schema of each supported type code.
DOCUMENT_TYPES: dict[str, EtdaDocumentType] = {
    code: kind
    for kind in (TAX_INVOICE, RECEIPT, DEBIT_CREDIT_NOTE, ABBREVIATED_TAX_INVOICE)
    for code in kind.names
}

#: The Thai document name that goes with each type code (ETDA's Schematron messages).
DOCUMENT_NAMES: dict[str, str] = {code: kind.names[code] for code, kind in DOCUMENT_TYPES.items()}

_TIVC = frozenset({"TIVC01", "TIVC02", "TIVC99"})
#: Purpose codes (ETDA ``Thai_MessageFunctionCode_1p0.xsd``) each type code accepts.
PURPOSE_CODES: dict[str, frozenset[str]] = {
    "388": _TIVC,
    "T02": _TIVC,
    "T03": _TIVC,
    "T04": _TIVC,
    "T01": frozenset({"RCTC01", "RCTC02", "RCTC03", "RCTC04", "RCTC99"}),
    "80": frozenset({"DBNG01", "DBNG02", "DBNG99", "DBNS01", "DBNS02", "DBNS99"}),
    "81": frozenset(
        {
            "CDNG01",
            "CDNG02",
            "CDNG03",
            "CDNG04",
            "CDNG05",
            "CDNG99",
            "CDNS01",
            "CDNS02",
            "CDNS03",
            "CDNS04",
            "CDNS99",
        }
    ),
    "T05": frozenset(),
    "T06": frozenset(),
}

#: Namespaces of the tax invoice (kept for callers of the tax-invoice-only builder).
RSM_NS = TAX_INVOICE.rsm_ns
RAM_NS = TAX_INVOICE.ram_ns

#: ETDA's ``qdt:PhoneNumber`` pattern (XSD patterns are anchored: use ``fullmatch``).
ETDA_PHONE_PATTERN = re.compile(r"\+[0-9]{1,3}-[0-9()+\-]{1,30}")

# XML 1.0 Char production; anything else (NUL, C0 controls, lone surrogates, U+FFFE/U+FFFF)
# makes lxml raise and is not representable in a document at all.
_XML_INVALID_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# What xsd:token collapses (only these four, not NBSP & co.).
_XSD_WHITESPACE = re.compile("[ \t\n\r]+")
# A Thai house number at the start of an address line: "11", "99/123", "เลขที่ 7/1", "No. 5".
_HOUSE_NUMBER = re.compile(r"(?:เลขที่|No\.?)?\s*([0-9๐-๙][0-9๐-๙/\-]*)", re.IGNORECASE)

# Max lengths of the qdt:MaxNNText types used below.
_MAX_ID = 35
_MAX_NAME = 256
_MAX_LINE = 256
_MAX_SHORT_LINE = 70
_MAX_CODE = 16


class EtdaError(ValueError):
    """An invoice that cannot become a valid ETDA document."""


class EtdaNotApplicableError(EtdaError):
    """The invoice is not a Thai e-tax document (non-Thai seller, or unsupported type code)."""


class EtdaDataError(EtdaError):
    """Seller/invoice data that cannot meet ETDA's rules; ``problems`` lists all of them."""

    def __init__(self, invoice_number: str, problems: list[str]) -> None:
        self.invoice_number = invoice_number
        self.problems = problems
        super().__init__(f"invoice {invoice_number}: " + "; ".join(problems))


def xml_safe_text(s: str) -> str:
    """Drop characters XML 1.0 cannot carry (NUL, other C0 controls, lone surrogates...).

    ERP exports do contain them; lxml would raise on them, and no escaping can save them.
    Tab, CR and LF stay (xsd:token collapses them anyway).
    """
    return _XML_INVALID_CHARS.sub("", s)


def is_etda_applicable(invoice: Invoice) -> bool:
    """Whether this invoice can be an ETDA document at all (Thai seller, supported type)."""
    return invoice.seller.country.strip().upper() == "TH" and invoice.type_code in DOCUMENT_TYPES


def build_etda_xml(invoice: Invoice, buyer_phone_etda: str | None = None) -> bytes:
    """Return the ETDA document for ``invoice`` (root chosen by its type code) as UTF-8 bytes.

    ``buyer_phone_etda`` is the buyer's phone already in ETDA form (``+66-812345678``);
    it must match ``ETDA_PHONE_PATTERN`` (a ``ValueError`` otherwise: it is the caller's
    contract, not raw buyer data). An abbreviated tax invoice has no buyer, so the phone is
    not written there. Raises ``EtdaNotApplicableError`` for non-Thai sellers or unsupported
    type codes and ``EtdaDataError`` for data ETDA would reject.
    """
    if not is_etda_applicable(invoice):
        raise EtdaNotApplicableError(
            f"invoice {invoice.number}: an ETDA document needs a Thai seller and type code "
            f"{'/'.join(DOCUMENT_TYPES)} (seller country {invoice.seller.country!r}, "
            f"type code {invoice.type_code!r})"
        )
    if buyer_phone_etda is not None and not ETDA_PHONE_PATTERN.fullmatch(buyer_phone_etda):
        raise ValueError(
            f"invoice {invoice.number}: buyer phone {buyer_phone_etda!r} is not in ETDA form "
            "(+CC-NUMBER, e.g. +66-812345678)"
        )
    kind = DOCUMENT_TYPES[invoice.type_code]
    problems: list[str] = []
    number = _token(invoice.number)
    if not number or len(number) > _MAX_ID:
        problems.append(f"invoice number must be 1-{_MAX_ID} characters")
    currency = invoice.currency.strip().upper()
    if not re.fullmatch("[A-Z]{3}", currency):
        problems.append(f"currency {invoice.currency!r} is not an ISO 4217 code")
    seller_registration = _seller_registration(invoice.seller, problems)
    seller_tisi = _tisi_codes(invoice.seller.address)
    if seller_tisi is None:
        problems.append(
            "seller address needs consistent TISI codes (province 2, district 4, "
            "sub-district 6 digits)"
        )
    seller_house = _house_number(invoice.seller.address)
    if seller_house is None:
        problems.append(
            f"seller address needs a house number of at most {_MAX_CODE} characters "
            "(building_number, or line1 starting with it)"
        )
    if not re.fullmatch("[0-9]{5}", invoice.seller.address.postcode.strip()):
        problems.append("seller postcode must be 5 digits")
    if not _token(invoice.seller.name):
        problems.append("seller name is empty")
    _check_lines(invoice, problems)
    purpose_code = invoice.purpose_code.strip().upper()
    _check_purpose(invoice, kind, purpose_code, problems)
    reference = _check_reference(invoice, kind, purpose_code, problems)
    if problems:
        raise EtdaDataError(invoice.number, problems)

    root = etree.Element(
        f"{{{kind.rsm_ns}}}{kind.root}", nsmap={"rsm": kind.rsm_ns, "ram": kind.ram_ns}
    )
    context = etree.SubElement(root, f"{{{kind.rsm_ns}}}ExchangedDocumentContext")
    guideline = _sub(context, "GuidelineSpecifiedDocumentContextParameter")
    _sub(guideline, "ID", "ER3-2560", schemeAgencyID="ETDA", schemeVersionID="v2.0")

    document = etree.SubElement(root, f"{{{kind.rsm_ns}}}ExchangedDocument")
    _sub(document, "ID", number)
    _sub(document, "Name", kind.names[invoice.type_code])
    _sub(document, "TypeCode", invoice.type_code)
    issued = invoice.issued_at.isoformat(timespec="seconds")
    _sub(document, "IssueDateTime", issued)
    purpose = _token(invoice.purpose, _MAX_NAME)
    if purpose:
        _sub(document, "Purpose", purpose)
    if purpose_code:
        _sub(document, "PurposeCode", purpose_code)
    # The domain has no separate creation time; keeping the builder pure, we reuse issued_at.
    _sub(document, "CreationDateTime", issued)

    transaction = etree.SubElement(root, f"{{{kind.rsm_ns}}}SupplyChainTradeTransaction")
    agreement = _sub(transaction, "ApplicableHeaderTradeAgreement")
    _add_seller(
        agreement,
        invoice.seller,
        seller_registration,
        seller_tisi,
        seller_house,
        with_id=kind is ABBREVIATED_TAX_INVOICE,
    )
    if kind.has_buyer:
        _add_buyer(agreement, invoice.buyer, buyer_phone_etda)
    if reference is not None:
        _add_reference(agreement, reference)
    _sub(transaction, "ApplicableHeaderTradeDelivery")

    settlement = _sub(transaction, "ApplicableHeaderTradeSettlement")
    _sub(settlement, "InvoiceCurrencyCode", currency, listID="ISO 4217 3A")
    _add_tax(settlement, invoice, invoice.line_total, invoice.vat_amount, currency)
    terms = _sub(settlement, "SpecifiedTradePaymentTerms")
    # A due date is a calendar date, not an instant: midnight, no offset.
    _sub(terms, "DueDateDateTime", f"{invoice.due_date.isoformat()}T00:00:00")
    summation = _sub(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    if kind.is_note:
        original, corrected = _note_amounts(invoice)
        _sub(summation, "OriginalInformationAmount", _money(original), currencyID=currency)
        _sub(summation, "LineTotalAmount", _money(corrected), currencyID=currency)
        _sub(
            summation,
            "DifferenceInformationAmount",
            _money(invoice.line_total),
            currencyID=currency,
        )
    else:
        _sub(summation, "LineTotalAmount", _money(invoice.line_total), currencyID=currency)
    _sub(summation, "TaxBasisTotalAmount", _money(invoice.line_total), currencyID=currency)
    _sub(summation, "TaxTotalAmount", _money(invoice.vat_amount), currencyID=currency)
    _sub(summation, "GrandTotalAmount", _money(invoice.grand_total), currencyID=currency)

    for line in invoice.lines:
        item = _sub(transaction, "IncludedSupplyChainTradeLineItem")
        _sub(_sub(item, "AssociatedDocumentLineDocument"), "LineID", str(line.line_id))
        product = _sub(item, "SpecifiedTradeProduct")
        product_id = _token(line.product_id)
        if product_id:
            _sub(product, "ID", product_id)
        _sub(product, "Name", _token(line.description, _MAX_NAME) or product_id)
        price = _sub(_sub(item, "SpecifiedLineTradeAgreement"), "GrossPriceProductTradePrice")
        _sub(price, "ChargeAmount", _price(line.unit_price), currencyID=currency)
        _sub(
            _sub(item, "SpecifiedLineTradeDelivery"),
            "BilledQuantity",
            _plain(line.quantity),
            unitCode=_token(line.unit_code) or "EA",
        )
        line_settlement = _sub(item, "SpecifiedLineTradeSettlement")
        line_vat = invoice.line_vat_amount(line)
        _add_tax(line_settlement, invoice, line.net_amount, line_vat, currency)
        line_sum = _sub(line_settlement, "SpecifiedTradeSettlementLineMonetarySummation")
        _sub(line_sum, "TaxTotalAmount", _money(line_vat), currencyID=currency)
        _sub(line_sum, "NetLineTotalAmount", _money(line.net_amount), currencyID=currency)
        _sub(
            line_sum,
            "NetIncludingTaxesLineTotalAmount",
            _money(line.net_amount + line_vat),
            currencyID=currency,
        )

    result: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return result


def build_tax_invoice_xml(invoice: Invoice, buyer_phone_etda: str | None = None) -> bytes:
    """Compatibility name of ``build_etda_xml`` (which handles every ETDA type code)."""
    return build_etda_xml(invoice, buyer_phone_etda)


# --- document rules ------------------------------------------------------------------------


def _check_lines(invoice: Invoice, problems: list[str]) -> None:
    if not invoice.lines:
        problems.append("an invoice needs at least one line")
    if invoice.vat_rate < 0:
        problems.append(f"VAT rate {invoice.vat_rate} is negative")
    for line in invoice.lines:
        product_id = _token(line.product_id)
        if len(product_id) > _MAX_ID:
            problems.append(f"line {line.line_id}: product id longer than {_MAX_ID} characters")
        if not (_token(line.description) or product_id):
            problems.append(f"line {line.line_id}: no description")
        if line.unit_price < 0 or line.net_amount < 0:
            problems.append(
                f"line {line.line_id}: negative amount (ETDA amounts are never negative; "
                "a credit note lists what it credits as positive amounts)"
            )


def _check_purpose(
    invoice: Invoice, kind: EtdaDocumentType, purpose_code: str, problems: list[str]
) -> None:
    allowed = PURPOSE_CODES[invoice.type_code]
    if not purpose_code:
        if kind.is_note:
            problems.append(
                f"a {kind.names[invoice.type_code]} (type code {invoice.type_code}) needs a "
                f"purpose code, one of {', '.join(sorted(allowed))}"
            )
        return
    if not allowed:
        problems.append(f"type code {invoice.type_code} takes no purpose code")
    elif purpose_code not in allowed:
        problems.append(
            f"purpose code {purpose_code!r} does not fit type code {invoice.type_code} "
            f"(one of {', '.join(sorted(allowed))})"
        )
    elif purpose_code.endswith("99") and not _token(invoice.purpose):
        problems.append(f"purpose code {purpose_code} (other reason) needs the reason in purpose")


def _check_reference(
    invoice: Invoice, kind: EtdaDocumentType, purpose_code: str, problems: list[str]
) -> DocumentReference | None:
    reference = invoice.referenced_document
    if reference is None:
        if kind.is_note:
            problems.append(
                "a debit/credit note must reference the original document (referenced_document)"
            )
        elif purpose_code and kind.reference_type_codes:
            problems.append(
                f"purpose code {purpose_code} marks a replacement document: it needs the "
                "referenced document it replaces (referenced_document)"
            )
        return None
    if not kind.reference_type_codes:
        problems.append(
            f"a {kind.names[invoice.type_code]} (type code {invoice.type_code}) cannot "
            "reference another document"
        )
        return None
    reference_number = _token(reference.number)
    if not reference_number or len(reference_number) > _MAX_ID:
        problems.append(f"referenced document number must be 1-{_MAX_ID} characters")
    if reference.type_code not in kind.reference_type_codes:
        problems.append(
            f"a type code {invoice.type_code} document cannot reference a type code "
            f"{reference.type_code!r} document (one of "
            f"{', '.join(sorted(kind.reference_type_codes))})"
        )
    if kind.is_note:
        if reference.net_amount is None:
            problems.append(
                "a debit/credit note needs the original document's net value "
                "(referenced_document.net_amount)"
            )
        elif reference.net_amount < 0:
            problems.append("the original document's net value must not be negative")
        elif invoice.type_code == CREDIT_NOTE_TYPE_CODE and invoice.line_total > (
            reference.net_amount
        ):
            problems.append(
                f"credit note of {_money(invoice.line_total)} exceeds the original document's "
                f"net value {_money(reference.net_amount)}"
            )
    return reference


def _note_amounts(invoice: Invoice) -> tuple[Decimal, Decimal]:
    """(original, corrected) net value of the referenced document; checked beforehand."""
    reference = invoice.referenced_document
    corrected = invoice.corrected_net_amount
    if reference is None or reference.net_amount is None or corrected is None:
        raise EtdaDataError(invoice.number, ["a debit/credit note needs the original value"])
    return reference.net_amount, corrected


def _add_reference(agreement: Any, reference: DocumentReference) -> None:
    element = _sub(agreement, "AdditionalReferencedDocument")
    _sub(element, "IssuerAssignedID", _token(reference.number))
    # ISODateTime in some schemas, date-or-dateTime in others: midnight fits both.
    _sub(element, "IssueDateTime", f"{reference.issue_date.isoformat()}T00:00:00")
    _sub(element, "ReferenceTypeCode", reference.type_code)


# --- parties -------------------------------------------------------------------------------


def _add_seller(
    agreement: Any,
    seller: Party,
    registration: tuple[str, str],
    tisi: tuple[str, str, str] | None,
    house: str | None,
    with_id: bool = False,
) -> None:
    party = _sub(agreement, "SellerTradeParty")
    scheme, tax_id = registration
    if with_id:
        _sub(party, "ID", tax_id)
    _sub(party, "Name", _token(seller.name, _MAX_NAME))
    _sub(_sub(party, "SpecifiedTaxRegistration"), "ID", tax_id, schemeID=scheme)
    _add_contact(party, seller.email, None)
    _add_address(party, seller.address, tisi, house)


def _add_buyer(agreement: Any, buyer: Party, phone: str | None) -> None:
    party = _sub(agreement, "BuyerTradeParty")
    scheme, tax_id, other_id = _buyer_registration(buyer)
    if other_id:
        # ETDA's registration only knows Thai ids: keep the buyer's own number (issued in
        # its country, hence schemeAgencyID) as the party's identifier.
        _sub(party, "ID", other_id, schemeAgencyID=buyer.country.strip().upper())
    name = _token(buyer.name, _MAX_NAME)
    if name:
        _sub(party, "Name", name)
    # TIV-BuyerTradeParty-001: the registration is mandatory, even without an id.
    _sub(_sub(party, "SpecifiedTaxRegistration"), "ID", tax_id, schemeID=scheme)
    _add_contact(party, buyer.email, phone)
    address = buyer.address
    tisi = _tisi_codes(address) if address.country.strip().upper() == "TH" else None
    _add_address(party, address, tisi, _house_number(address) if tisi else None)


def _add_contact(party: Any, email: str, phone: str | None) -> None:
    email = _token(email)
    if len(email) > _MAX_NAME:  # a cut e-mail address is a wrong one
        email = ""
    if not (email or phone):
        return
    contact = _sub(party, "DefinedTradeContact")
    if email:
        _sub(_sub(contact, "EmailURIUniversalCommunication"), "URIID", email)
    if phone:
        _sub(_sub(contact, "TelephoneUniversalCommunication"), "CompleteNumber", phone)


def _add_address(
    party: Any, address: Address, tisi: tuple[str, str, str] | None, house: str | None
) -> None:
    """Unstructured lines always; TISI codes (CityName etc. are code lists) only when given."""
    element = _sub(party, "PostalTradeAddress")
    postcode = _token(address.postcode)
    if postcode and len(postcode) <= _MAX_CODE:
        _sub(element, "PostcodeCode", postcode)
    for tag, value, limit in (
        ("LineOne", address.line1, _MAX_LINE),
        ("LineTwo", address.line2, _MAX_LINE),
        ("LineThree", address.city, _MAX_SHORT_LINE),
        ("LineFour", address.province, _MAX_SHORT_LINE),
    ):
        text = _token(value, limit)
        if text:
            _sub(element, tag, text)
    if tisi:
        _sub(element, "CityName", tisi[1])
        _sub(element, "CitySubDivisionName", tisi[2])
    _sub(element, "CountryID", address.country.strip().upper(), schemeID="3166-1 alpha-2")
    if tisi:
        _sub(element, "CountrySubDivisionID", tisi[0])
    if tisi and house:
        _sub(element, "BuildingNumber", house)


def _seller_registration(seller: Party, problems: list[str]) -> tuple[str, str]:
    """TXID = 13-digit tax id + 5-digit branch (18 digits); NIDN = 13-digit national id."""
    scheme = seller.tax_id_scheme.strip().upper() or "TXID"
    digits = _id_digits(seller.tax_id)
    if scheme == "TXID":
        if re.fullmatch("[0-9]{18}", digits):
            return scheme, digits
        branch = _branch(seller.branch)
        if re.fullmatch("[0-9]{13}", digits) and branch:
            return scheme, digits + branch
        problems.append("seller TXID needs a 13-digit tax id and a branch of up to 5 digits")
    elif scheme == "NIDN":
        if re.fullmatch("[0-9]{13}", digits):
            return scheme, digits
        problems.append("seller NIDN needs a 13-digit national id")
    else:
        problems.append(f"seller tax id scheme must be TXID or NIDN, not {scheme!r}")
    return scheme, digits


def _buyer_registration(buyer: Party) -> tuple[str, str, str]:
    """(schemeID, registration ID, other id to keep in ram:ID or '').

    ETDA accepts TXID (18 digits), NIDN (13), CCPT (up to 35) and OTHR whose ID must be
    exactly ``N/A``; anything that fits none of them becomes OTHR/N/A.
    """
    raw = _token(buyer.tax_id)
    if not raw:
        return "OTHR", "N/A", ""
    scheme = buyer.tax_id_scheme.strip().upper() or "TXID"
    digits = _id_digits(raw)
    if scheme == "TXID":
        if re.fullmatch("[0-9]{18}", digits):
            return scheme, digits, ""
        branch = _branch(buyer.branch)
        if re.fullmatch("[0-9]{13}", digits) and branch:
            return scheme, digits + branch, ""
    elif scheme == "NIDN" and re.fullmatch("[0-9]{13}", digits):
        return scheme, digits, ""
    elif scheme == "CCPT" and len(raw) <= _MAX_ID:
        return scheme, raw, ""
    return "OTHR", "N/A", raw if len(raw) <= _MAX_ID else ""


def _id_digits(value: str) -> str:
    """Thai ids are often written with separators: ``0-1055-41069-23-7``."""
    return re.sub(r"[\s\-.]", "", xml_safe_text(value))


def _branch(value: str) -> str | None:
    branch = value.strip()
    if not branch:
        return "00000"
    return branch.zfill(5) if re.fullmatch("[0-9]{1,5}", branch) else None


def _tisi_codes(address: Address) -> tuple[str, str, str] | None:
    """(province, district, sub-district) when well-formed and nested, else None.

    Only the shape is checked: the code lists themselves are reference data we do not ship.
    """
    province = address.province_code.strip()
    district = address.district_code.strip()
    subdistrict = address.subdistrict_code.strip()
    if (
        re.fullmatch("[0-9]{2}", province)
        and re.fullmatch("[0-9]{4}", district)
        and re.fullmatch("[0-9]{6}", subdistrict)
        and district.startswith(province)
        and subdistrict.startswith(district)
    ):
        return province, district, subdistrict
    return None


def _house_number(address: Address) -> str | None:
    """``building_number``, else the house number heading ``line1`` (Max16 either way)."""
    explicit = _token(address.building_number)
    if explicit:
        return explicit if len(explicit) <= _MAX_CODE else None
    match = _HOUSE_NUMBER.match(_token(address.line1))
    if match is None or len(match.group(1)) > _MAX_CODE:
        return None
    return match.group(1)


# --- values --------------------------------------------------------------------------------


def _sub(parent: Any, name: str, text: str | None = None, **attributes: str) -> Any:
    """A ``ram:`` child (the document's own ``ram`` namespace); attribute values are made
    XML-safe like all text."""
    element = etree.SubElement(
        parent,
        f"{{{parent.nsmap['ram']}}}{name}",
        {key: xml_safe_text(value) for key, value in attributes.items()},
    )
    if text is not None:
        element.text = xml_safe_text(text)
    return element


def _token(value: str, max_length: int | None = None) -> str:
    """XML-safe, whitespace collapsed like xsd:token, cut to the schema's maximum length."""
    text = _XSD_WHITESPACE.sub(" ", xml_safe_text(value)).strip()
    if max_length is not None and len(text) > max_length:
        text = text[:max_length].rstrip()
    return text


def _add_tax(parent: Any, invoice: Invoice, basis: Decimal, amount: Decimal, currency: str) -> None:
    tax = _sub(parent, "ApplicableTradeTax")
    _sub(tax, "TypeCode", "VAT")
    _sub(tax, "CalculatedRate", _plain(invoice.vat_rate.normalize()))
    _sub(tax, "BasisAmount", _money(basis), currencyID=currency)
    _sub(tax, "CalculatedAmount", _money(amount), currencyID=currency)


def _money(amount: Decimal) -> str:
    """Exactly two decimals, rounded the domain's way (the domain's totals already are)."""
    return f"{round_money(amount):f}"


def _price(amount: Decimal) -> str:
    """At least two decimals, but never round a unit price (0.125 stays 0.125)."""
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -2:
        return _money(amount)
    return _plain(amount)


def _plain(value: Decimal) -> str:
    """Fixed-point, never scientific notation (xsd:decimal has no exponent)."""
    return f"{value:f}"
