"""SMS text and what it costs (pure core).

* ``count_segments`` - how many SMS segments a text needs (GSM 03.38 / 3GPP TS 23.038).
* ``render_sms`` - fill a ``{placeholder}`` template; unknown placeholders are an error.
* ``PriceTable`` / ``load_price_table`` - price per segment by destination country, in
  exact ``Decimal``; ``country_of_e164`` gives that destination country.

Links are sent as given: Courier never uses URL shorteners.
"""

from __future__ import annotations

import csv
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

import phonenumbers

from courier.domain import round_money

if TYPE_CHECKING:
    from courier.domain import Invoice

# --------------------------------------------------------------------------- segments

#: The GSM 03.38 default alphabet, in code order 0x00-0x7F (16 per line). 0x1B is the
#: escape to the extension table, not a character: it is listed for position only and
#: does not count as GSM-7 text. Note 0x02 is "$" and 0x24 is "¤".
GSM7_BASIC_TABLE: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"  # 0x10
    " !\"#¤%&'()*+,-./"  # 0x20
    "0123456789:;<=>?"  # 0x30
    "¡ABCDEFGHIJKLMNO"  # 0x40
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50
    "¿abcdefghijklmno"  # 0x60
    "pqrstuvwxyzäöñüà"  # 0x70
)
#: GSM 03.38 extension table: each costs 2 septets (ESC + code). Form feed is 0x0A.
GSM7_EXTENSION: Final = frozenset("\f^{}\\[]~|€")
GSM7_BASIC: Final = frozenset(GSM7_BASIC_TABLE) - {"\x1b"}

GSM7_SINGLE: Final = 160  # septets in a one-part message
GSM7_PART: Final = 153  # septets per part of a concatenated message (UDH takes 7)
UCS2_SINGLE: Final = 70  # UTF-16 code units in a one-part message
UCS2_PART: Final = 67  # per part of a concatenated message

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class SegmentInfo:
    """``units``: septets for GSM-7, UTF-16 code units for UCS-2."""

    encoding: Encoding
    segments: int
    units: int


def ucs2_forcing_chars(text: str) -> list[str]:
    """The distinct characters of ``text`` outside GSM-7, in order of first appearance.

    Any one of them makes the whole message UCS-2 (70 instead of 160 per segment):
    Thai and Arabic letters, ``฿``, curly quotes, NBSP, emoji, ...
    """
    seen: dict[str, None] = {}
    for ch in text:
        if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION:
            seen.setdefault(ch, None)
    return list(seen)


def _parts(costs: list[int], single: int, part: int) -> int:
    total = sum(costs)
    if total == 0:
        return 0
    if total <= single:
        return 1
    parts, used = 1, 0
    for cost in costs:  # a character (escape pair, surrogate pair) never straddles parts
        if used + cost > part:
            parts, used = parts + 1, 0
        used += cost
    return parts


def count_segments(text: str) -> SegmentInfo:
    """Encoding, segment count and length of ``text`` as an SMS.

    GSM-7 when every character is in the default alphabet or its extension (extension
    characters ``^{}\\[~]|€`` and form feed cost 2 septets): 160 septets fit one SMS,
    153 per part beyond that. Otherwise UCS-2 (really UTF-16): 70 code units, 67 per
    part; characters beyond the BMP (emoji) take 2 units. Neither an escape pair nor a
    surrogate pair is split across parts, so a part may carry one unit less than the
    maximum. An empty text is 0 segments (there is nothing to send).
    """
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        costs = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return SegmentInfo("GSM-7", _parts(costs, GSM7_SINGLE, GSM7_PART), sum(costs))
    costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return SegmentInfo("UCS-2", _parts(costs, UCS2_SINGLE, UCS2_PART), sum(costs))


# --------------------------------------------------------------------------- templates


class TemplateError(ValueError):
    """A template that cannot be rendered with the values given."""


#: Placeholders the on-issue SMS may use (see ``invoice_sms_values``).
ON_ISSUE_PLACEHOLDERS: Final = frozenset(
    {"seller", "buyer", "number", "amount", "currency", "due_date", "link"}
)

