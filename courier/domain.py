"""The e-invoice as the rest of Courier sees it: plain, immutable values.

Money is always ``Decimal``; totals are derived here once (pure functions), so the
PDF, the XML and the ledger can never disagree about an amount.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")

#: VAT rates by the seller's country (percent). Thailand 7%, Saudi Arabia 15%, Egypt 14%.
VAT_RATE_BY_COUNTRY: dict[str, Decimal] = {
    "TH": Decimal("7"),
    "SA": Decimal("15"),
    "EG": Decimal("14"),
}


#: Document type codes (ETDA e-Tax code list, UN/CEFACT 1001 where the two agree).
TAX_INVOICE_TYPE_CODES = frozenset({"388", "T02", "T03", "T04"})
RECEIPT_TYPE_CODE = "T01"
DEBIT_NOTE_TYPE_CODE = "80"
CREDIT_NOTE_TYPE_CODE = "81"
NOTE_TYPE_CODES = frozenset({DEBIT_NOTE_TYPE_CODE, CREDIT_NOTE_TYPE_CODE})
ABBREVIATED_TAX_INVOICE_TYPE_CODES = frozenset({"T05", "T06"})
ALL_TYPE_CODES = (
    TAX_INVOICE_TYPE_CODES
    | {RECEIPT_TYPE_CODE}
    | NOTE_TYPE_CODES
    | ABBREVIATED_TAX_INVOICE_TYPE_CODES
)

#: An invoice's payment status as Courier records it.
PAYMENT_STATUSES = ("unpaid", "partial", "paid")
#: Spellings ERPs use for them.
PAYMENT_STATUS_ALIASES = {
    "partially_paid": "partial",
    "partially paid": "partial",
    "open": "unpaid",
}


def round_money(amount: Decimal) -> Decimal:
    """Round to the cent, half away from zero (what Thai Revenue Department examples use)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Address:
    line1: str
    postcode: str
    country: str  # ISO 3166-1 alpha-2
    line2: str = ""
    city: str = ""  # district / city name as people write it
    province: str = ""
    # Thai administrative codes (TISI / ETDA code lists); empty outside Thailand.
    province_code: str = ""  # 2 digits, e.g. "10" Bangkok
    district_code: str = ""  # 4 digits, e.g. "1028"
    subdistrict_code: str = ""  # 6 digits, e.g. "102803"
    # House number (Thai "เลขที่", e.g. "99/123"); when empty, ETDA reads it off line1.
    building_number: str = ""


@dataclass(frozen=True)
class Party:
    name: str
    address: Address
    tax_id: str = ""  # Thai: 13 digits; elsewhere the local VAT/ID number
    # TXID (tax id), NIDN (national id), CCPT (passport), OTHR (anything else)
    tax_id_scheme: str = "TXID"
    branch: str = "00000"  # Thai branch number, "00000" = head office
    email: str = ""
    # IANA time zone the party keeps its calendar in (a seller's reminder days); empty:
    # the zone of the country (``courier.reminders.schedule.seller_timezone``).
    timezone: str = ""

    @property
    def country(self) -> str:
        return self.address.country

    @property
    def key(self) -> str:
        """Who this party is across invoices (reminders are paused per buyer by it)."""
        return party_key(self.tax_id, self.branch, self.name, self.country)


def party_key(tax_id: str, branch: str, name: str, country: str) -> str:
    """A buyer's identity: the tax id and branch when there is one (a company), else the
    name as written, case and spacing folded (a person), within the country."""
    country = (country or "").strip().upper()
    if (tax_id or "").strip():
        return f"tax:{country}:{tax_id.strip()}:{(branch or '00000').strip()}"
    return f"name:{country}:{' '.join((name or '').split()).casefold()}"


@dataclass(frozen=True)
class InvoiceLine:
    line_id: int
    product_id: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    unit_code: str = "EA"

    @property
    def net_amount(self) -> Decimal:
        return round_money(self.quantity * self.unit_price)


@dataclass(frozen=True)
class DocumentReference:
    """The earlier document this one refers to: the invoice a debit/credit note corrects,
    or the document a replacement invoice/receipt replaces."""

    number: str
    issue_date: date
    type_code: str = "388"  # type code of the referenced document
    # Net value (before VAT) of the referenced document as it stood before this note: what
    # a Thai debit/credit note must show as the original value (Revenue Code s. 86/9-10).
    net_amount: Decimal | None = None


@dataclass(frozen=True)
class Invoice:
    """An invoice or any other e-tax document; ``type_code`` says which.

    The lines of a debit/credit note (type code 80/81) are the *difference* it makes: what is
    credited or charged on top of the referenced document, as positive amounts. So
    ``line_total``/``vat_amount``/``grand_total`` are always the amounts of this document.
    """

    number: str
    seller: Party
    buyer: Party
    buyer_phone_raw: str  # exactly as the ERP exported it; cleaned in courier.phones
    issued_at: datetime  # timezone-aware
    due_date: date
    currency: str
    vat_rate: Decimal  # percent, e.g. Decimal("7")
    lines: tuple[InvoiceLine, ...] = field(default_factory=tuple)
    payment_status: str = "unpaid"  # unpaid | partial | paid (PAYMENT_STATUSES)
    amount_paid: Decimal = Decimal("0.00")  # what the buyer paid so far (the ERP's figure)
    paid_at: datetime | None = None  # when it became fully paid, if the ERP says
    created_at: datetime | None = None  # created in the ERP (may precede issue); None: issued_at
    updated_at: datetime | None = None  # last changed in the ERP (payments move it)
    type_code: str = "388"  # ETDA: 388 tax invoice
    # Debit/credit notes (80/81) must reference the original document; others may (replacement).
    referenced_document: DocumentReference | None = None
    purpose_code: str = ""  # why the document is issued, ETDA code e.g. "CDNG01"; notes need one
    purpose: str = ""  # the reason in words (ETDA requires it with the "other" codes, *99)

    @property
    def is_debit_or_credit_note(self) -> bool:
        return self.type_code in NOTE_TYPE_CODES

    @property
    def line_total(self) -> Decimal:
        return sum((line.net_amount for line in self.lines), Decimal("0.00"))

    @property
    def vat_amount(self) -> Decimal:
        return round_money(self.line_total * self.vat_rate / Decimal(100))

    @property
    def grand_total(self) -> Decimal:
        return self.line_total + self.vat_amount

    @property
    def amount_due(self) -> Decimal:
        """What is still owed: nothing once paid (the ERP's word decides: a write-off or a
        discount settles an invoice too), else the total less what was paid, never below 0."""
        if self.payment_status == "paid":
            return Decimal("0.00")
        return max(self.grand_total - self.amount_paid, Decimal("0.00"))

    @property
    def corrected_net_amount(self) -> Decimal | None:
        """A note's corrected net value of the referenced document (before VAT).

        Credit note: original - ``line_total``; debit note: original + ``line_total``.
        ``None`` for other documents, or when the original value is not known.
        """
        reference = self.referenced_document
        if not self.is_debit_or_credit_note or reference is None or reference.net_amount is None:
            return None
        if self.type_code == CREDIT_NOTE_TYPE_CODE:
            return reference.net_amount - self.line_total
        return reference.net_amount + self.line_total

    def line_vat_amount(self, line: InvoiceLine) -> Decimal:
        """VAT shown per line (informative; the invoice VAT is computed on the total)."""
        return round_money(line.net_amount * self.vat_rate / Decimal(100))
