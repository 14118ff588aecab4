"""Invoice PDFs rendered for real: a batch is laid out once and split per invoice.

Text is read back with poppler's ``pdftotext``, as a buyer's system would. Thai comes out
exactly as written (SARA AM, tone marks and all): every line of text that contains Thai
carries an ``/ActualText`` with its logical text (see ``courier/documents/pdf.py``), which
poppler uses instead of the glyphs. Without it, HarfBuzz's NIKHAHIT + SARA AA glyphs made
``จำกัด`` extract as ``จากัด`` and marks drawn with a vertical offset landed out of order.

Arabic is still compared word by word after :func:`fold` (pdftotext emits bidi controls
around right-to-left runs and may put words in visual order). That a real glyph was drawn
for every character is checked separately: WeasyPrint logs a warning for each ``.notdef``
glyph, and there must be none.
"""

from __future__ import annotations

import io
import logging
import re
import shutil
import subprocess
import unicodedata
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from weasyprint import HTML

from courier.documents import pdf as pdf_module
from courier.documents.pdf import BatchResult, PdfRenderer, RenderError, install_actual_text_hook
from courier.documents.thai_text import baht_text
from courier.domain import Address, Invoice, InvoiceLine, Party
from courier.sample_data import generate_invoices
from tests.support.pdf import page_count, pdf_text

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext")

BKK = timezone(timedelta(hours=7))
RIYADH = timezone(timedelta(hours=3))

THAI_BUYER = "บริษัท สยามการค้า จำกัด"
ARABIC_BUYER = "شركة الرياض للتجارة"
LATIN_BUYER = "Nordic Fjord Supplies AB"

SELLER = Party(
    "บริษัท คูเรียร์ เทรดดิ้ง จำกัด",
    Address(
        "99/123 ถนนสุขุมวิท",
        "10110",
        "TH",
        line2="แขวงคลองเตยเหนือ",
        city="เขตวัฒนา",
        province="กรุงเทพมหานคร",
    ),
    tax_id="0105558000001",
)


def make_invoice(
    number: str,
    buyer_name: str,
    *,
    lines: int = 3,
    address: Address | None = None,
    description: str = "ค่าบริการจัดส่ง delivery service",
) -> Invoice:
    buyer = Party(
        buyer_name,
        address or Address("1 Main Road", "10200", "TH", city="Bangkok"),
        tax_id="0105551234567",
        branch="00001",
    )
    return Invoice(
        number=number,
        seller=SELLER,
        buyer=buyer,
        buyer_phone_raw="0812345678",
        issued_at=datetime(2025, 1, 31, 10, 0, tzinfo=BKK),
        due_date=date(2025, 3, 2),
        currency="THB",
        vat_rate=Decimal("7"),
        lines=tuple(
            InvoiceLine(
                i,
                f"SKU-{i:04d}",
                f"{description} #{i}",
                Decimal("2.5") if i % 2 else Decimal("1"),
                Decimal("1234.50") + i,
            )
            for i in range(1, lines + 1)
        ),
    )


BATCH = [
    make_invoice("TH-2025-0001", THAI_BUYER),
    make_invoice(
        "SA-2025-0002",
        ARABIC_BUYER,
        address=Address("شارع الملك فهد 123، حي العليا", "12211", "SA", city="الرياض"),
        description="خدمات توصيل",
    ),
    make_invoice("EU-2025-0003", LATIN_BUYER, address=Address("Storgatan 1", "11122", "SE")),
    make_invoice("LONG-2025-0004", "บริษัท ยาวมาก จำกัด (มหาชน)", lines=60),
    make_invoice("MIX-2025-0005", "Acme (Thailand) Co., Ltd. / บริษัท แอคมี่"),
]
EXPECTED_PAGES = {
    "TH-2025-0001": 1,
    "SA-2025-0002": 1,
    "EU-2025-0003": 1,
    "MIX-2025-0005": 1,
}

_BIDI_CONTROLS = dict.fromkeys(
    map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)


