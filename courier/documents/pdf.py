"""Invoice PDFs with WeasyPrint: one layout per batch, split into one PDF per invoice.

Why batches: nearly all of WeasyPrint's cost per document is subsetting the embedded fonts
(fontTools), which happens once per ``write_pdf``. So :class:`PdfRenderer` lays out a whole
batch as *one* HTML document (each invoice a ``<section>`` starting on a new page), writes
it once, and cuts the result into one PDF per invoice with pikepdf, using the page on which
each section's anchor (``id="inv-N"``) first appears. A multi-page invoice stays whole, and
an invoice gets the same pages and text whether it is rendered alone or in a batch (its
page numbers restart at 1, see ``invoice.css``).

API::

    renderer = PdfRenderer()                 # build once, reuse (not thread-safe)
    result = renderer.render_batch(invoices)  # -> BatchResult
    result.pdfs["INV-001"]                    # PDF bytes
    result.errors["INV-002"]                  # why that invoice has no PDF
    renderer.render_one(invoice)              # -> bytes, or raises RenderError
    renderer.render_html(invoices)            # the HTML WeasyPrint lays out (pure)

Every distinct invoice number of the batch ends up in exactly one of ``pdfs``/``errors``.
One bad invoice never sinks the others: template errors (a float amount, an unknown
document type code, text that is not valid Unicode...) are caught per invoice before
layout, and if layout or PDF writing still fails for the batch, the batch is split in
halves and retried until the failing invoices are isolated and rendered alone (the good
ones are still rendered in groups, so this costs a few extra layouts, not one per invoice).
Two invoices with the same number are both refused: which PDF would be the right one?

Safety: templates are autoescaped, and WeasyPrint fetches resources only through
:class:`AssetURLFetcher`, which allows ``data:`` URLs and files inside
``courier/documents/assets/`` and refuses everything else (other files, http(s), ftp...),
so WeasyPrint skips the resource. Money is ``Decimal`` end to end; no float is formatted.

Known limitation (WeasyPrint/HarfBuzz, not this module): HarfBuzz draws Thai SARA AM
(``ำ``) as NIKHAHIT + SARA AA glyphs, and a PDF maps each glyph to one text, so text
*extracted* from the PDF (copy/paste, search, ``pdftotext``) reads ``า`` for ``ำ`` and may
drop a tone mark before it. The printed page is correct.
"""

from __future__ import annotations

import functools
import io
import itertools
import logging
import mimetypes
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import pikepdf
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse, path2url

from courier.domain import Address, Invoice

DOCUMENTS_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = DOCUMENTS_DIR / "templates"
ASSETS_DIR = DOCUMENTS_DIR / "assets"
TEMPLATE_NAME = "invoice.html.j2"
STYLESHEET_NAME = "invoice.css"

#: Title printed for each ETDA document type code (Thai / English). Other codes are refused
#: rather than printed as something they are not (e.g. a credit note titled "Tax Invoice").
DOCUMENT_TITLES: dict[str, str] = {
    "388": "ใบกำกับภาษี / Tax Invoice",
    "T02": "ใบแจ้งหนี้/ใบกำกับภาษี / Invoice/Tax Invoice",
    "T03": "ใบเสร็จรับเงิน/ใบกำกับภาษี / Receipt/Tax Invoice",
    "T04": "ใบส่งของ/ใบกำกับภาษี / Delivery Order/Tax Invoice",
}

_CENT = Decimal("0.01")
_LOG = logging.getLogger(__name__)


class RenderError(Exception):
    """One invoice could not be rendered."""

    def __init__(self, invoice_number: str, reason: str) -> None:
        self.invoice_number = invoice_number
        self.reason = reason
        super().__init__(f"invoice {invoice_number!r}: {reason}")


class URLRefusedError(ValueError):
    """A resource URL outside what invoices may load (WeasyPrint logs it and skips it)."""


@dataclass(frozen=True)
class BatchResult:
    """Outcome of :meth:`PdfRenderer.render_batch`.

    ``pdfs`` maps invoice number -> PDF bytes; ``errors`` maps invoice number -> reason.
    Each distinct invoice number of the batch is in exactly one of the two.
    """

    pdfs: dict[str, bytes] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


# ---- resource fetching ------------------------------------------------------------------


class AssetURLFetcher(URLFetcher):
    """WeasyPrint URL fetcher that allows only ``data:`` URLs and files under ``assets_dir``.

    Anything else raises :class:`URLRefusedError`; WeasyPrint catches it, logs it and
    renders without the resource. Symlinks and ``..`` are resolved before the check.
    """

    def __init__(self, assets_dir: Path = ASSETS_DIR) -> None:
        # The parent only ever handles data: URLs (see fetch); no redirects, short timeout.
        super().__init__(timeout=5, allowed_protocols=("data",), allow_redirects=False)
        self.assets_dir = assets_dir.resolve()

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> Any:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == "file":
            path = self._asset_path(url)
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(
                url, path.read_bytes(), headers={"Content-Type": content_type}
            )
        raise URLRefusedError(f"refused to fetch {url[:200]!r}: only data: URLs and assets")

    def _asset_path(self, url: str) -> Path:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise URLRefusedError(f"refused to fetch {url[:200]!r}: remote file URL")
        try:
            path = Path(url2pathname(unquote(parts.path))).resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise URLRefusedError(f"refused to fetch {url[:200]!r}: {exc}") from None
        if not path.is_relative_to(self.assets_dir) or not path.is_file():
            raise URLRefusedError(f"refused to fetch {url[:200]!r}: not an invoice asset")
        return path


