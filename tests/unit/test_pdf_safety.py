"""PDF rendering safety: what WeasyPrint may fetch, escaping of invoice data, money format.

The fetcher tests show both sides: a resource inside the assets folder *is* loaded and
applied (so "nothing leaked" below is not just "nothing ever loads"), everything else is
refused and skipped.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import pikepdf
import pytest
from weasyprint import HTML

from courier.documents.pdf import (
    ASSETS_DIR,
    MAX_LINES,
    MAX_TEXT_CHARS,
    AssetURLFetcher,
    PdfRenderer,
    URLRefusedError,
    check_invoice_limits,
    format_money,
    format_price,
    format_quantity,
    printable_text,
    render_html,
    text_direction,
)
from courier.domain import Address, Invoice, InvoiceLine, Party
from tests.support.pdf import pdf_text

BKK = timezone(timedelta(hours=7))
HOSTILE = '<img src="file:///etc/passwd">'


def make_invoice(number: str = "INV-S-1", buyer_name: str = "Acme Ltd.") -> Invoice:
    seller = Party(
        "บริษัท ผู้ขาย จำกัด",
        Address("1 ถนนสีลม", "10500", "TH", city="บางรัก", province="กรุงเทพมหานคร"),
        tax_id="0105558000001",
    )
    buyer = Party(buyer_name, Address("2 Main Road", "10200", "TH"), tax_id="0105551234567")
    line = InvoiceLine(1, "SKU-1", "Service", Decimal("1"), Decimal("100.00"))
    return Invoice(
        number=number,
        seller=seller,
        buyer=buyer,
        buyer_phone_raw="0812345678",
        issued_at=datetime(2025, 1, 31, 9, 0, tzinfo=BKK),
        due_date=date(2025, 3, 2),
        currency="THB",
        vat_rate=Decimal("7"),
        lines=(line,),
    )


@pytest.fixture
def assets(tmp_path: Path) -> Path:
    """An assets folder with one stylesheet, next to a 'secret' file outside it."""
    folder = tmp_path / "assets"
    folder.mkdir()
    (folder / "ok.css").write_text('body::after { content: "ASSET-CSS-APPLIED" }')
    (tmp_path / "secret.css").write_text('body::after { content: "SECRET-LEAKED" }')
    (folder / "link.css").symlink_to(tmp_path / "secret.css")
    return folder


@pytest.fixture
def fetcher(assets: Path) -> AssetURLFetcher:
    return AssetURLFetcher(assets)


@pytest.fixture
def quiet_weasyprint() -> Iterator[None]:
    logger = logging.getLogger("weasyprint")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


# ---- the URL fetcher on its own -----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "file://localhost/etc/passwd",
        "file://evil.example/etc/passwd",
        "http://127.0.0.1/latest/meta-data/",
        "https://example.com/logo.png",
        "ftp://example.com/file",
        "gopher://127.0.0.1:6379/_INFO",
        "jar:file:///tmp/x.jar!/a",
        "/etc/passwd",
    ],
)
def test_fetcher_refuses_anything_but_data_and_assets(fetcher: AssetURLFetcher, url: str) -> None:
    with pytest.raises(URLRefusedError):
        fetcher.fetch(url)


def test_fetcher_refuses_escapes_from_the_assets_folder(
    fetcher: AssetURLFetcher, assets: Path
) -> None:
    base = assets.as_uri()
    for url in (
        f"{base}/../secret.css",  # traversal
        f"{base}/%2e%2e/secret.css",  # encoded traversal
        f"{base}/link.css",  # symlink pointing outside
        f"{base}/missing.css",
        f"{base}/",  # the folder itself
    ):
        with pytest.raises(URLRefusedError):
            fetcher.fetch(url)


def test_fetcher_allows_data_urls_and_assets(fetcher: AssetURLFetcher, assets: Path) -> None:
    response = fetcher.fetch("data:text/plain;base64,aGVsbG8=")
    assert response.read() == b"hello"
    asset = fetcher.fetch((assets / "ok.css").as_uri())
    assert b"ASSET-CSS-APPLIED" in asset.read()
    assert asset.content_type == "text/css"


def test_default_fetcher_serves_the_project_assets_folder() -> None:
    assert AssetURLFetcher().assets_dir == ASSETS_DIR.resolve()
    AssetURLFetcher().fetch((ASSETS_DIR / ".gitkeep").as_uri())  # exists, allowed


# ---- the fetcher inside WeasyPrint ---------------------------------------------------------


def test_weasyprint_loads_assets_but_skips_everything_else(
    fetcher: AssetURLFetcher, assets: Path, tmp_path: Path, quiet_weasyprint: None
) -> None:
    secret = (tmp_path / "secret.css").as_uri()
    html = f"""<html><head>
      <link rel="stylesheet" href="ok.css">
      <link rel="stylesheet" href="{secret}">
      <link rel="attachment" href="file:///etc/passwd">
      <style>@import url("{secret}");</style>
    </head><body>
      <p style="background: url(file:///etc/passwd)">body text</p>
      <img src="http://127.0.0.1:9/pixel.png" alt="">
    </body></html>"""
    pdf = HTML(string=html, base_url=assets.as_uri() + "/", url_fetcher=fetcher).write_pdf()
    text = pdf_text(pdf)
    assert "ASSET-CSS-APPLIED" in text  # allowed asset, relative to base_url
    assert "SECRET-LEAKED" not in text
    assert "root:x:0:0" not in text
    with pikepdf.open(io.BytesIO(pdf)) as document:
        assert len(document.attachments) == 0  # rel=attachment was refused


# ---- escaping ---------------------------------------------------------------------------


def test_invoice_data_is_escaped_in_html() -> None:
    html = render_html([make_invoice(buyer_name=HOSTILE)])
    assert HOSTILE not in html
    assert "&lt;img src=&#34;file:///etc/passwd&#34;&gt;" in html


def test_markup_in_invoice_data_prints_as_text(tmp_path: Path) -> None:
    renderer = PdfRenderer()
    fetched: list[str] = []
    original = renderer.url_fetcher.fetch

    def spy(url: str, headers: dict[str, str] | None = None) -> object:
        fetched.append(url)
        return original(url, headers)

    renderer.url_fetcher.fetch = spy  # type: ignore[method-assign]
    result = renderer.render_batch([make_invoice("INV-S-2", buyer_name=HOSTILE)])
    assert result.errors == {}
    text = "".join(pdf_text(result.pdfs["INV-S-2"]).split())
    assert "".join(HOSTILE.split()) in text
    assert fetched == []  # nothing in the invoice made WeasyPrint fetch anything


# ---- number formatting and text direction ---------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0"), "0.00"),
        (Decimal("1234567.891"), "1,234,567.89"),
        (Decimal("2.345"), "2.35"),  # half away from zero, not banker's rounding
        (Decimal("-2.345"), "-2.35"),
        (Decimal("1E+3"), "1,000.00"),
        (12, "12.00"),
    ],
)
def test_format_money(value: Decimal, expected: str) -> None:
    assert format_money(value) == expected


def test_format_price_and_quantity() -> None:
    assert format_price(Decimal("1234.5")) == "1,234.50"
    assert format_price(Decimal("0.125")) == "0.125"
    assert format_quantity(Decimal("2.500")) == "2.5"
    assert format_quantity(Decimal("1E+3")) == "1,000"
    assert format_quantity(Decimal("7.00")) == "7"


@pytest.mark.parametrize("bad", [1.5, "1.5", None, True, Decimal("NaN"), Decimal("Infinity")])
def test_money_formatting_refuses_non_decimals(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        format_money(bad)


def test_text_direction_follows_first_strong_character() -> None:
    assert text_direction("شركة الرياض للتجارة") == "rtl"
    assert text_direction("123 شارع الملك فهد") == "rtl"  # digits are not strong
    assert text_direction("บริษัท สยามการค้า จำกัด") == "ltr"
    assert text_direction("Acme شركة") == "ltr"
    assert text_direction("") == "ltr"


# ---- what invoice data may put on the page ---------------------------------------------------


def test_printable_text_drops_controls_and_bidi_overrides_only() -> None:
    assert printable_text("A\x00B\x07C\x0bD\x1b[31mE\x7fF\x85G") == "ABCD[31mEFG"
    assert printable_text("Evil \u202egnp.exe") == "Evil gnp.exe"  # RLO
    assert printable_text("\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069x") == "x"
    assert printable_text("x\ufffe\uffffy") == "xy"  # not valid in XML
    kept = "tab\tnew\nline\r ZW\u200b\u200c\u200dJ \ufeff น้ำ ศักดิ์ \u200e\u200f שלום"
    assert printable_text(kept) == kept


def test_template_output_is_clean_xml_whatever_the_data() -> None:
    nasty = "Bad\x00\x01\x1b\u202e Corp\ufffe <b>&amp;</b> ]]> <!ENTITY x 'y'>"
    invoice = make_invoice("INV-X\x0c1", buyer_name=nasty)
    html = render_html([invoice])
    root = ElementTree.fromstring(html)  # well-formed (the renderer parses it as XML)
    assert "Bad Corp <b>&amp;</b> ]]> <!ENTITY x 'y'>" in "".join(root.itertext())
    assert "\x00" not in html and "\u202e" not in html
    assert 'data-number="INV-X1"' in html


def test_invoice_limits_name_the_field() -> None:
    check_invoice_limits(make_invoice(buyer_name="x" * MAX_TEXT_CHARS))  # at the limit: ok
    with pytest.raises(ValueError, match=r"^buyer\.name is 2,001 characters long; at most 2,000"):
        check_invoice_limits(make_invoice(buyer_name="x" * (MAX_TEXT_CHARS + 1)))
    invoice = make_invoice()
    long_line = replace(invoice.lines[0], description="y" * 5000)
    with pytest.raises(ValueError, match=r"^lines\[0\]\.description is 5,000 characters"):
        check_invoice_limits(replace(invoice, lines=(long_line,)))
    long_city = replace(invoice.seller, address=replace(invoice.seller.address, city="z" * 3000))
    with pytest.raises(ValueError, match=r"^seller\.address\.city is 3,000"):
        check_invoice_limits(replace(invoice, seller=long_city))
    many = replace(invoice, lines=invoice.lines * (MAX_LINES + 1))
    with pytest.raises(ValueError, match="1,001 lines; at most 1,000"):
        check_invoice_limits(many)


def test_oversized_invoice_is_refused_with_its_reason_before_layout() -> None:
    renderer = PdfRenderer()
    result = renderer.render_batch(
        [make_invoice("BIG", buyer_name="n" * 1_000_000), make_invoice("OK")]
    )
    assert set(result.pdfs) == {"OK"}
    assert result.errors["BIG"].startswith("ValueError: buyer.name is 1,000,000 characters")
