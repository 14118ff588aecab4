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


@dataclass(frozen=True)
class Party:
    name: str
    address: Address
    tax_id: str = ""  # Thai: 13 digits; elsewhere the local VAT/ID number
    # TXID (tax id), NIDN (national id), CCPT (passport), OTHR (anything else)
    tax_id_scheme: str = "TXID"
    branch: str = "00000"  # Thai branch number, "00000" = head office
    email: str = ""

    @property
    def country(self) -> str:
        return self.address.country


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
class Invoice:
    number: str
    seller: Party
    buyer: Party
    buyer_phone_raw: str  # exactly as the ERP exported it; cleaned in courier.phones
    issued_at: datetime  # timezone-aware
    due_date: date
    currency: str
    vat_rate: Decimal  # percent, e.g. Decimal("7")
    lines: tuple[InvoiceLine, ...] = field(default_factory=tuple)
    payment_status: str = "unpaid"  # unpaid | partial | paid
    type_code: str = "388"  # ETDA: 388 tax invoice

    @property
    def line_total(self) -> Decimal:
        return sum((line.net_amount for line in self.lines), Decimal("0.00"))

    @property
    def vat_amount(self) -> Decimal:
        return round_money(self.line_total * self.vat_rate / Decimal(100))

    @property
    def grand_total(self) -> Decimal:
        return self.line_total + self.vat_amount

    def line_vat_amount(self, line: InvoiceLine) -> Decimal:
        """VAT shown per line (informative; the invoice VAT is computed on the total)."""
        return round_money(line.net_amount * self.vat_rate / Decimal(100))