def fold(text: str) -> str:
    """Base letters in order: no whitespace, bidi controls or combining marks."""
    text = unicodedata.normalize("NFC", text).translate(_BIDI_CONTROLS)
    return "".join(
        char for char in text if not char.isspace() and unicodedata.category(char) != "Mn"
    )


def contains_words(extracted: str, phrase: str) -> bool:
    """Every word of ``phrase`` is in ``extracted``, in logical or visual (reversed) order."""
    haystack = fold(extracted)
    return all(fold(word) in haystack or fold(word)[::-1] in haystack for word in phrase.split())


@pytest.fixture(scope="module")
def renderer() -> PdfRenderer:
    return PdfRenderer()


@pytest.fixture(scope="module")
def batch(renderer: PdfRenderer) -> tuple[BatchResult, list[str]]:
    """The batch result and the messages of WeasyPrint's warnings while rendering it."""
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    logger = logging.getLogger("weasyprint")
    logger.addHandler(handler)
    try:
        result = renderer.render_batch(BATCH)
    finally:
        logger.removeHandler(handler)
    return result, records


def test_batch_gives_one_pdf_per_invoice(batch: tuple[BatchResult, list[str]]) -> None:
    result, _ = batch
    assert result.errors == {}
    assert set(result.pdfs) == {invoice.number for invoice in BATCH}
    for number, pdf in result.pdfs.items():
        assert pdf.startswith(b"%PDF-")
        if number in EXPECTED_PAGES:
            assert page_count(pdf) == EXPECTED_PAGES[number], number
    assert page_count(result.pdfs["LONG-2025-0004"]) >= 2


def test_every_character_had_a_glyph(batch: tuple[BatchResult, list[str]]) -> None:
    _, warnings = batch
    assert [message for message in warnings if ".notdef" in message] == []


@pytest.mark.parametrize("invoice", BATCH, ids=lambda invoice: invoice.number)
def test_each_pdf_holds_its_own_invoice_only(
    batch: tuple[BatchResult, list[str]], invoice: Invoice, tmp_path: Path
) -> None:
    result, _ = batch
    text = pdf_text(result.pdfs[invoice.number])
    assert invoice.number in text
    assert contains_words(text, invoice.buyer.name), text
    for other in BATCH:
        if other.number != invoice.number:
            assert other.number not in text
    assert f"{invoice.grand_total:,.2f}" in text


def test_scripts_come_out_as_written(batch: tuple[BatchResult, list[str]], tmp_path: Path) -> None:
    result, _ = batch
    thai = pdf_text(result.pdfs["TH-2025-0001"])
    assert THAI_BUYER in thai.splitlines()  # exactly, as its own line
    assert SELLER.name in thai.splitlines()
    # Arabic: shaped letters map back to the original characters, each word intact.
    arabic = pdf_text(result.pdfs["SA-2025-0002"])
    for word in (*ARABIC_BUYER.split(), "الملك", "فهد", "العليا", "خدمات", "توصيل"):
        assert contains_words(arabic, word), word
    assert "ﺷ" not in arabic and "ﺮ" not in arabic  # no presentation forms leaked


def test_multi_page_invoice_numbers_its_pages_and_repeats_the_header(
    batch: tuple[BatchResult, list[str]], tmp_path: Path
) -> None:
    result, _ = batch
    pdf = result.pdfs["LONG-2025-0004"]
    pages = page_count(pdf)
    text = pdf_text(pdf)
    assert re.findall(r"Page (\d+)", text) == [str(n) for n in range(1, pages + 1)]
    page_texts = text.split("\f")[:pages]
    for page_text in page_texts:
        assert "LONG-2025-0004" in page_text  # footer on every page
        if "SKU-" in page_text:
            assert "Unit price" in page_text  # table header repeated with the rows
    assert "#60" in text and "Grand total" in text


