"""courier.messages: SMS segments, templates and prices."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from courier.domain import Address, Invoice, InvoiceLine, Party
from courier.messages import (
    DEFAULT_ON_ISSUE_TEMPLATE,
    DEFAULT_ON_ISSUE_TEMPLATE_TH,
    GSM7_BASIC_TABLE,
    ON_ISSUE_PLACEHOLDERS,
    Price,
    PriceTable,
    PriceTableError,
    SegmentInfo,
    TemplateError,
    count_segments,
    country_of_e164,
    format_amount,
    load_price_table,
    on_issue_template_for,
    render_invoice_sms,
    render_sms,
    template_for_country,
    template_placeholders,
    ucs2_forcing_chars,
    validate_template,
)

REPO = Path(__file__).resolve().parents[2]
PRICING_CSV = REPO / "data" / "pricing.csv"

# --------------------------------------------------------------------------- GSM-7


def test_basic_table_is_the_gsm_03_38_table() -> None:
    assert len(GSM7_BASIC_TABLE) == 128
    assert GSM7_BASIC_TABLE[0x00] == "@"
    assert GSM7_BASIC_TABLE[0x02] == "$"
    assert GSM7_BASIC_TABLE[0x0A] == "\n"
    assert GSM7_BASIC_TABLE[0x10] == "Δ"
    assert GSM7_BASIC_TABLE[0x1B] == "\x1b"
    assert GSM7_BASIC_TABLE[0x24] == "¤"
    assert GSM7_BASIC_TABLE[0x40] == "¡"
    assert GSM7_BASIC_TABLE[0x5F] == "§"
    assert GSM7_BASIC_TABLE[0x60] == "¿"
    assert GSM7_BASIC_TABLE[0x7F] == "à"
    assert len(set(GSM7_BASIC_TABLE)) == 128


@pytest.mark.parametrize(
    ("length", "segments"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)]
)
def test_gsm7_lengths(length: int, segments: int) -> None:
    assert count_segments("a" * length) == SegmentInfo("GSM-7", segments, length)


def test_empty_text_is_zero_segments() -> None:
    assert count_segments("") == SegmentInfo("GSM-7", 0, 0)


def test_whole_basic_table_is_gsm7() -> None:
    text = GSM7_BASIC_TABLE.replace("\x1b", "")
    assert count_segments(text) == SegmentInfo("GSM-7", 1, 127)
    assert ucs2_forcing_chars(text) == []


@pytest.mark.parametrize("ch", list("^{}\\[~]|€\f"))
def test_extension_chars_cost_two_septets(ch: str) -> None:
    assert count_segments(ch) == SegmentInfo("GSM-7", 1, 2)
    assert count_segments("a" * 158 + ch) == SegmentInfo("GSM-7", 1, 160)
    assert count_segments("a" * 159 + ch) == SegmentInfo("GSM-7", 2, 161)


def test_euro_counts_double() -> None:
    assert count_segments("€" * 80) == SegmentInfo("GSM-7", 1, 160)
    assert count_segments("€" * 81) == SegmentInfo("GSM-7", 2, 162)


def test_escape_pair_not_split_across_parts() -> None:
    # 152 + 2 + 152 = 306 septets would fit 2 x 153, but the "€" cannot straddle the
    # boundary: part 1 carries 152, part 2 "€" + 151, part 3 the last "a".
    text = "a" * 152 + "€" + "a" * 152
    assert count_segments(text) == SegmentInfo("GSM-7", 3, 306)
    # one septet less and it fits in two parts (152 | 2 + 151)
    assert count_segments("a" * 152 + "€" + "a" * 151).segments == 2
    # escape right at the end of part 1 is fine (151 + 2 = 153)
    assert count_segments("a" * 151 + "€" + "a" * 153) == SegmentInfo("GSM-7", 2, 306)


@pytest.mark.parametrize("ch", ["฿", "\u201c", "\u201d", "\u2019", "\u00a0", "ก", "م", "😀", "ç"])
def test_non_gsm_chars_force_ucs2(ch: str) -> None:
    text = f"Pay 100{ch} now"
    assert count_segments(text).encoding == "UCS-2"
    assert ucs2_forcing_chars(text) == [ch]


def test_ucs2_forcing_chars_distinct_in_order() -> None:
    assert ucs2_forcing_chars("“ยอด” ฿100 ยอด") == ["“", "ย", "อ", "ด", "”", "฿"]
    assert ucs2_forcing_chars("Plain €{text}") == []


# --------------------------------------------------------------------------- UCS-2


@pytest.mark.parametrize(
    ("length", "segments"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_thai_lengths(length: int, segments: int) -> None:
    assert count_segments("ก" * length) == SegmentInfo("UCS-2", segments, length)


def test_emoji_is_two_units() -> None:
    assert count_segments("😀") == SegmentInfo("UCS-2", 1, 2)
    assert count_segments("😀" * 35) == SegmentInfo("UCS-2", 1, 70)
    assert count_segments("😀" * 35 + "a") == SegmentInfo("UCS-2", 2, 71)


def test_surrogate_pair_not_split_across_parts() -> None:
    # 66 + 2 + 66 = 134 units would fit 2 x 67, but the emoji cannot straddle parts.
    text = "ก" * 66 + "😀" + "ก" * 66
    assert count_segments(text) == SegmentInfo("UCS-2", 3, 134)
    assert count_segments("ก" * 65 + "😀" + "ก" * 67) == SegmentInfo("UCS-2", 2, 134)


def test_one_thai_char_makes_everything_ucs2() -> None:
    text = "a" * 100 + "ก"
    assert count_segments(text) == SegmentInfo("UCS-2", 2, 101)


# --------------------------------------------------------------------------- templates


def test_render_sms() -> None:
    text = render_sms("{seller}: {{literal}} {link}", seller="A & B", link="https://x.example/1")
    assert text == "A & B: {literal} https://x.example/1"


def test_render_ignores_unused_values_and_converts() -> None:
    assert render_sms("{n} items", n=3, extra="x") == "3 items"


def test_unknown_placeholder_is_a_clear_error() -> None:
    with pytest.raises(TemplateError, match=r"unknown placeholder\(s\) \{link_url\}.*\{link\}"):
        render_sms("View: {link_url}", link="https://x.example")


@pytest.mark.parametrize("template", ["{a.__class__}", "{a[0]}", "{a!r}", "{a:>20}", "{0}", "{}"])
def test_only_plain_names_allowed(template: str) -> None:
    with pytest.raises(TemplateError, match="not allowed"):
        render_sms(template, a="x")


@pytest.mark.parametrize("template", ["{link", "link}", "{"])
def test_malformed_template(template: str) -> None:
    with pytest.raises(TemplateError, match="malformed"):
        render_sms(template, link="x")


def test_default_templates_use_known_placeholders() -> None:
    for template in (DEFAULT_ON_ISSUE_TEMPLATE, DEFAULT_ON_ISSUE_TEMPLATE_TH):
        validate_template(template)
        assert set(template_placeholders(template)) <= ON_ISSUE_PLACEHOLDERS
        assert "link" in template_placeholders(template)
    with pytest.raises(TemplateError):
        validate_template("{seller} {secret}")


def test_on_issue_template_for_language() -> None:
    assert on_issue_template_for("TH") == DEFAULT_ON_ISSUE_TEMPLATE_TH
    assert on_issue_template_for("TH", "auto") == DEFAULT_ON_ISSUE_TEMPLATE_TH
    assert on_issue_template_for("TH", "en") == DEFAULT_ON_ISSUE_TEMPLATE
    assert on_issue_template_for("SA", "th") == DEFAULT_ON_ISSUE_TEMPLATE_TH
    with pytest.raises(TemplateError, match="language"):
        on_issue_template_for("TH", "fr")


def test_template_by_country() -> None:
    assert template_for_country("TH") == DEFAULT_ON_ISSUE_TEMPLATE_TH
    assert template_for_country("th") == DEFAULT_ON_ISSUE_TEMPLATE_TH
    assert template_for_country("SA") == DEFAULT_ON_ISSUE_TEMPLATE
    assert template_for_country("EG") == DEFAULT_ON_ISSUE_TEMPLATE
    assert template_for_country("") == DEFAULT_ON_ISSUE_TEMPLATE


def _invoice(buyer_country: str) -> Invoice:
    party = Party("Seller Co", Address("1 Road", "10120", "TH"), "0105561042170")
    buyer = Party("Buyer", Address("2 Road", "00000", buyer_country))
    return Invoice(
        number="TH1-2026-000123",
        seller=party,
        buyer=buyer,
        buyer_phone_raw="081-234-5678",
        issued_at=datetime(2026, 11, 20, 9, 0, tzinfo=timezone(timedelta(hours=7))),
        due_date=date(2026, 12, 20),
        currency="THB",
        vat_rate=Decimal("7"),
        lines=(InvoiceLine(1, "P1", "Thing", Decimal("2.00"), Decimal("1000.00")),),
    )


def test_render_invoice_sms_english_and_thai() -> None:
    link = "https://files.example/inv/TH1-2026-000123?sig=abc"
    english = render_invoice_sms(_invoice("SA"), link)
    assert english == (
        f"Seller Co: invoice TH1-2026-000123, 2,140.00 THB, due 2026-12-20. View: {link}"
    )
    assert count_segments(english).encoding == "GSM-7"
    thai = render_invoice_sms(_invoice("TH"), link)
    assert thai.startswith("Seller Co: ใบกำกับภาษี TH1-2026-000123 ยอด 2,140.00 THB")
    assert thai.endswith(link)


def test_format_amount() -> None:
    assert format_amount(Decimal("1234.5")) == "1,234.50"
    assert format_amount(Decimal("0.005")) == "0.01"
    assert format_amount(Decimal("1000000")) == "1,000,000.00"


# --------------------------------------------------------------------------- pricing


def test_pricing_file_loads_as_decimal() -> None:
    table = load_price_table(PRICING_CSV)
    assert table.currency == "USD"
    assert set(table.prices) >= {"TH", "SA", "EG", "*"}
    assert all(isinstance(p, Decimal) for p in table.prices.values())
    assert table.prices["TH"] == Decimal("0.0300")


def test_charge_is_exact_decimal() -> None:
    table = load_price_table(PRICING_CSV)
    assert table.charge("TH", 3) == Decimal("0.0900")
    assert str(table.charge("TH", 3)) == "0.0900"
    assert table.charge("sa", 2) == Decimal("0.0800")
    assert table.charge("EG", 0) == Decimal("0")
    assert table.charge("US", 2) == Decimal("0.1600")  # "*" default row
    # many small charges add up exactly (a float would drift)
    assert sum((table.charge("TH", 1) for _ in range(1000)), Decimal(0)) == Decimal("30.0000")


def test_price_for_names_the_row_used() -> None:
    table = load_price_table(PRICING_CSV)
    assert table.price_for("th") == Price("TH", Decimal("0.0300"), "USD")
    assert table.price_for("JP") == Price("*", Decimal("0.0800"), "USD")
    assert table.price_for("TH").charge(2) == table.charge("TH", 2) == Decimal("0.0600")


def test_charge_rejects_bad_segments() -> None:
    table = PriceTable({"TH": Decimal("0.03")}, "USD")
    with pytest.raises(ValueError):
        table.charge("TH", -1)
    with pytest.raises(PriceTableError, match="no SMS price for country SA"):
        table.charge("SA", 1)


def test_destination_decides_the_price() -> None:
    table = load_price_table(PRICING_CSV)
    assert country_of_e164("+66812345678") == "TH"
    assert country_of_e164("+966501234567") == "SA"
    assert country_of_e164("+201012345678") == "EG"
    assert table.charge_e164("+966501234567", 2) == Decimal("0.0800")
    with pytest.raises(ValueError):
        country_of_e164("0812345678")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("country,price\nTH,0.03\n", "missing column"),
        ("country,price_per_segment,currency\nTH,abc,USD\n", "not a number"),
        ("country,price_per_segment,currency\nTH,-0.01,USD\n", "not a valid price"),
        ("country,price_per_segment,currency\nTH,0.03,USD\nTH,0.04,USD\n", "twice"),
        ("country,price_per_segment,currency\nTH,0.03,USD\nSA,0.04,EUR\n", "one currency"),
    ],
)
def test_bad_pricing_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "pricing.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PriceTableError, match=message):
        load_price_table(path)