#: English on-issue SMS. Short on purpose: the link alone is long.
DEFAULT_ON_ISSUE_TEMPLATE: Final = (
    "{seller}: invoice {number}, {amount} {currency}, due {due_date}. View: {link}"
)
#: Thai on-issue SMS (UCS-2 anyway, so 70 units per segment: keep it terse).
DEFAULT_ON_ISSUE_TEMPLATE_TH: Final = (
    "{seller}: ใบกำกับภาษี {number} ยอด {amount} {currency} ครบกำหนด {due_date} ดู {link}"
)
#: On-issue templates by language.
ON_ISSUE_TEMPLATES: Final[Mapping[str, str]] = {
    "en": DEFAULT_ON_ISSUE_TEMPLATE,
    "th": DEFAULT_ON_ISSUE_TEMPLATE_TH,
}
#: Language of the SMS by the buyer's country; anything not listed gets English.
LANGUAGE_BY_COUNTRY: Final[Mapping[str, str]] = {"TH": "th"}


def language_for_country(country: str) -> str:
    return LANGUAGE_BY_COUNTRY.get((country or "").strip().upper(), "en")


def template_for_country(country: str, templates: Mapping[str, str] = ON_ISSUE_TEMPLATES) -> str:
    """The template for a buyer in ``country``: Thai for TH, English otherwise."""
    language = language_for_country(country)
    return templates.get(language) or templates["en"]


def on_issue_template_for(country: str, language: str = "auto") -> str:
    """The default on-issue template: ``language`` "auto" picks by the buyer's ``country``
    (``template_for_country``); "en" or "th" force one. Raises ``TemplateError`` otherwise."""
    choice = (language or "auto").strip().lower()
    if choice == "auto":
        return template_for_country(country)
    if choice not in ON_ISSUE_TEMPLATES:
        raise TemplateError(
            f"no on-issue template in language {language!r}; "
            f"choose auto, {', '.join(sorted(ON_ISSUE_TEMPLATES))}"
        )
    return ON_ISSUE_TEMPLATES[choice]