@pytest.mark.parametrize("number", ["SA-2025-0002", "LONG-2025-0004", "MIX-2025-0005"])
def test_alone_or_in_a_batch_gives_the_same_document(
    renderer: PdfRenderer, batch: tuple[BatchResult, list[str]], number: str, tmp_path: Path
) -> None:
    result, _ = batch
    invoice = next(invoice for invoice in BATCH if invoice.number == number)
    alone = renderer.render_one(invoice)
    in_batch = result.pdfs[number]
    assert page_count(alone) == page_count(in_batch)
    assert pdf_text(alone) == pdf_text(in_batch)


def test_bad_invoices_do_not_sink_the_batch(renderer: PdfRenderer, tmp_path: Path) -> None:
    good_a = make_invoice("OK-A", LATIN_BUYER)
    # A float price: refused by the template's money filter (before layout).
    float_price = make_invoice("BAD-FLOAT", LATIN_BUYER)
    float_price = replace(
        float_price,
        lines=(replace(float_price.lines[0], unit_price=12.5),),  # type: ignore[arg-type]
    )
    # A lone surrogate (json.loads('"\\ud800"') makes one): would crash WeasyPrint's layout.
    surrogate = make_invoice("BAD-SURROGATE", "Broken \ud800 Name")
    good_b = make_invoice("OK-B", THAI_BUYER, lines=60)
    unknown_type = replace(make_invoice("BAD-TYPE", LATIN_BUYER), type_code="999")

    result = renderer.render_batch([good_a, float_price, surrogate, good_b, unknown_type])

    assert set(result.pdfs) == {"OK-A", "OK-B"}
    assert set(result.errors) == {"BAD-FLOAT", "BAD-SURROGATE", "BAD-TYPE"}
    assert "float" in result.errors["BAD-FLOAT"]
    assert "surrogate" in result.errors["BAD-SURROGATE"]
    assert "999" in result.errors["BAD-TYPE"]
    assert page_count(result.pdfs["OK-A"]) == 1
    assert page_count(result.pdfs["OK-B"]) >= 2
    assert "OK-B" in pdf_text(result.pdfs["OK-B"])

    with pytest.raises(RenderError) as raised:
        renderer.render_one(surrogate)
    assert raised.value.invoice_number == "BAD-SURROGATE"
    assert "surrogate" in raised.value.reason