# ---- template filters (Decimal in, text out; floats are refused) -------------------------


def _decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    raise TypeError(f"expected a Decimal amount, got {type(value).__name__} {value!r}")


def format_money(value: object) -> str:
    """``Decimal("1234567.891")`` -> ``"1,234,567.89"`` (cents rounded half away from zero)."""
    amount = _decimal(value)
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {amount!r}")
    return f"{amount.quantize(_CENT, rounding=ROUND_HALF_UP):,.2f}"


def format_price(value: object) -> str:
    """A unit price: at least 2 decimals, more only if the price has them (``0.125``)."""
    amount = _decimal(value)
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {amount!r}")
    exponent = amount.normalize().as_tuple().exponent
    decimals = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{amount:,.{decimals}f}"


def format_quantity(value: object) -> str:
    """A quantity or rate, no trailing zeros: ``2.500`` -> ``"2.5"``, ``1E+3`` -> ``"1,000"``."""
    amount = _decimal(value)
    if not amount.is_finite():
        raise ValueError(f"not a finite number: {amount!r}")
    if amount == amount.to_integral_value():
        return f"{amount.quantize(Decimal(1)):,f}"
    return f"{amount.normalize():,f}"


def format_date(value: object) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"expected a date, got {type(value).__name__} {value!r}")


def text_direction(value: object) -> str:
    """``"rtl"`` or ``"ltr"`` from the first strong character, as ``dir="auto"`` would.

    WeasyPrint ignores ``dir="auto"`` and ``unicode-bidi``, so the template writes the
    direction explicitly: an Arabic name then renders (and aligns) right to left.
    """
    for char in str(value):
        bidi = unicodedata.bidirectional(char)
        if bidi in ("R", "AL"):
            return "rtl"
        if bidi == "L":
            return "ltr"
    return "ltr"


def address_lines(address: Address) -> list[str]:
    """Printable lines of an address, skipping empty parts."""
    place = " ".join(part for part in (address.city, address.province) if part.strip())
    last = " ".join(part for part in (place, address.postcode, address.country) if part.strip())
    return [line for line in (address.line1, address.line2, last) if line.strip()]


def document_title(type_code: str) -> str:
    try:
        return DOCUMENT_TITLES[type_code]
    except KeyError:
        raise ValueError(f"unsupported document type code {type_code!r}") from None


def make_environment(templates_dir: Path = TEMPLATES_DIR) -> Environment:
    """The Jinja2 environment of the invoice template (autoescaped, strict undefined)."""
    env = Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    filters: dict[str, Callable[..., Any]] = {
        "money": format_money,
        "price": format_price,
        "quantity": format_quantity,
        "percent": format_quantity,
        "isodate": format_date,
        "text_dir": text_direction,
        "address_lines": address_lines,
        "document_title": document_title,
    }
    env.filters.update(filters)
    return env


# ---- HTML -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Section:
    """One invoice's rendered body, wrapped in its ``<section>`` by the document template."""

    invoice: Invoice
    title: str
    body: Markup

    @property
    def number(self) -> str:
        return self.invoice.number


class _Template:
    """The invoice template: one body per invoice, bodies joined into a document."""

    def __init__(self, env: Environment) -> None:
        self._template = env.get_template(TEMPLATE_NAME)
        module: Any = self._template.make_module({"sections": [], "title": ""})
        # A macro called from Python returns Markup (autoescaped output) in this environment.
        self._invoice_body: Callable[[Invoice, str], Markup] = module.invoice_body

    def section(self, invoice: Invoice) -> _Section:
        """Render one invoice; raises :class:`RenderError` naming the invoice."""
        try:
            title = document_title(invoice.type_code)
            body = self._invoice_body(invoice, title)
        except Exception as exc:
            raise RenderError(invoice.number, _describe(exc)) from exc
        try:
            # Lone surrogates (json.loads('"\\ud800"') makes them) crash WeasyPrint's
            # layout; refuse them here, where it costs nothing and names the invoice.
            body.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start]
            raise RenderError(
                invoice.number,
                f"invoice data contains U+{ord(bad):04X}, a lone surrogate (not valid text)",
            ) from None
        return _Section(invoice, title, body)

    def document(self, sections: Sequence[_Section]) -> str:
        """The HTML document: section ``i`` gets ``id="inv-i"``."""
        if len(sections) == 1:
            title = f"{sections[0].title} {sections[0].number}"
        else:
            title = f"{len(sections)} invoices"
        return self._template.render(sections=sections, title=title)