def _fields(template: str) -> list[tuple[str, str | None]]:
    """(literal text, placeholder name or None) pieces; raises ``TemplateError``."""
    pieces: list[tuple[str, str | None]] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:  # "Single '}' encountered", unclosed "{"
        raise TemplateError(f"malformed template: {exc} (write {{{{ or }}}} for a brace)") from None
    for literal, name, spec, conversion in parsed:
        if name is None:
            pieces.append((literal, None))
            continue
        if not name.isidentifier() or spec or conversion:
            shown = (
                "{"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
            raise TemplateError(
                f"placeholder {shown} is not allowed: use a plain name such as {{link}}"
            )
        pieces.append((literal, name))
    return pieces


def template_placeholders(template: str) -> list[str]:
    """Placeholder names in ``template``, in order, without repeats."""
    return list(dict.fromkeys(name for _, name in _fields(template) if name is not None))


def validate_template(template: str, allowed: Iterable[str] = ON_ISSUE_PLACEHOLDERS) -> None:
    """Raise ``TemplateError`` if ``template`` is malformed or uses a name not in ``allowed``."""
    allowed_set = set(allowed)
    unknown = [name for name in template_placeholders(template) if name not in allowed_set]
    if unknown:
        raise TemplateError(
            f"unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
            f"available: {', '.join('{' + n + '}' for n in sorted(allowed_set))}"
        )


def render_sms(template: str, /, **values: object) -> str:
    """Fill ``{name}`` placeholders of ``template`` with ``str(values[name])``.

    ``{{`` and ``}}`` are literal braces. Only plain names are allowed (no ``{a.b}``,
    ``{a[0]}``, ``{a:>10}``, ``{a!r}``: templates may be edited by users, and attribute
    access in ``str.format`` would expose internals). A placeholder without a value
    raises ``TemplateError`` naming it; values the template does not use are ignored.
    """
    validate_template(template, values)
    return "".join(
        literal + ("" if name is None else str(values[name])) for literal, name in _fields(template)
    )


def format_amount(amount: Decimal) -> str:
    """Money for an SMS: rounded to the cent, thousands separated: ``1,234.50``."""
    return f"{round_money(amount):,.2f}"


def invoice_sms_values(invoice: Invoice, link: str) -> dict[str, str]:
    """The values of ``ON_ISSUE_PLACEHOLDERS`` for one invoice."""
    due: date = invoice.due_date
    return {
        "seller": invoice.seller.name,
        "buyer": invoice.buyer.name,
        "number": invoice.number,
        "amount": format_amount(invoice.grand_total),
        "currency": invoice.currency,
        "due_date": due.isoformat(),
        "link": link,
    }


def render_invoice_sms(invoice: Invoice, link: str, template: str | None = None) -> str:
    """The on-issue SMS for ``invoice``; by default in the buyer's language."""
    chosen = template if template is not None else template_for_country(invoice.buyer.country)
    return render_sms(chosen, **invoice_sms_values(invoice, link))


# --------------------------------------------------------------------------- pricing

DEFAULT_COUNTRY: Final = "*"


class PriceTableError(ValueError):
    """A pricing file that cannot be used, or a country it has no price for."""


@dataclass(frozen=True)
class Price:
    """The price of one segment to ``country`` (the row used, ``"*"`` for the default)."""

    country: str
    price_per_segment: Decimal
    currency: str

    def charge(self, segments: int) -> Decimal:
        """``segments`` x ``price_per_segment``, exact (no rounding)."""
        if isinstance(segments, bool) or not isinstance(segments, int) or segments < 0:
            raise ValueError(f"segments must be a non-negative integer, not {segments!r}")
        return self.price_per_segment * segments


@dataclass(frozen=True)
class PriceTable:
    """Price per SMS segment by destination country (ISO alpha-2), all in one currency.

    The ``"*"`` row, if present, prices every country without its own row.
    """

    prices: Mapping[str, Decimal]
    currency: str

    def price_for(self, country: str) -> Price:
        """The price row for ``country`` (ISO alpha-2), else the ``"*"`` row.

        Raises ``PriceTableError`` when there is neither.
        """
        key = (country or "").strip().upper()
        for row in (key, DEFAULT_COUNTRY):
            if row in self.prices:
                return Price(row, self.prices[row], self.currency)
        raise PriceTableError(f"no SMS price for country {key or '?'} and no '*' default row")

    def price_per_segment(self, country: str) -> Decimal:
        return self.price_for(country).price_per_segment

    def charge(self, country: str, segments: int) -> Decimal:
        """``segments`` x the price for ``country``, exact (no rounding)."""
        return self.price_for(country).charge(segments)

    def charge_e164(self, e164: str, segments: int) -> Decimal:
        """``charge`` for the country the number ``e164`` belongs to."""
        return self.charge(country_of_e164(e164), segments)


PRICE_COLUMNS: Final = ("country", "price_per_segment", "currency")


def load_price_table(path: str | Path) -> PriceTable:
    """Read ``country,price_per_segment,currency`` CSV (e.g. ``data/pricing.csv``).

    Prices are parsed from their text straight into ``Decimal``. Raises
    ``PriceTableError`` for a missing column, a bad or negative price, a repeated
    country, or more than one currency.
    """
    prices: dict[str, Decimal] = {}
    currencies: set[str] = set()
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in PRICE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise PriceTableError(f"{path}: missing column(s) {', '.join(missing)}")
        for line_no, row in enumerate(reader, start=2):
            country = (row["country"] or "").strip().upper()
            text = (row["price_per_segment"] or "").strip()
            currency = (row["currency"] or "").strip().upper()
            if not country and not text:
                continue  # blank line
            try:
                price = Decimal(text)
            except InvalidOperation:
                raise PriceTableError(f"{path}:{line_no}: price {text!r} is not a number") from None
            if not price.is_finite() or price < 0:
                raise PriceTableError(f"{path}:{line_no}: price {text!r} is not a valid price")
            if not country or not currency:
                raise PriceTableError(f"{path}:{line_no}: country and currency are required")
            if country in prices:
                raise PriceTableError(f"{path}:{line_no}: country {country} appears twice")
            prices[country] = price
            currencies.add(currency)
    if len(currencies) != 1:
        raise PriceTableError(
            f"{path}: expected prices in exactly one currency, found {sorted(currencies) or 'none'}"
        )
    return PriceTable(prices=prices, currency=currencies.pop())


def country_of_e164(e164: str) -> str:
    """ISO alpha-2 country of an international number (``+66...`` -> ``TH``).

    The destination decides the SMS price, not the buyer's address. Returns ``"001"``
    for non-geographic numbers (as libphonenumber does) and raises ``ValueError`` for
    text that is not an international number.
    """
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not an international telephone number: {exc}") from None
    region = phonenumbers.region_code_for_number(number)
    if not region or region == "ZZ":
        raise ValueError("telephone number of no known country")
    return str(region)