def test_a_layout_crash_is_isolated_by_bisection(
    renderer: PdfRenderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If WeasyPrint fails on a batch, halves are retried until the culprit is alone."""
    real_parse = pdf_module._InvoiceHTML.parse
    layouts: list[int] = []

    def fragile_parse(document: str, *args: Any) -> Any:
        layouts.append(document.count('<section class="invoice"'))
        if "POISON-PILL" in document:
            raise RuntimeError("layout exploded")
        return real_parse(document, *args)

    monkeypatch.setattr(pdf_module._InvoiceHTML, "parse", fragile_parse)
    invoices = [make_invoice(f"BIS-{i}", LATIN_BUYER) for i in range(8)]
    invoices[5] = make_invoice("BIS-5", "POISON-PILL Trading")

    result = renderer.render_batch(invoices)

    assert result.errors == {"BIS-5": "RuntimeError: layout exploded"}
    assert set(result.pdfs) == {f"BIS-{i}" for i in range(8) if i != 5}
    # 8 fails -> [0-3] ok, [4-7] fails -> [4,5] fails -> [4] ok, [5] fails -> [6,7] ok
    assert layouts == [8, 4, 4, 2, 1, 1, 2]


def test_duplicate_invoice_numbers_are_refused(renderer: PdfRenderer) -> None:
    first = make_invoice("DUP-1", LATIN_BUYER)
    second = make_invoice("DUP-1", THAI_BUYER)
    result = renderer.render_batch([first, make_invoice("UNIQUE-1", LATIN_BUYER), second])
    assert set(result.pdfs) == {"UNIQUE-1"}
    assert "2 times" in result.errors["DUP-1"]


def test_hostile_fields_print_as_text_and_fetch_nothing(
    renderer: PdfRenderer, tmp_path: Path
) -> None:
    payload_address = (
        '<div style="background:url(file:///etc/passwd)">x</div>'
        '<link rel="stylesheet" href="file:///etc/passwd">'
    )
    hostile = make_invoice(
        "HOSTILE-1",
        '<style>@import url("file:///etc/passwd");</style>Evil Corp',
        address=Address(payload_address, "10200", "TH", line2="<script>alert(1)</script>"),
        description='<link rel="attachment" href="file:///etc/passwd">',
    )
    fetched: list[str] = []
    original = renderer.url_fetcher.fetch

    def spy(url: str, headers: dict[str, str] | None = None) -> object:
        fetched.append(url)
        return original(url, headers)

    renderer.url_fetcher.fetch = spy  # type: ignore[method-assign]
    try:
        result = renderer.render_batch([hostile])
    finally:
        del renderer.url_fetcher.fetch
    assert result.errors == {}
    pdf = result.pdfs["HOSTILE-1"]
    text = pdf_text(pdf)
    assert "root:x:0:0" not in text
    assert "url(file:///etc/passwd)" in "".join(text.split())  # printed, not fetched
    assert fetched == []
    with pikepdf.open(io.BytesIO(pdf)) as document:
        assert len(document.attachments) == 0


# ---- Thai text extraction -----------------------------------------------------------------

#: SARA AM after a consonant (จำ), after a tone mark (น้ำ, ค่ำ), stacked marks (ศักดิ์สิทธิ์).
THAI_NAMES = [
    "บริษัท สยามการค้า จำกัด",
    "ห้างหุ้นส่วนจำกัด น้ำใจ ค้าวัสดุ",
    "คุณกำไร ศักดิ์สิทธิ์",
    "บริษัท ทองคำ เทรดดิ้ง จำกัด (มหาชน)",
    "ร้านข้าวมันไก่ ค่ำนี้",
]


def without_whitespace(text: str) -> str:
    return "".join(text.split())


def actual_texts(pdf: bytes) -> list[str]:
    """The ``/ActualText`` of every marked-content span on every page."""
    texts = []
    with pikepdf.open(io.BytesIO(pdf)) as document:
        for page in document.pages:
            for instruction in pikepdf.parse_content_stream(page):
                operands = instruction.operands
                if instruction.operator == pikepdf.Operator("BDC") and "/ActualText" in operands[1]:
                    texts.append(str(operands[1].ActualText))
    return texts


def test_thai_names_extract_exactly(renderer: PdfRenderer, tmp_path: Path) -> None:
    invoices = [make_invoice(f"THAI-{i}", name) for i, name in enumerate(THAI_NAMES)]
    result = renderer.render_batch(invoices)
    assert result.errors == {}
    for invoice in invoices:
        lines = pdf_text(result.pdfs[invoice.number]).splitlines()
        assert invoice.buyer.name in lines
        assert SELLER.name in lines
        assert "ผู้ซื้อ / BUYER" in lines  # text-transform: uppercase, Thai untouched
        assert "จำนวนเงินรวมทั้งสิ้น / Grand total" in lines


def test_sample_invoices_extract_their_thai_text_exactly(
    renderer: PdfRenderer, tmp_path: Path
) -> None:
    """Every Thai name and address of a night's sample, character for character (a long
    name may wrap: compared without whitespace, every mark and SARA AM must be there)."""
    invoices = [i for i in generate_invoices(40) if i.buyer.country == "TH"]
    result = renderer.render_batch(invoices)
    assert result.errors == {}
    for invoice in invoices:
        text = without_whitespace(pdf_text(result.pdfs[invoice.number]))
        for expected in (invoice.buyer.name, invoice.seller.name, invoice.buyer.address.line1):
            assert without_whitespace(expected) in text, (invoice.number, expected)
        for line in invoice.lines:
            assert without_whitespace(line.description) in text


def test_thai_lines_carry_their_logical_text(batch: tuple[BatchResult, list[str]]) -> None:
    result, _ = batch
    thai = actual_texts(result.pdfs["TH-2025-0001"])
    assert THAI_BUYER in thai
    footer = "ใบกำกับภาษี / Tax Invoice TH-2025-0001 — หน้า / Page 1"
    assert footer in thai  # the footer (a page margin box) too
    assert "TH-2025-0001" not in thai  # Latin-only lines are left alone
    arabic = actual_texts(result.pdfs["SA-2025-0002"])
    assert not [text for text in arabic if "ش" in text]  # and so are right-to-left ones


def test_actual_text_is_only_added_to_courier_pdfs(renderer: PdfRenderer) -> None:
    assert install_actual_text_hook()
    plain = HTML(string='<p style="font-family: Noto Sans Thai">บริษัท จำกัด</p>').write_pdf()
    assert actual_texts(plain) == []


# ---- amount in words ------------------------------------------------------------------------


def test_thb_invoices_print_the_grand_total_in_thai_words(
    renderer: PdfRenderer, tmp_path: Path
) -> None:
    baht = make_invoice("WORDS-THB", THAI_BUYER)
    riyal = replace(make_invoice("WORDS-SAR", ARABIC_BUYER), currency="SAR")
    result = renderer.render_batch([baht, riyal])
    assert result.errors == {}
    words = baht_text(baht.grand_total)
    assert words.endswith("สตางค์") or words.endswith("ถ้วน")
    assert f"(ตัวอักษร) {words}" in pdf_text(result.pdfs["WORDS-THB"]).splitlines()
    assert "ตัวอักษร" not in pdf_text(result.pdfs["WORDS-SAR"])


# ---- what makes it fast changes nothing on the page ------------------------------------------


def rasters(pdf: bytes, tmp_path: Path, name: str) -> list[bytes]:
    source = tmp_path / f"{name}.pdf"
    source.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(source), str(tmp_path / name)], check=True)
    return [page.read_bytes() for page in sorted(tmp_path.glob(f"{name}-*.png"))]


def test_xml_parsing_is_used_and_matches_the_html5_parser(
    renderer: PdfRenderer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert pdf_module._xml_parse_supported()  # the fast path runs with this WeasyPrint
    invoices = BATCH[:4]
    fast = renderer.render_batch(invoices)
    monkeypatch.setattr(pdf_module, "_xml_parse_supported", lambda: False)
    html5 = renderer.render_batch(invoices)
    assert fast.errors == html5.errors == {}
    for invoice in invoices:
        number = invoice.number
        assert rasters(fast.pdfs[number], tmp_path, f"x{number}") == rasters(
            html5.pdfs[number], tmp_path, f"h{number}"
        )


def test_lean_user_agent_stylesheet_changes_nothing_on_the_page(
    renderer: PdfRenderer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """invoice.css does not rely on ua.css: WeasyPrint's own sheet gives the same pixels."""
    lean = renderer.render_batch(BATCH)
    monkeypatch.setattr(
        pdf_module._InvoiceHTML,
        "_ua_stylesheets",
        lambda self, forms=False: HTML._ua_stylesheets(self, forms),
    )
    stock = renderer.render_batch(BATCH)
    for invoice in BATCH:
        number = invoice.number
        assert rasters(lean.pdfs[number], tmp_path, f"l{number}") == rasters(
            stock.pdfs[number], tmp_path, f"s{number}"
        ), number