@functools.cache
def _default_template() -> _Template:
    return _Template(make_environment())


def render_html(invoices: Sequence[Invoice]) -> str:
    """The HTML document for ``invoices`` (no I/O beyond loading the template).

    Raises :class:`RenderError` for the first invoice whose data the template rejects.
    The stylesheet is not linked: :class:`PdfRenderer` passes it to WeasyPrint pre-parsed.
    """
    return _html(_default_template(), invoices)


def _html(template: _Template, invoices: Sequence[Invoice]) -> str:
    return template.document([template.section(invoice) for invoice in invoices])


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ---- PDF --------------------------------------------------------------------------------


class PdfRenderer:
    """Renders invoices to PDF. Build once and reuse: it holds the Jinja2 environment, the
    parsed stylesheet and one WeasyPrint ``FontConfiguration``. Not thread-safe: use one
    renderer per thread or process.
    """

    def __init__(self, assets_dir: Path = ASSETS_DIR, templates_dir: Path = TEMPLATES_DIR):
        self.url_fetcher = AssetURLFetcher(assets_dir)
        self._base_url = path2url(str(assets_dir.resolve())) + "/"
        self._template = _Template(make_environment(templates_dir))
        self._font_config = FontConfiguration()
        self._css = CSS(
            string=(templates_dir / STYLESHEET_NAME).read_text(encoding="utf-8"),
            base_url=self._base_url,
            url_fetcher=self.url_fetcher,
            font_config=self._font_config,
        )

    def render_html(self, invoices: Sequence[Invoice]) -> str:
        """See :func:`render_html`."""
        return _html(self._template, invoices)

    def render_one(self, invoice: Invoice) -> bytes:
        """One invoice's PDF; raises :class:`RenderError`."""
        result = self.render_batch([invoice])
        if invoice.number in result.errors:
            raise RenderError(invoice.number, result.errors[invoice.number])
        return result.pdfs[invoice.number]

    def render_batch(self, invoices: Sequence[Invoice]) -> BatchResult:
        """PDF per invoice number, laid out and written as one document (see module doc)."""
        result = BatchResult()
        counts = Counter(invoice.number for invoice in invoices)
        sections: list[_Section] = []
        for invoice in invoices:
            if counts[invoice.number] > 1:
                result.errors[invoice.number] = (
                    f"invoice number appears {counts[invoice.number]} times in the batch"
                )
                continue
            try:
                sections.append(self._template.section(invoice))
            except RenderError as exc:
                result.errors[invoice.number] = exc.reason
        self._render_sections(sections, result)
        return result

    def _render_sections(self, sections: Sequence[_Section], result: BatchResult) -> None:
        """Render as one document; if that fails, bisect until the culprits are alone."""
        if not sections:
            return
        try:
            pdfs = self._render_document(sections)
        except Exception as exc:
            if len(sections) == 1:
                _LOG.warning("invoice %s failed to render: %s", sections[0].number, exc)
                result.errors[sections[0].number] = _describe(exc)
                return
            _LOG.warning("batch of %d invoices failed (%s); splitting it", len(sections), exc)
            middle = len(sections) // 2
            self._render_sections(sections[:middle], result)
            self._render_sections(sections[middle:], result)
            return
        result.pdfs.update(pdfs)

    def _render_document(self, sections: Sequence[_Section]) -> dict[str, bytes]:
        html = HTML(
            string=self._template.document(sections),
            base_url=self._base_url,
            url_fetcher=self.url_fetcher,
        )
        document = html.render(font_config=self._font_config, stylesheets=[self._css])
        starts = _section_start_pages(document.pages, len(sections))
        combined = document.write_pdf()
        with pikepdf.open(io.BytesIO(combined)) as source:
            ends = [*starts[1:], len(source.pages)]
            return {
                section.number: _extract_pages(source, start, end, section)
                for section, start, end in zip(sections, starts, ends, strict=True)
            }


def _section_start_pages(pages: Sequence[Any], count: int) -> list[int]:
    """Index of the page on which each ``inv-N`` section starts (checked to increase)."""
    starts: dict[int, int] = {}
    for page_index, page in enumerate(pages):
        for anchor in page.anchors:
            if anchor.startswith("inv-") and anchor[4:].isdigit():
                starts.setdefault(int(anchor[4:]), page_index)
    ordered = [starts.get(index, -1) for index in range(count)]
    if ordered[0] != 0 or any(b <= a for a, b in itertools.pairwise(ordered)):
        raise RuntimeError(f"cannot locate invoice sections in the layout: {ordered}")
    return ordered


def _extract_pages(source: pikepdf.Pdf, start: int, end: int, section: _Section) -> bytes:
    target = pikepdf.new()
    target.pages.extend(source.pages[start:end])
    target.docinfo["/Title"] = f"{section.title} {section.number}"
    target.docinfo["/Creator"] = "Courier"
    if "/Producer" in source.docinfo:
        target.docinfo["/Producer"] = source.docinfo["/Producer"]
    buffer = io.BytesIO()
    target.save(buffer, compress_streams=True, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    return buffer.getvalue()