def test_each_pdf_embeds_only_the_fonts_it_uses(batch: tuple[BatchResult, list[str]]) -> None:
    """The batch shares one resource dictionary; a Latin invoice's PDF gets no Thai or
    Arabic glyphs from its neighbours."""

    def font_families(pdf: bytes) -> set[str]:
        with pikepdf.open(io.BytesIO(pdf)) as document:
            return {
                str(font.DescendantFonts[0].FontDescriptor.FontFamily)
                for page in document.pages
                for font in page.Resources.Font.values()
            }

    result, _ = batch
    assert not any("Arabic" in family for family in font_families(result.pdfs["TH-2025-0001"]))
    assert any("Arabic" in family for family in font_families(result.pdfs["SA-2025-0002"]))


@pytest.mark.parametrize("number", ["TH-2025-0001", "SA-2025-0002", "LONG-2025-0004"])
def test_a_pdf_carries_the_same_resources_alone_or_in_a_batch(
    renderer: PdfRenderer, batch: tuple[BatchResult, list[str]], number: str
) -> None:
    """Fonts, drawings (form XObjects) and graphics states: an invoice's PDF has as many
    of each, and the same fonts, however many neighbours its batch had."""

    def resources(pdf: bytes) -> dict[str, Any]:
        with pikepdf.open(io.BytesIO(pdf)) as document:
            found: dict[str, Any] = {}
            for page in document.pages:
                for category in ("/Font", "/XObject", "/ExtGState"):
                    entries = page.Resources.get(category, {})
                    found.setdefault(category, set()).update(
                        str(entry.get("/BaseFont", "")) if category == "/Font" else name
                        for name, entry in entries.items()
                    )
            return {
                "fonts": {font.split("+", 1)[-1] for font in found["/Font"]},
                "xobjects": len(found["/XObject"]),
                "states": len(found["/ExtGState"]),
            }

    result, _ = batch
    invoice = next(invoice for invoice in BATCH if invoice.number == number)
    alone, in_batch = resources(renderer.render_one(invoice)), resources(result.pdfs[number])
    assert alone == in_batch
    assert alone["fonts"]  # the check sees resources at all


def _two_page_batch(form_resources: bool) -> pikepdf.Pdf:
    """Two pages sharing one resource dictionary (as WeasyPrint writes a batch): page 1
    draws with font F1 and form X1, page 2 with F2 and X2."""
    pdf = pikepdf.new()
    fonts = {
        name: pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, BaseFont=name))
        for name in ("/F1", "/F2")
    }
    forms = {}
    for name in ("/X1", "/X2"):
        form = pikepdf.Stream(pdf, b"0 0 1 1 re f")
        form.Type, form.Subtype = pikepdf.Name.XObject, pikepdf.Name.Form
        form.BBox = [0, 0, 1, 1]
        if form_resources:
            form.Resources = pikepdf.Dictionary()
        forms[name] = pdf.make_indirect(form)
    shared = pdf.make_indirect(
        pikepdf.Dictionary(Font=pikepdf.Dictionary(fonts), XObject=pikepdf.Dictionary(forms))
    )
    for font, form in (("/F1", "/X1"), ("/F2", "/X2")):
        contents = pikepdf.Stream(pdf, f"BT {font} 9 Tf (x) Tj ET {form} Do".encode())
        page = pikepdf.Dictionary(
            Type=pikepdf.Name.Page, MediaBox=[0, 0, 10, 10], Contents=contents, Resources=shared
        )
        pdf.pages.append(pikepdf.Page(page))
    return pdf


def test_trimming_keeps_exactly_what_each_page_names() -> None:
    source = _two_page_batch(form_resources=True)
    assert pdf_module._trim_resources(source, source.pages[1:2])
    assert pdf_module._trim_resources(source, source.pages[0:1])
    first, second = (page.obj.Resources for page in source.pages)
    assert set(first.Font.keys()) == {"/F1"} and set(first.XObject.keys()) == {"/X1"}
    assert set(second.Font.keys()) == {"/F2"} and set(second.XObject.keys()) == {"/X2"}


def test_trimming_gives_up_on_forms_drawn_with_the_page_resources() -> None:
    """A form without resources of its own uses the page's: its content could name any
    of them, so nothing is trimmed (qpdf trims the copy instead)."""
    source = _two_page_batch(form_resources=False)
    shared = source.pages[0].obj.Resources.objgen
    assert not pdf_module._trim_resources(source, source.pages[0:1])
    assert source.pages[0].obj.Resources.objgen == shared
